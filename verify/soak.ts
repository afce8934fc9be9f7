// Back-to-back runs over every nemesis, for long unattended checking:
//   npx tsx verify/soak.ts [--minutes 30] [--run-seconds 300] [--binary etcd|etcd-ts|mixed] [--seed 100]
// Stops at the first run that is not valid (its results directory is printed).
// Reports the total time faults were active with no anomaly found.

import { parseArgs } from 'node:util';
import type { ClusterBinary } from './cluster.js';
import type { NemesisKind } from './nemesis.js';
import { runJepsen } from './run.js';

const ROTATION: NemesisKind[][] = [
  ['kill', 'pause', 'partition'],
  ['member', 'kill'],
  ['partition', 'delay', 'drop'],
  ['pause', 'member', 'partition'],
  ['nospace', 'kill', 'pause'],
];

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    'run-seconds': { type: 'string', default: '300' },
    binary: { type: 'string', default: 'etcd' },
    seed: { type: 'string', default: '100' },
  },
});
const budgetMs = Number(values.minutes) * 60_000;
const runSec = Number(values['run-seconds']);
const binary = values.binary as ClusterBinary;
let seed = Number(values.seed);
let faultMs = 0;
let wallMs = 0;
let ops = 0;
const started = Date.now();
for (let i = 0; Date.now() - started < budgetMs; i++) {
  const nemesis = ROTATION[i % ROTATION.length]!;
  const t0 = Date.now();
  const r = await runJepsen({ nemesis, timeSec: runSec, seed, binary, log: () => {} });
  wallMs += r.report.stats.operations > 0 ? runSec * 1000 : 0;
  faultMs += r.faultMs;
  ops += r.report.stats.operations;
  const line =
    `run ${i + 1} seed ${seed} [${nemesis.join(',')}]: ${r.report.verdict}, ${r.report.stats.operations} ops, ` +
    `${r.report.stats.failed} unknown, faults ${(r.faultMs / 1000).toFixed(0)}s, ${r.nemesisEvents} nemesis events, ${r.elections} elections, ` +
    `check ${(r.report.stats.checkMs / 1000).toFixed(1)}s, wall ${((Date.now() - t0) / 1000).toFixed(0)}s`;
  console.log(line);
  if (r.report.verdict !== 'valid') {
    for (const a of r.report.anomalies.slice(0, 10)) console.log(`  [${a.kind}] ${a.message}`);
    console.log(`results: ${r.outDir}`);
    process.exit(1);
  }
  seed++;
}
console.log(
  `soak done: ${(wallMs / 60_000).toFixed(1)} min of workload, ${(faultMs / 60_000).toFixed(1)} min with a fault active, ${ops} operations, no anomaly`,
);
