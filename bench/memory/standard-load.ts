// Where the RSS after bench:server's standard load goes, for one etcd-ts member (or
// etcd beside it): the same loads (goload: put at 1 and 64 clients, linearizable and
// serializable gets at 64, 1000 keys of 256 bytes), but each run to an operation count
// rather than for 5 s, so that a member on a loaded machine ends up holding what it
// holds after the quiet run (RSS follows the puts done: the raft log keeps every entry
// up to --snapshot-count). After each load: RSS and CPU per operation; at the end, with
// --heap-log, etcd-ts's process.memoryUsage() and V8's spaces before and after a GC
// (heap-log.mjs), so the JS heap, its unused young and old generation, ArrayBuffers and
// native memory can be told apart.
//
//   npx tsc -p tsconfig.json && npx tsx bench/memory/standard-load.ts
//       [--servers etcd,etcd-ts]   etcd, etcd-ts (this checkout) or LABEL=DIR (a built checkout)
//       [--puts-1 9000] [--puts-64 50000] [--gets 50000]   operations per load (the quiet run's counts)
//       [--node-options '--max-semi-space-size=8']        etcd-ts: Node's flags
//       [--heap-log FILE]
//       [--idle 20]                RSS again after that many seconds without requests
//
// No timing here is a result: the CPU per operation is printed so that a memory setting
// that costs CPU shows it, with the load average beside it.

import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { arg, cpuSeconds, repoRoot, rssMb, rssSplitMb, serverTargets, startMember, type Target, stopMember } from '../member.js';

const run = promisify(execFile);

const targets = serverTargets(arg('servers', 'etcd,etcd-ts'));
const goload = arg('goload', '/tmp/goload');
const nodeOptions = arg('node-options', '').split(' ').filter(Boolean);
const heapLog = arg('heap-log', '');
/** seconds without requests after the loads, then RSS again (what an idle member keeps) */
const idleSeconds = Number(arg('idle', '0'));
const loads = [
  { op: 'put', clients: 1, ops: Number(arg('puts-1', '9000')) },
  { op: 'put', clients: 64, ops: Number(arg('puts-64', '50000')) },
  { op: 'get-lin', clients: 64, ops: Number(arg('gets', '50000')) },
  { op: 'get-ser', clients: 64, ops: Number(arg('gets', '50000')) },
];
/** goload runs by time: a load is runs of this long until its count is reached */
const CHUNK = '3s';

const load1 = () => os.loadavg()[0]!.toFixed(1);

async function goloadOps(addr: string, op: string, clients: number): Promise<number> {
  const { stdout } = await run(goload, ['-endpoints', addr, '-op', op, '-clients', String(clients), '-conns', String(Math.min(8, clients)), '-warmup', '0s', '-duration', CHUNK]);
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { ops: number }).ops;
}

async function measure(t: Target): Promise<void> {
  const nodeArgs = [...nodeOptions, ...(heapLog ? ['--expose-gc', '--import', path.join(repoRoot, 'bench/memory/heap-log.mjs')] : [])];
  const m = await startMember(t.server, { dirPrefix: '.bench-stdload-', tsDir: t.tsDir, nodeArgs, env: { HEAP_LOG: heapLog } });
  const pid = m.proc.pid!;
  const line = (what: string) => console.log(`${t.label.padEnd(8)} ${what}`);
  try {
    line(`idle: RSS ${rssMb(pid).toFixed(0)} MB`);
    await run(goload, ['-endpoints', m.addr, '-op', 'fill', '-keys', '1000']);
    for (const l of loads) {
      const cpu0 = cpuSeconds(pid);
      let done = 0;
      while (done < l.ops) done += await goloadOps(m.addr, l.op, l.clients);
      const cpuUs = ((cpuSeconds(pid) - cpu0) * 1e6) / done;
      line(`${l.op} c=${l.clients}: ${done} ops, CPU ${cpuUs.toFixed(0)} µs/op, RSS ${rssMb(pid).toFixed(0)} MB, load average ${load1()}`);
    }
    const split = rssSplitMb(pid);
    line(`after the loads: RSS ${rssMb(pid).toFixed(0)} MB (anon ${split.anon.toFixed(0)}, file ${split.file.toFixed(0)}), load average ${load1()}`);
    if (idleSeconds > 0) {
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const idle = rssSplitMb(pid);
      line(`after ${idleSeconds} s idle: RSS ${rssMb(pid).toFixed(0)} MB (anon ${idle.anon.toFixed(0)}, file ${idle.file.toFixed(0)}), load average ${load1()}`);
    }
    if (heapLog && t.server === 'etcd-ts') {
      const before = existsSync(heapLog) ? readFileSync(heapLog, 'utf8').length : 0;
      m.proc.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 2000));
      line(`heap (MB; spaces: used, committed, resident): ${readFileSync(heapLog, 'utf8').slice(before).trim()}`);
      line(`after that GC: RSS ${rssMb(pid).toFixed(0)} MB`);
      appendFileSync(heapLog, `${JSON.stringify({ server: t.label, rssMbAfterGc: Math.round(rssMb(pid)) })}\n`);
    }
  } finally {
    await stopMember(m);
  }
}

async function main(): Promise<void> {
  if (!existsSync(goload)) throw new Error(`${goload} missing: bash /work/shared/goload/build.sh ${goload}`);
  for (const t of targets) await measure(t);
  console.log(`${os.cpus().length} cores, load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
