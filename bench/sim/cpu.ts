// CPU seconds per simulator seed, by thread, and a digest of every seed's outcome, for
// one source tree: the same seeds run against an older tree (--root, a `git archive` copy)
// must give the same digest, and the CPU figures of the two are compared in one session.
//
//   node --import tsx bench/sim/cpu.ts [--members] [--from 1] [--to 40] [--root DIR]
//
// Prints one JSON line: cpu (all threads), main (the JS thread), other (V8's background
// compiler, GC helpers, libuv's pool), wall, and digest (sha256 of the seeds' ok, error
// and stats, which are deterministic).

import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type * as Sim from '../../src/raft/sim/index.js';
import { threadCpu } from '../thread-cpu.js';

const { values } = parseArgs({
  options: {
    members: { type: 'boolean', default: false },
    from: { type: 'string', default: '1' },
    to: { type: 'string', default: '40' },
    root: { type: 'string', default: '.' },
    /** a line before each seed, to read with --trace-opt / --trace-deopt's output */
    mark: { type: 'boolean', default: false },
  },
});

/** [main thread, every other thread] CPU seconds so far */
function mainAndOtherCpu(): [number, number] {
  const groups = threadCpu();
  const main = groups.get('main') ?? 0;
  let all = 0;
  for (const s of groups.values()) all += s;
  return [main, all - main];
}

const mod = (await import(pathToFileURL(resolve(values.root, 'src/raft/sim/index.ts')).href)) as typeof Sim;
const hash = createHash('sha256');
const from = Number(values.from);
const to = Number(values.to);
let failed = 0;
const [m0, o0] = mainAndOtherCpu();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let seed = from; seed <= to; seed++) {
  if (values.mark) console.log(`## seed ${seed}`);
  const res = await mod.runSeed({ seed, members: values.members });
  if (!res.ok) failed++;
  hash.update(JSON.stringify({ seed, ok: res.ok, error: res.error, stats: res.stats }));
}
const wall = (performance.now() - t0) / 1000;
const c = process.cpuUsage(c0);
const [m1, o1] = mainAndOtherCpu();
console.log(
  JSON.stringify({
    root: values.root,
    members: values.members,
    seeds: `${from}..${to}`,
    failed,
    cpu: +((c.user + c.system) / 1e6).toFixed(2),
    main: +(m1 - m0).toFixed(2),
    other: +(o1 - o0).toFixed(2),
    wall: +wall.toFixed(1),
    digest: hash.digest('hex').slice(0, 16),
  }),
);
