// Does V8 give the young generation back once the member is idle? One etcd-ts member
// with heap-log.mjs preloaded, goload puts at 64 clients, then a GC + heap reading right
// after the load and again after --idle seconds without requests.
//
//   npx tsx bench/memory/idle-gc-probe.ts [--seconds 10] [--idle 15]

import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { arg, repoRoot, rssMb, startMember, stopMember } from '../member.js';

const run = promisify(execFile);
const seconds = arg('seconds', '10');
const idle = Number(arg('idle', '15'));
const heapLog = path.join(os.tmpdir(), `idle-gc-probe-${process.pid}.log`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const m = await startMember('etcd-ts', { dirPrefix: '.bench-idlegc-', nodeArgs: ['--expose-gc', '--import', path.join(repoRoot, 'bench/memory/heap-log.mjs')], env: { HEAP_LOG: heapLog } });
try {
  await run('/tmp/goload', ['-endpoints', m.addr, '-op', 'fill', '-keys', '1000']);
  await run('/tmp/goload', ['-endpoints', m.addr, '-op', 'put', '-clients', '64', '-conns', '8', '-warmup', '0s', '-duration', `${seconds}s`]);
  const reading = async (what: string) => {
    console.log(`${what}: RSS ${rssMb(m.proc.pid!).toFixed(0)} MB`);
    m.proc.kill('SIGUSR2');
    await sleep(2000);
    console.log(`  after a GC: RSS ${rssMb(m.proc.pid!).toFixed(0)} MB; ${readFileSync(heapLog, 'utf8').trim().split('\n').pop()}`);
  };
  await reading('right after the load');
  await sleep(idle * 1000);
  await reading(`after ${idle} s idle`);
  console.log(`load average ${os.loadavg()[0]!.toFixed(1)}`);
} finally {
  await stopMember(m);
  rmSync(heapLog, { force: true });
}
