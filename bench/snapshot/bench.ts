// `etcdctl snapshot save` and the first start after `etcdctl snapshot restore`, side by
// side: real etcd 3.4.23 and etcd-ts (compiled bin/etcd-ts), one member each, one after
// the other (alternating order by round), same disk. The measurement is snapshot.ts's;
// `npm run bench:server -- --snapshot` runs the same rows beside its load rows.
//
//   npm run bench:snapshot -- [--keys 100000] [--rounds 1] [--servers etcd,etcd-ts] [--cpu-prof DIR]
//
// --cpu-prof runs etcd-ts under `node --cpu-prof` for the save and the first start and
// prints the functions with the most self time; the profiles stay in DIR.

import { arg, type Server } from '../member.js';
import { measureSnapshot, roundLine, type SnapshotResult, snapshotReport } from './snapshot.js';

const servers = arg('servers', 'etcd,etcd-ts').split(',') as Server[];
const keys = Number(arg('keys', '100000'));
const rounds = Number(arg('rounds', '1'));
const profileDir = arg('cpu-prof', '');

async function main(): Promise<void> {
  const results: Record<string, SnapshotResult[]> = Object.fromEntries(servers.map((s) => [s, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const r = await measureSnapshot({ server }, { keys, profileDir });
      results[server]!.push(r);
      console.error(roundLine(round, server, r, keys));
    }
  }
  console.log(`\n${snapshotReport(results, keys).join('\n')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
