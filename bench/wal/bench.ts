// WAL benchmark: appends/s and MB/s with one fdatasync per batch, for batches of
// 1, 16 and 256 entries of 256 bytes, side by side with a plain write+fdatasync
// loop writing the same bytes to a preallocated file on the same disk in the same
// run (the two alternate in slices, so background load hits both alike); then
// replay speed (open + readAll) in MB/s, wall clock and CPU.
//
//   npm run bench:wal -- [--dir /tmp] [--seconds 4] [--prealloc zero-fill|sparse] [--replay-mb 256] [--batches 1,16,256]

import fs from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Entry, EntryType, type HardState } from '../../src/raftpb/index.js';
import { WAL, createNodeDisk } from '../../src/wal/index.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp' },
    seconds: { type: 'string', default: '4' },
    prealloc: { type: 'string', default: 'sparse' },
    'replay-mb': { type: 'string', default: '256' },
    batches: { type: 'string', default: '1,16,256,4096' },
  },
});
const SECONDS = Number(args.seconds);

const ENTRY_BYTES = 256;
const disk = createNodeDisk({ preallocate: args.prealloc === 'sparse' ? 'sparse' : 'zero-fill' });
const root = fs.mkdtempSync(join(args.dir!, 'wal-bench-'));

const PAYLOAD = new Uint8Array(ENTRY_BYTES).fill(0x5a);

/** Entries as raft hands them over: already built (all sharing one payload here). */
function makeBatch(first: number, n: number): Entry[] {
  const out: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { term: 1, index: first + i, type: EntryType.Normal, data: PAYLOAD };
  return out;
}

interface Rate {
  batches: number;
  entries: number;
  bytes: number;
  seconds: number;
  /** time spent inside fdatasync */
  syncSeconds: number;
  /** CPU time of this process while running */
  cpuSeconds: number;
}

function fmt(r: Rate): string {
  const s = r.seconds;
  const ms = (x: number) => ((x / r.batches) * 1000).toFixed(2).padStart(6);
  return (
    `${(r.entries / s).toFixed(0).padStart(9)} entries/s ${(r.batches / s).toFixed(0).padStart(6)} syncs/s ` +
    `${(r.bytes / s / 1e6).toFixed(1).padStart(6)} MB/s | per sync ${ms(s)} ms: fdatasync ${ms(r.syncSeconds)}, cpu ${ms(r.cpuSeconds)}`
  );
}

/** One side of a comparison: does one synced batch per call, reports the bytes it wrote. */
interface Runner {
  step(): Promise<number>;
  /** seconds spent in fdatasync so far */
  syncSeconds(): number;
  close(): Promise<void>;
}

async function walRunner(batch: number): Promise<Runner> {
  const dir = join(root, `wal-b${batch}`);
  let written = 0;
  let synced = 0;
  const w = await WAL.create(dir, new Uint8Array(16), {
    disk,
    onWrite: (n) => (written += n),
    onFsync: (sec) => (synced += sec),
  });
  // let the background preallocation of the next segment finish before timing
  await new Promise((r) => setTimeout(r, 300));
  let index = 1;
  let next = makeBatch(index, batch);
  return {
    async step() {
      const before = written;
      const hs: HardState = { term: 1, vote: 1n, commit: index - 1 };
      await w.save(hs, next, true);
      index += batch;
      next = makeBatch(index, batch);
      return written - before;
    },
    syncSeconds: () => synced,
    async close() {
      await w.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A bare loop of write + fdatasync of `bytes` at a time: 'prealloc' overwrites a
 * preallocated 64 MB file round and round (the best a log can do), 'append'
 * appends to a file that grows (the naive loop, paying for size updates).
 */
function rawRunner(bytes: number, mode: 'prealloc' | 'append'): Runner {
  const path = join(root, `raw-${mode}-${bytes}`);
  const size = 64 * 1000 * 1000;
  let fd = fs.openSync(path, 'w+');
  if (mode === 'prealloc') {
    if (args.prealloc === 'sparse') fs.ftruncateSync(fd, size);
    else {
      const zeros = Buffer.alloc(1 << 20);
      for (let p = 0; p < size; p += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, size - p), p);
    }
    fs.fdatasyncSync(fd);
  }
  const buf = Buffer.alloc(bytes, 7);
  let pos = 0;
  let synced = 0;
  return {
    async step() {
      if (pos + buf.length > size) {
        pos = 0;
        if (mode === 'append') {
          fs.closeSync(fd);
          fd = fs.openSync(path, 'w+');
        }
      }
      await new Promise<void>((res, rej) => fs.write(fd, buf, 0, buf.length, pos, (e) => (e ? rej(e) : res())));
      const t0 = performance.now();
      await new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
      synced += (performance.now() - t0) / 1000;
      pos += buf.length;
      return buf.length;
    },
    syncSeconds: () => synced,
    async close() {
      fs.closeSync(fd);
      fs.rmSync(path);
    },
  };
}

async function timed(r: Runner, seconds: number, into: Rate, entriesPerStep: number): Promise<void> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const sync0 = r.syncSeconds();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    into.bytes += await r.step();
    into.batches++;
    into.entries += entriesPerStep;
  }
  const cpu = process.cpuUsage(cpu0);
  into.seconds += (performance.now() - start) / 1000;
  into.cpuSeconds += (cpu.user + cpu.system) / 1e6;
  into.syncSeconds += r.syncSeconds() - sync0;
}

const empty = (): Rate => ({ batches: 0, entries: 0, bytes: 0, seconds: 0, syncSeconds: 0, cpuSeconds: 0 });

/** WAL and raw loops in alternating slices, so load from other processes hits all alike. */
async function compare(batch: number): Promise<{ wal: Rate; prealloc: Rate; append: Rate }> {
  const res = { wal: empty(), prealloc: empty(), append: empty() };
  const w = await walRunner(batch);
  // size the raw writes like the WAL's frames for this batch
  const probe = await w.step();
  const p = rawRunner(probe, 'prealloc');
  const a = rawRunner(probe, 'append');
  const slices = 4;
  for (let i = 0; i < slices; i++) {
    await timed(w, SECONDS / slices, res.wal, batch);
    await timed(p, SECONDS / slices, res.prealloc, batch);
    await timed(a, SECONDS / slices, res.append, batch);
  }
  await w.close();
  await p.close();
  await a.close();
  return res;
}

async function replayRun(
  megabytes: number,
): Promise<{ bytes: number; seconds: number; cpuSeconds: number; entries: number; segments: number }> {
  const dir = join(root, 'replay');
  let written = 0;
  const w = await WAL.create(dir, new Uint8Array(16), { disk, onWrite: (n) => (written += n) });
  let index = 1;
  while (written < megabytes * 1e6) {
    await w.save({ term: 1, vote: 1n, commit: index - 1 }, makeBatch(index, 1024), false);
    index += 1024;
  }
  await w.close();
  const segments = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const r = await WAL.open(dir, { index: 0, term: 0 }, { disk });
  const { entries } = await r.readAll();
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - start) / 1000;
  await r.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { bytes: written, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, entries: entries.length, segments };
}

async function main(): Promise<void> {
  console.log(`WAL bench: ${ENTRY_BYTES}-byte entries, one fdatasync per batch, ${SECONDS}s per case, dir ${root}, prealloc ${args.prealloc}`);
  for (const batch of args.batches!.split(',').map(Number)) {
    const { wal, prealloc, append } = await compare(batch);
    const perSync = (r: Rate) => r.seconds / r.batches;
    const best = Math.min(perSync(prealloc), perSync(append));
    console.log(`batch ${String(batch).padStart(4)}  wal          ${fmt(wal)}`);
    console.log(`            raw prealloc ${fmt(prealloc)}`);
    console.log(`            raw append   ${fmt(append)}`);
    console.log(`            wal time per sync = ${(perSync(wal) / best).toFixed(2)}x the faster raw loop`);
  }
  const mb = Number(args['replay-mb']);
  if (mb > 0) {
    const rp = await replayRun(mb);
    console.log(
      `replay     ${(rp.bytes / 1e6).toFixed(0)} MB in ${rp.segments} segments, ${rp.entries} entries: ` +
        `${rp.seconds.toFixed(2)} s = ${(rp.bytes / 1e6 / rp.seconds).toFixed(0)} MB/s (CPU ${rp.cpuSeconds.toFixed(2)} s = ${(rp.bytes / 1e6 / rp.cpuSeconds).toFixed(0)} MB/s)`,
    );
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(root, { recursive: true, force: true }));
