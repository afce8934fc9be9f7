// `etcdctl snapshot save` and the first start after `etcdctl snapshot restore`, side by
// side: real etcd 3.4.23 and etcd-ts (compiled bin/etcd-ts), one member each, one after
// the other (alternating order by round), same disk. The measurement is snapshot.ts's;
// `npm run bench:server -- --snapshot` runs the same rows beside its load rows.
//
//   npm run bench:snapshot -- [--keys 100000] [--rounds 1] [--servers etcd,etcd-ts] [--cpu-prof DIR]
//       [--ts LABEL=DIR[,VAR=VALUE...]]...
//
// --ts runs an etcd-ts build other than this one (DIR: a built checkout), several times for
// several builds, each beside etcd in the same rounds: `--ts base=/tmp/base --ts new=.`
// compares a change with what it changed. --servers etcd leaves etcd-ts out, --servers
// etcd-ts leaves etcd out. --cpu-prof runs etcd-ts under `node --cpu-prof` for the save and
// the first start and prints the functions with the most self time; the profiles stay in DIR.

import { arg, tsBuildsFromArgs } from '../member.js';
import { measureSnapshot, roundLine, type SnapshotResult, snapshotReport, type Target } from './snapshot.js';

const kinds = arg('servers', 'etcd,etcd-ts').split(',');
const keys = Number(arg('keys', '100000'));
const rounds = Number(arg('rounds', '1'));
const profileDir = arg('cpu-prof', '');

/** What runs, by label: etcd, and each etcd-ts build. */
function targets(): Map<string, Target> {
  const out = new Map<string, Target>();
  if (kinds.includes('etcd')) out.set('etcd', { server: 'etcd' });
  if (kinds.includes('etcd-ts')) {
    for (const b of tsBuildsFromArgs()) out.set(b.label, { server: 'etcd-ts', tsDir: b.dir, env: b.env });
  }
  return out;
}

async function main(): Promise<void> {
  const byLabel = targets();
  const labels = [...byLabel.keys()];
  const results: Record<string, SnapshotResult[]> = Object.fromEntries(labels.map((l) => [l, []]));
  for (let round = 0; round < rounds; round++) {
    // each round starts with the next server, so none always runs first (or last)
    for (const label of labels.map((_, i) => labels[(i + round) % labels.length]!)) {
      const r = await measureSnapshot(byLabel.get(label)!, { keys, profileDir });
      results[label]!.push(r);
      console.error(roundLine(round, label, r, keys));
    }
  }
  console.log(`\n${snapshotReport(results, keys).join('\n')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
