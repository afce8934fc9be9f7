// Runs simulator seeds FROM..TO in a plain node process and writes one JSON line per seed
// (its SimResult) to stdout, for test/raft/sim-runner.ts. Usage: node <packed> raft|members FROM TO
//
// Why a child: run inside a vitest worker the same seeds cost about a fifth more CPU (the
// module runner's transformed modules and their live-binding accessors on every call
// between modules), and the simulators are the suite's largest CPU consumers.

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
