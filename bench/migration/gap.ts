// What a client sees while a live three-member cluster is replaced member by member (issue
// 20's rolling migration), beside etcd replacing its own members in the same run:
//
//   npx tsx bench/migration/gap.ts [--rounds N] [--timing default|steady] [--only FROM>TO,...] [--steps]
//
// Each round runs, one after another, the rolling migration of test/e2e/rolling-migration.ts
// (remove a member, `member add` its replacement with `existing`, wait until it has caught
// up, next) for etcd>etcd, etcd>etcd-ts, etcd-ts>etcd and etcd-ts>etcd-ts, each under etcd's
// Go client (goload -acked, one put at a time every 20 ms at most, all six endpoints). It
// reports per run the longest time without an acknowledged put, the elections (terms gone
// by) and the puts acknowledged; then, per pair, the medians and the longest gap's ratio to
// etcd>etcd's. `--timing default` runs the members with etcd's default heartbeat and
// election timeout (100 ms, 1 s), which an operator's cluster has; `steady` with the
// suite's (200 ms, 3 s). README.md beside this file has the figures.

import { parseArgs } from 'node:util';
import { cleanup } from '../../test/e2e/harness.js';
import { type ExtraFlags, type Kind, noExtraFlags, rollingMigration, steadyTiming } from '../../test/e2e/rolling-migration.js';

const PAIRS: ReadonlyArray<readonly [Kind, Kind]> = [
  ['etcd', 'etcd'],
  ['etcd', 'etcd-ts'],
  ['etcd-ts', 'etcd'],
  ['etcd-ts', 'etcd-ts'],
];
const label = ([from, to]: readonly [Kind, Kind]): string => `${from}>${to}`;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    timing: { type: 'string', default: 'default' },
    only: { type: 'string' },
    /** print each run's steps, timed from the start of its longest gap */
    steps: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${values.rounds}: a positive integer`);
const timings: Record<string, ExtraFlags> = { default: noExtraFlags, steady: steadyTiming };
const timing = timings[values.timing];
if (timing === undefined) throw new Error(`--timing ${values.timing}: default or steady`);
const only = values.only?.split(',');
const pairs = only === undefined ? PAIRS : PAIRS.filter((p) => only.includes(label(p)));
if (pairs.length === 0) throw new Error(`--only ${values.only}: none of ${PAIRS.map(label).join(', ')}`);

interface Run {
  gapMs: number;
  elections: number;
  acked: number;
  seconds: number;
}

const runs = new Map<string, Run[]>(pairs.map((p) => [label(p), []]));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  for (let round = 1; round <= rounds; round++) {
    for (const pair of pairs) {
      const started = Date.now();
      const m = await rollingMigration(pair[0], pair[1], `g${round}${pair.map((k) => (k === 'etcd' ? 'e' : 't')).join('')}`, timing);
      const run: Run = {
        gapMs: m.load.longestAckGapMs,
        elections: m.termAfter - m.termBefore,
        acked: m.load.acked.length,
        seconds: (Date.now() - started) / 1000,
      };
      runs.get(label(pair))!.push(run);
      await cleanup();
      console.log(
        `round ${round} ${label(pair).padEnd(16)} longest gap ${String(run.gapMs).padStart(5)} ms, ${run.elections} elections, ${run.acked} puts acknowledged in ${run.seconds.toFixed(1)} s`,
      );
      // where in the migration the longest gap fell: the steps around its start
      if (values.steps) {
        const from = m.load.longestAckGapFrom;
        for (const s of m.steps) console.log(`    ${String(s.at - from).padStart(7)} ms  ${s.what}`);
        // an etcd-ts member's own account of a gap past the election timeout (its log lines have a ts)
        if (run.gapMs > 1000) {
          for (const r of m.replaced.filter((x) => x.kind === 'etcd-ts')) {
            for (const line of r.member.output().split('\n')) {
              const ts = Date.parse((/"ts":"([^"]+)"/.exec(line) ?? [])[1] ?? '');
              if (ts >= from - 500 && ts <= from + run.gapMs + 200) console.log(`    ${String(ts - from).padStart(7)} ms  ${r.slot.name}: ${line.slice(0, 300)}`);
            }
          }
        }
      }
    }
  }
} finally {
  await cleanup();
}

const base = median(runs.get(label(PAIRS[0]!))?.map((r) => r.gapMs) ?? []);
console.log(`\n| migration | longest gap, median (ms) | each run (ms) | elections | puts acked | gap vs etcd>etcd |`);
console.log(`|---|---:|---|---:|---:|---:|`);
for (const [name, rs] of runs) {
  const gap = median(rs.map((r) => r.gapMs));
  const ratio = Number.isNaN(base) ? '-' : `${(gap / base).toFixed(2)}×`;
  console.log(
    `| ${name} | ${gap} | ${rs.map((r) => r.gapMs).join(', ')} | ${rs.map((r) => r.elections).join(', ')} | ${median(rs.map((r) => r.acked))} | ${ratio} |`,
  );
}
