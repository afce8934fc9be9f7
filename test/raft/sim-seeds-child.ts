// Runs simulator seeds FROM..TO in a plain node process and writes one JSON line per seed
// (its SimResult) to stdout, for test/raft/sim-runner.ts. Usage: node <packed> raft|members FROM TO
//
// Why a child: run inside a vitest worker, through vite's module runner, the same seeds
// cost more CPU: a third more for raft-only seeds (test/raft/sim.test.ts, 57.0 against
// 38.0 CPU s quiet), 5 % more for whole members, whose time is mostly LevelDB's; and the
// simulators are the suite's largest CPU consumers (bench/suite/README.md, session 15).

import { runSeed } from '../../src/raft/sim/index.js';

const [kind, fromArg, toArg] = process.argv.slice(2);
const from = Number(fromArg);
const to = Number(toArg);
if ((kind !== 'raft' && kind !== 'members') || !Number.isInteger(from) || !Number.isInteger(to) || from > to) {
  process.stderr.write(`usage: sim-seeds-child raft|members FROM TO (got ${process.argv.slice(2).join(' ')})\n`);
  process.exit(2);
}
for (let seed = from; seed <= to; seed++) {
  const res = await runSeed({ seed, members: kind === 'members' });
  process.stdout.write(`${JSON.stringify(res)}\n`);
}
