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
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type * as Sim from '../../src/raft/sim/index.js';

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

const ticks = 100; // USER_HZ on Linux

/** [main thread, every other thread] CPU seconds so far, from /proc/self/task/<tid>/stat */
function threadCpu(): [number, number] {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(f[11]) + Number(f[12])) / ticks; // utime, stime
    if (tid === String(process.pid)) main += s;
    else other += s;
  }
  return [main, other];
}

const mod = (await import(pathToFileURL(resolve(values.root, 'src/raft/sim/index.ts')).href)) as typeof Sim;
const hash = createHash('sha256');
const from = Number(values.from);
const to = Number(values.to);
let failed = 0;
const [m0, o0] = threadCpu();
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
const [m1, o1] = threadCpu();
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
