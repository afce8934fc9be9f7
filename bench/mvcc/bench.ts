// MVCC store benchmark (in-process): batched puts, single-key and 1000-key ranges,
// watch fan-out to 1000 watchers, and restart time / memory with 1M keys.
//
//   npm run bench:mvcc            full run (1M keys for the restart figures)
//   npm run bench:mvcc -- --quick smaller sizes, for a smoke run
//
// The restart is measured in a child process started with --expose-gc, so its memory
// figures hold the restored store alone. Each rate is given by wall clock and per
// CPU-second (all threads): on a shared machine the latter shows what a free core does.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MvccStore } from '../../src/mvcc/index.js';

const quick = process.argv.includes('--quick');
const VALUE = Buffer.alloc(256, 0x61);
const gc = (globalThis as { gc?: () => void }).gc;

const KEYS: Buffer[] = [];

/** Keys for writes are made once: building them per operation would cost more than the store does. */
function key(i: number): Buffer {
  let k = KEYS[i];
  if (!k) k = KEYS[i] = Buffer.from(`/registry/pods/default/pod-${i.toString().padStart(8, '0')}`);
  return k;
}

const KEY_TEMPLATE = key(0);

/**
 * The key of a read, in a buffer of its own, as a server decodes it from a request.
 * Reads do not take it from KEYS: a random pick among a million Buffers costs two
 * cache misses of the harness's own (about 0.7 µs on this machine, more than half of a
 * Get), which no server pays; copying the template and writing the digits costs ~0.1 µs.
 */
function freshKey(i: number): Buffer {
  const b = Buffer.allocUnsafe(KEY_TEMPLATE.length);
  KEY_TEMPLATE.copy(b);
  for (let p = b.length - 1; i > 0; p--, i = Math.floor(i / 10)) b[p] = 0x30 + (i % 10);
  return b;
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(0)} MB`;
}

let cpuMark = process.cpuUsage();

/** Starts a measurement: wall clock and process CPU time (all threads, LevelDB's included). */
function mark(): number {
  cpuMark = process.cpuUsage();
  return performance.now();
}

/**
 * Prints the rate by wall clock and per CPU-second: on a shared machine the second
 * shows what one free core would do.
 */
function report(name: string, ops: number, ms: number, unit = 'ops/s'): void {
  const cpu = process.cpuUsage(cpuMark);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
  console.log(
    `${name.padEnd(46)} ${fmt((ops * 1000) / ms)} ${unit} ${fmt((ops * 1000) / cpuMs)} per cpu-s  (${ops.toLocaleString('en-US')} in ${ms.toFixed(0)} ms, cpu ${cpuMs.toFixed(0)} ms)`,
  );
}

/** A Get that finds nothing is cheaper: a rate from misses would flatter the store. */
function mustFindAll(found: number, gets: number): void {
  if (found !== gets) throw new Error(`single-key ranges found ${found} of ${gets} keys`);
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
    for (let i = 0; i < puts; i++) key(i);
    let t = mark();
    index = await load(store, puts, 100, index);
    report('put, 100 per commit (256 B values)', puts, performance.now() - t);

    // ---- overwrite puts (existing keys) ----
    t = mark();
    index = await load(store, puts, 100, index);
    report('put over existing keys, 100 per commit', puts, performance.now() - t);

    // ---- single-key range ----
    const gets = quick ? 200_000 : 1_000_000;
    t = mark();
    let found = 0;
    for (let i = 0; i < gets; i++) found += (await store.range({ key: freshKey((i * 7919) % puts) })).kvs.length;
    report('range, single key (latest)', gets, performance.now() - t);
    mustFindAll(found, gets);

    // ---- 1000-key range ----
    const scans = quick ? 500 : 2_000;
    const prefix = Buffer.from('/registry/pods/default/pod-');
    t = mark();
    for (let i = 0; i < scans; i++) {
      const from = (i * 1009) % (puts - 1000);
      await store.range({ key: key(from), rangeEnd: key(from + 1000) });
    }
    report('range, 1000 keys (latest)', scans, performance.now() - t);
    const pages = 20;
    t = mark();
    for (let i = 0; i < pages; i++) await store.range({ key: prefix, rangeEnd: Buffer.from('/registry/pods/default/pod.'), limit: 1000 });
    report(`range, limit 1000 of ${puts.toLocaleString('en-US')} (counts all)`, pages, performance.now() - t);
    const hist = quick ? 100 : 500;
    t = mark();
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
      t = mark();
      for (let i = 0; i < writes; i += 100) {
        for (let j = i; j < i + 100; j++) await store.put({ key: key(j % 1000), value: VALUE, lease: 0n }, ++index);
        await store.commit();
      }
      const ms = performance.now() - t;
      report(
        shape === 'prefix' ? 'watch: events delivered to 1000 prefix watchers' : 'watch: puts with 1000 single-key watchers',
        delivered,
        ms,
        'events/s',
      );
      for (const ws of streams) ws.close();
    }

    await store.close();

    // ---- restart with 1M keys ----
    rmSync(dir, { recursive: true, force: true });
    const n = quick ? 100_000 : 1_000_000;
    store = await MvccStore.open({ dir });
    for (let i = 0; i < n; i++) key(i);
    t = mark();
    await load(store, n, 1000, 0);
    report(`load ${n.toLocaleString('en-US')} keys, 1000 per commit`, n, performance.now() - t);
    await store.close();
    // reopen in a fresh process, so memory figures hold only the restored store
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', fileURLToPath(import.meta.url), '--restart', dir, String(n)], {
        stdio: 'inherit',
      });
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`restart run exited with ${code}`))));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The restart measurement, run in a child process on the store `main` built. */
async function restart(dir: string, n: number): Promise<void> {
  gc?.();
  const before = process.memoryUsage();
  const t = mark();
  const store = await MvccStore.open({ dir });
  const restartMs = performance.now() - t;
  const restartCpu = process.cpuUsage(cpuMark);
  gc?.();
  const after = process.memoryUsage();
  console.log(
    `restart with ${n.toLocaleString('en-US')} keys of 256 B: ${(restartMs / 1000).toFixed(2)} s ` +
      `(cpu ${((restartCpu.user + restartCpu.system) / 1e6).toFixed(2)} s)`,
  );
  console.log(
    `memory after restart: rss ${mb(after.rss)}, heap used ${mb(after.heapUsed)} (+${mb(after.heapUsed - before.heapUsed)}), ` +
      `external (LevelDB values, array buffers) ${mb(after.external)}`,
  );
  console.log(`db size on disk ${mb(store.dbSize())}, in use ${mb(store.dbSizeInUse())}`);
  const gets = 200_000;
  const t2 = mark();
  let found = 0;
  for (let i = 0; i < gets; i++) found += (await store.range({ key: freshKey((i * 7919) % n) })).kvs.length;
  report(`range, single key, ${n.toLocaleString('en-US')}-key store`, gets, performance.now() - t2);
  mustFindAll(found, gets);
  await store.close();
}

const restartAt = process.argv.indexOf('--restart');
if (restartAt >= 0) await restart(process.argv[restartAt + 1]!, Number(process.argv[restartAt + 2]));
else await main();
