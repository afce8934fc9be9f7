// MVCC store benchmark (in-process): batched puts, single-key and 1000-key ranges,
// watch fan-out to 1000 watchers, and restart time / memory with 1M keys.
//
//   npm run bench:mvcc            full run (1M keys for the restart figures)
//   npm run bench:mvcc -- --quick smaller sizes, for a smoke run
//
// Run with --expose-gc for meaningful heap figures (npm script: node --expose-gc via tsx).

import { mkdtempSync, rmSync } from 'node:fs';
import { MvccStore } from '../../src/mvcc/index.js';

const quick = process.argv.includes('--quick');
const VALUE = Buffer.alloc(256, 0x61);
const gc = (globalThis as { gc?: () => void }).gc;

function key(i: number): Buffer {
  return Buffer.from(`/registry/pods/default/pod-${i.toString().padStart(8, '0')}`);
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(0)} MB`;
}

function report(name: string, ops: number, ms: number, unit = 'ops/s'): void {
  console.log(`${name.padEnd(44)} ${Math.round((ops * 1000) / ms).toLocaleString('en-US').padStart(12)} ${unit}  (${ops.toLocaleString('en-US')} in ${ms.toFixed(0)} ms)`);
}

async function load(store: MvccStore, n: number, perBatch: number, startIndex: number): Promise<number> {
  let index = startIndex;
  for (let i = 0; i < n; i += perBatch) {
    for (let j = i; j < Math.min(n, i + perBatch); j++) await store.put({ key: key(j), value: VALUE, lease: 0n }, ++index);
    await store.commit();
  }
  return index;
}

async function main(): Promise<void> {
  const dir = mkdtempSync('/tmp/mvcc-bench-');
  try {
    let store = await MvccStore.open({ dir });
    let index = 0;

    // ---- puts, 100 per apply batch ----
    const puts = quick ? 100_000 : 500_000;
    let t = performance.now();
    index = await load(store, puts, 100, index);
    report('put, 100 per commit (256 B values)', puts, performance.now() - t);

    // ---- overwrite puts (existing keys) ----
    t = performance.now();
    index = await load(store, puts, 100, index);
    report('put over existing keys, 100 per commit', puts, performance.now() - t);

    // ---- single-key range ----
    const gets = quick ? 200_000 : 1_000_000;
    t = performance.now();
    for (let i = 0; i < gets; i++) await store.range({ key: key((i * 7919) % puts) });
    report('range, single key (latest)', gets, performance.now() - t);

    // ---- 1000-key range ----
    const scans = quick ? 500 : 2_000;
    const prefix = Buffer.from('/registry/pods/default/pod-');
    t = performance.now();
    for (let i = 0; i < scans; i++) {
      const from = (i * 1009) % (puts - 1000);
      await store.range({ key: key(from), rangeEnd: key(from + 1000) });
    }
    report('range, 1000 keys (latest)', scans, performance.now() - t);
    t = performance.now();
    for (let i = 0; i < scans; i++) await store.range({ key: prefix, rangeEnd: Buffer.from('/registry/pods/default/pod.'), limit: 1000 });
    report('range, prefix with limit 1000 (count all)', scans, performance.now() - t);
    const hist = quick ? 100 : 500;
    t = performance.now();
    for (let i = 0; i < hist; i++) {
      const from = (i * 1009) % (puts - 1000);
      await store.range({ key: key(from), rangeEnd: key(from + 1000), revision: 2 + puts - 1 });
    }
    report('range, 1000 keys at an old revision (LevelDB)', hist, performance.now() - t);

    // ---- watch fan-out ----
    for (const shape of ['prefix', 'key'] as const) {
      let delivered = 0;
      const streams = [];
      for (let w = 0; w < 1000; w++) {
        const ws = store.newWatchStream((r) => {
          delivered += r.events.length;
          return true;
        });
        if (shape === 'prefix') ws.watch({ key: prefix, rangeEnd: Buffer.from('/registry/pods/default/pod.'), startRevision: 0 });
        else ws.watch({ key: key(w), startRevision: 0 });
        streams.push(ws);
      }
      const writes = shape === 'prefix' ? (quick ? 2_000 : 10_000) : quick ? 100_000 : 200_000;
      t = performance.now();
      for (let i = 0; i < writes; i += 100) {
        for (let j = i; j < i + 100; j++) await store.put({ key: key(j % 1000), value: VALUE, lease: 0n }, ++index);
        await store.commit();
      }
      const ms = performance.now() - t;
      report(`watch: events delivered, 1000 ${shape} watchers`, delivered, ms, 'events/s');
      for (const ws of streams) ws.close();
    }

    await store.close();

    // ---- restart with 1M keys ----
    rmSync(dir, { recursive: true, force: true });
    const n = quick ? 100_000 : 1_000_000;
    store = await MvccStore.open({ dir });
    t = performance.now();
    await load(store, n, 1000, 0);
    report(`load ${n.toLocaleString('en-US')} keys, 1000 per commit`, n, performance.now() - t);
    await store.close();
    gc?.();
    const before = process.memoryUsage();
    t = performance.now();
    store = await MvccStore.open({ dir });
    const restartMs = performance.now() - t;
    gc?.();
    const after = process.memoryUsage();
    console.log(`restart with ${n.toLocaleString('en-US')} keys of 256 B: ${(restartMs / 1000).toFixed(2)} s`);
    console.log(
      `memory after restart: rss ${mb(after.rss)}, heap used ${mb(after.heapUsed)} (+${mb(after.heapUsed - before.heapUsed)}), ` +
        `external+arrayBuffers ${mb(after.external + after.arrayBuffers)}${gc ? '' : ' (run with --expose-gc for exact heap)'}`,
    );
    console.log(`db size on disk ${mb(store.dbSize())}, in use ${mb(store.dbSizeInUse())}`);
    t = performance.now();
    for (let i = 0; i < 200_000; i++) await store.range({ key: key((i * 7919) % n) });
    report('range, single key, 1M-key store', 200_000, performance.now() - t);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
