// What a full scan of the store costs through classic-level, by what each record comes
// back as. `snapshot save`, the bbolt export before a .snap and at a stop, and a restart's
// key index rebuild all read every record with `nextv`; classic-level turns each record
// into JavaScript values on the main thread as a batch completes: entries are a
// two-element array of two Buffers, keys or values alone one Buffer. Timing the three over
// the same store gives what the second Buffer and the array add, and the main thread's
// share of a scan bounds what a packed read (one Buffer per batch, which classic-level does
// not offer) could save.
//
//   npx tsx bench/mvcc/iterate.ts [--records 1000000] [--value-bytes 300] [--passes 3]
//
// Records are etcd-shaped: a 17-byte revision key and a value of --value-bytes random
// bytes, written in batches of 1,000 into a fresh LevelDB under the repository (removed at
// the end). Each pass reads every record once per mode, the modes in turn; prints each
// mode's best pass: wall time, the process's CPU (all threads) and its main thread's, per record.

import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ClassicLevel } from 'classic-level';
import { arg, repoRoot } from '../member.js';
import { threadCpu } from '../thread-cpu.js';

const records = Number(arg('records', '1000000'));
const valueBytes = Number(arg('value-bytes', '300'));
const passes = Number(arg('passes', '3'));

type Mode = 'entries' | 'keys' | 'values';
const MODES: readonly Mode[] = ['entries', 'keys', 'values'];
/** what the store's full scans use (src/mvcc/backend.ts) */
const BATCH = 1000;
const BATCH_BYTES = 1 << 20;

const dir = mkdtempSync(path.join(repoRoot, '.bench-iterate-'));
const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });

async function fill(): Promise<void> {
  const value = randomBytes(valueBytes);
  for (let i = 0; i < records; i += 1000) {
    const batch = db.batch();
    for (let j = i; j < Math.min(records, i + 1000); j++) {
      const key = Buffer.alloc(17);
      key.writeBigUInt64BE(BigInt(j + 1), 0);
      key[8] = 0x5f; // '_', as etcd's revision keys
      batch.put(key, value);
    }
    await batch.write();
  }
  await db.compactRange(Buffer.alloc(0), Buffer.alloc(17, 0xff));
}

interface Scan {
  wallUs: number;
  /** all threads: LevelDB reads on a pool thread */
  cpuUs: number;
  /** the JavaScript thread, which turns each record into Buffers */
  mainUs: number;
}

async function scan(mode: Mode): Promise<Scan> {
  const opts = { highWaterMarkBytes: BATCH_BYTES, fillCache: false };
  const it = mode === 'entries' ? db.iterator(opts) : mode === 'keys' ? db.keys(opts) : db.values(opts);
  const cpu0 = process.cpuUsage();
  const main0 = threadCpu().get('main')!;
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (;;) {
    const batch: unknown[] = await it.nextv(BATCH);
    if (batch.length === 0) break;
    n += batch.length;
  }
  await it.close();
  const cpu = process.cpuUsage(cpu0);
  const mainUs = (threadCpu().get('main')! - main0) * 1e6;
  if (n !== records) throw new Error(`${mode}: read ${n} records of ${records}`);
  return { wallUs: Number(process.hrtime.bigint() - t0) / 1000, cpuUs: cpu.user + cpu.system, mainUs };
}

try {
  await db.open();
  await fill();
  const best = new Map<Mode, Scan>();
  for (let p = 0; p < passes; p++) {
    for (const mode of MODES) {
      const r = await scan(mode);
      const b = best.get(mode);
      if (b === undefined || r.wallUs < b.wallUs) best.set(mode, r);
    }
  }
  console.log(`${records} records, 17-byte keys, ${valueBytes}-byte values; best of ${passes} passes`);
  console.log('mode      wall s  µs/record  CPU s  CPU µs/record  main thread µs/record');
  for (const mode of MODES) {
    const r = best.get(mode)!;
    console.log(
      `${mode.padEnd(8)} ${(r.wallUs / 1e6).toFixed(2).padStart(7)} ${(r.wallUs / records).toFixed(2).padStart(10)} ${(r.cpuUs / 1e6).toFixed(2).padStart(6)} ${(r.cpuUs / records).toFixed(2).padStart(14)} ${(r.mainUs / records).toFixed(2).padStart(22)}`,
    );
  }
} finally {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
