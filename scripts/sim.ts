// Deterministic Raft cluster simulator CLI.
//
//   npm run sim -- --seed 42            replay one seed verbosely
//   npm run sim -- --seeds 500          run seeds 1..500 (or --from F) and summarize
//   npm run sim -- --members --seeds 300   whole members: the server's applier over real stores (1000 steps a seed)
//   options: --steps N  --nodes 1|3|5  --persistence correct|forget-vote|local-reads|no-fsync|apply-before-fsync|snapshot-before-flush  --quiet

import { parseArgs } from 'node:util';
import { type Persistence, persistenceModes, runSeed } from '../src/raft/sim/index.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    from: { type: 'string', default: '1' },
    steps: { type: 'string' },
    nodes: { type: 'string' },
    persistence: { type: 'string', default: 'correct' },
    quiet: { type: 'boolean', default: false },
    members: { type: 'boolean', default: false },
  },
});

const persistence = values.persistence as Persistence;
if (!persistenceModes.includes(persistence)) {
  console.error(`unknown --persistence ${persistence}; use one of ${persistenceModes.join(', ')}`);
  process.exit(2);
}
if (persistence === 'snapshot-before-flush' && !values.members) {
  console.error('--persistence snapshot-before-flush breaks a store: it needs --members');
  process.exit(2);
}
const steps = values.steps === undefined ? undefined : Number(values.steps);
const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
const extra = `${values.steps !== undefined ? ` --steps ${values.steps}` : ''}${values.nodes !== undefined ? ` --nodes ${values.nodes}` : ''}${persistence !== 'correct' ? ` --persistence ${persistence}` : ''}${values.members ? ' --members' : ''}`;

if (values.seed !== undefined) {
  const seed = Number(values.seed);
  const res = await runSeed({
    seed,
    steps,
    nodes,
    persistence,
    members: values.members,
    trace: values.quiet ? undefined : (line) => console.log(line),
  });
  console.log(JSON.stringify({ seed, ok: res.ok, profile: res.profile, stats: res.stats }, null, 1));
  if (!res.ok) {
    console.error(`FAIL seed ${seed}: ${res.error}`);
    console.error(`replay: npm run sim -- --seed ${seed}${extra}`);
    process.exit(1);
  }
} else {
  const count = Number(values.seeds ?? '100');
  const from = Number(values.from);
  let failed = 0;
  const t0 = process.hrtime.bigint();
  for (let seed = from; seed < from + count; seed++) {
    const res = await runSeed({ seed, steps, nodes, persistence, members: values.members });
    if (!res.ok) {
      failed++;
      console.error(`FAIL seed ${seed}: ${res.error}`);
      console.error(`replay: npm run sim -- --seed ${seed}${extra}`);
    }
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${count - failed}/${count} seeds passed in ${(ms / 1000).toFixed(1)}s`);
  if (failed > 0) process.exit(1);
}
