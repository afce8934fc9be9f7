// Preloaded into etcd-ts by `bench.ts --heap-log FILE` (node --expose-gc --import this):
// on SIGUSR2 the member collects garbage and appends one JSON line to $HEAP_LOG with
// process.memoryUsage() and V8's heap spaces, so the bench can tell a JS heap that grows
// from external buffers or native (LevelDB) memory that grows. Each heap space is
// [used, committed, resident] MB: committed far above used is a fragmented old space.
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.HEAP_LOG;
if (file) {
  process.on('SIGUSR2', () => {
    const before = process.memoryUsage();
    globalThis.gc?.();
    const after = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, [Math.round(s.space_used_size / 1048576), Math.round(s.space_size / 1048576), Math.round(s.physical_space_size / 1048576)]]));
    const mb = (u) => Object.fromEntries(Object.entries(u).map(([k, v]) => [k, Math.round(v / 1048576)]));
    appendFileSync(file, `${JSON.stringify({ before: mb(before), afterGc: mb(after), spaces })}\n`);
  });
}
