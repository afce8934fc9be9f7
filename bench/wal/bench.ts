// WAL benchmark: appends/s and MB/s with one fdatasync per batch, for batches of
// 1, 16 and 256 entries of 256 bytes, side by side with a plain write+fdatasync
// loop writing the same bytes to a preallocated file on the same disk in the same
// run; then replay speed (open + readAll) in MB/s.
//
//   npm run bench:wal -- [--dir /tmp] [--seconds 3] [--prealloc zero-fill|sparse] [--replay-mb 256]

import fs from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Entry, EntryType, type HardState } from '../../src/raftpb/index.js';
import { WAL, createNodeDisk } from '../../src/wal/index.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp' },
    seconds: { type: 'string', default: '3' },
    prealloc: { type: 'string', default: 'zero-fill' },
    'replay-mb': { type: 'string', default: '256' },
    batches: { type: 'string', default: '1,16,256' },
  },
});
const SECONDS = Number(args.seconds);
const ENTRY_BYTES = 256;
const disk = createNodeDisk({ preallocate: args.prealloc === 'sparse' ? 'sparse' : 'zero-fill' });
const root = fs.mkdtempSync(join(args.dir!, 'wal-bench-'));

function makeBatch(first: number, n: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(ENTRY_BYTES);
    data.fill((first + i) & 0xff);
    out.push({ term: 1, index: first + i, type: EntryType.Normal, data });
  }
  return out;
}

interface Rate {
  batches: number;
  entries: number;
  bytes: number;
  seconds: number;
}

function fmt(r: Rate): string {
  const s = r.seconds;
  return `${(r.entries / s).toFixed(0).padStart(9)} entries/s ${(r.batches / s).toFixed(0).padStart(7)} syncs/s ${(r.bytes / s / 1e6).toFixed(1).padStart(7)} MB/s`;
}

async function walRun(batch: number): Promise<Rate & { frameBytesPerBatch: number }> {
  const dir = join(root, `wal-b${batch}`);
  let written = 0;
  const w = await WAL.create(dir, new Uint8Array(16), { disk, onWrite: (n) => (written += n) });
  // let the background preallocation of the next segment finish before timing
  await new Promise((r) => setTimeout(r, 200));
  let index = 1;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  let batches = 0;
  const before = written;
  let hs: HardState = { term: 1, vote: 1n, commit: 0 };
  while (performance.now() < deadline) {
    const ents = makeBatch(index, batch);
    hs = { term: 1, vote: 1n, commit: index - 1 };
    await w.save(hs, ents, true);
    index += batch;
    batches++;
  }
  const seconds = (performance.now() - start) / 1000;
  const bytes = written - before;
  await w.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { batches, entries: batches * batch, bytes, seconds, frameBytesPerBatch: bytes / batches };
}

/** The same bytes per sync, written by a bare loop of write + fdatasync into a preallocated file. */
async function rawRun(bytesPerBatch: number, batchEntries: number, sync: boolean): Promise<Rate> {
  const path = join(root, `raw-${bytesPerBatch}`);
  const size = 64 * 1000 * 1000;
  const fd = fs.openSync(path, 'w+');
  if (args.prealloc === 'sparse') fs.ftruncateSync(fd, size);
  else {
    const zeros = Buffer.alloc(1 << 20);
    for (let p = 0; p < size; p += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, size - p), p);
  }
  fs.fdatasyncSync(fd);
  const buf = Buffer.alloc(bytesPerBatch, 7);
  const write = (pos: number) =>
    new Promise<void>((res, rej) => fs.write(fd, buf, 0, buf.length, pos, (e) => (e ? rej(e) : res())));
  const fdatasync = () => new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
  let pos = 0;
  let batches = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (performance.now() < deadline) {
    if (pos + buf.length > size) pos = 0;
    if (sync) {
      fs.writeSync(fd, buf, 0, buf.length, pos);
      fs.fdatasyncSync(fd);
    } else {
      await write(pos);
      await fdatasync();
    }
    pos += buf.length;
    batches++;
  }
  const seconds = (performance.now() - start) / 1000;
  fs.closeSync(fd);
  fs.rmSync(path);
  return { batches, entries: batches * batchEntries, bytes: batches * buf.length, seconds };
}

async function replayRun(megabytes: number): Promise<{ bytes: number; seconds: number; entries: number; segments: number }> {
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
  const r = await WAL.open(dir, { index: 0, term: 0 }, { disk });
  const { entries } = await r.readAll();
  const seconds = (performance.now() - start) / 1000;
  await r.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { bytes: written, seconds, entries: entries.length, segments };
}

async function main(): Promise<void> {
  console.log(`WAL bench: ${ENTRY_BYTES}-byte entries, one fdatasync per batch, ${SECONDS}s per case, dir ${root}, prealloc ${args.prealloc}`);
  for (const batch of args.batches!.split(',').map(Number)) {
    const wal = await walRun(batch);
    const raw = await rawRun(Math.round(wal.frameBytesPerBatch), batch, false);
    const rawSync = await rawRun(Math.round(wal.frameBytesPerBatch), batch, true);
    const ratio = raw.batches / raw.seconds / (wal.batches / wal.seconds);
    console.log(`batch ${String(batch).padStart(3)}  wal      ${fmt(wal)}`);
    console.log(`           raw async ${fmt(raw)}   (raw/wal time per sync ${ratio.toFixed(2)}x)`);
    console.log(`           raw sync  ${fmt(rawSync)}`);
  }
  const mb = Number(args['replay-mb']);
  if (mb > 0) {
    const rp = await replayRun(mb);
    console.log(
      `replay     ${(rp.bytes / 1e6).toFixed(0)} MB in ${rp.segments} segments, ${rp.entries} entries: ${rp.seconds.toFixed(2)} s = ${(rp.bytes / 1e6 / rp.seconds).toFixed(0)} MB/s`,
    );
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(root, { recursive: true, force: true }));
