// Crash and corruption: what reopening finds after the process dies at any byte or
// any disk operation, after a power cut, and after single-bit damage.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Entry, emptyHardState } from '../../src/raftpb/index.js';
import { FRAME_HEADER_BYTES } from '../../src/wal/frame.js';
import {
  MemDisk,
  SimulatedCrash,
  WAL,
  WalCorruptError,
  type WalContents,
  walName,
} from '../../src/wal/index.js';
import { META, captureLogger, entries, entry, hs, tempDir } from './helpers.js';

const DIR = '/d/member/wal';
const SEG = 8192;

async function reopen(disk: MemDisk, logger = captureLogger()): Promise<WalContents> {
  const w = await WAL.open(DIR, { index: 0, term: 0 }, { disk, segmentSizeBytes: SEG, logger });
  try {
    return await w.readAll();
  } finally {
    await w.close();
  }
}

/** Frame starts and record ends (offsets relative to `from`) of the frames in bytes[from, to). */
function frameLayout(bytes: Uint8Array, from: number, to: number): { starts: number[]; recordEnds: number[] } {
  const starts: number[] = [];
  const recordEnds: number[] = [];
  for (let p = from; p < to; ) {
    const len = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16);
    const top = bytes[p + 7]!;
    const pad = top & 0x80 ? top & 7 : 0;
    starts.push(p - from);
    recordEnds.push(p - from + FRAME_HEADER_BYTES + len);
    p += FRAME_HEADER_BYTES + len + pad;
  }
  return { starts, recordEnds };
}

describe('process crash at every byte of the last save', () => {
  const base = entries(1, 6);
  const last = [entry(7), entry(8)];
  const lastState = hs(2, 7);

  async function scenario(crashAt: number | undefined): Promise<{ disk: MemDisk; acked: boolean; before: number }> {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: SEG });
    await w.save(hs(1, 3), base.slice(0, 3), true);
    await w.save(hs(1, 5), base.slice(3), true);
    const before = disk.bytesWritten;
    if (crashAt !== undefined) disk.crashAfterBytes = before + crashAt;
    let acked = false;
    try {
      await w.save(lastState, last, true);
      acked = true;
      await w.close();
    } catch (err) {
      expect(err).toBeInstanceOf(SimulatedCrash);
    }
    return { disk, acked, before };
  }

  it('reopens with exactly the records whose bytes all landed, and stays appendable', async () => {
    const full = await scenario(undefined);
    expect(full.acked).toBe(true);
    const total = full.disk.bytesWritten - full.before;
    const { starts, recordEnds } = frameLayout(full.disk.fileBytes(join(DIR, walName(0, 0))), full.before, full.before + total);
    expect(recordEnds).toHaveLength(3);
    for (let n = 0; n <= total; n++) {
      const { disk, acked } = await scenario(n);
      expect(acked).toBe(false);
      const log = captureLogger();
      const got = await reopen(disk.afterCrash('process'), log).catch((e: unknown) => {
        throw new Error(`crash after ${n} bytes: ${String(e)}`);
      });
      const whole = recordEnds.filter((end) => end <= n).length;
      expect(got.entries, `crash after ${n} bytes`).toEqual([...base, ...last.slice(0, Math.min(whole, 2))]);
      expect(got.hardState, `crash after ${n} bytes`).toEqual(whole === 3 ? lastState : hs(1, 5));
      // a record cut part way is repaired, and the repair is logged
      const partial = starts.some((s, i) => s < n && n < recordEnds[i]!);
      expect(log.lines.some((l) => l.msg === 'repairing torn WAL tail'), `crash after ${n} bytes`).toBe(partial);
    }
  });

  it('after a repair, new appends replay cleanly', async () => {
    const full = await scenario(undefined);
    const total = full.disk.bytesWritten - full.before;
    for (let n = 1; n < total; n += 5) {
      const { disk } = await scenario(n);
      const d2 = disk.afterCrash('process');
      const w = await WAL.open(DIR, { index: 0, term: 0 }, { disk: d2, segmentSizeBytes: SEG });
      const { entries: got } = await w.readAll();
      const next = got.length + 1;
      await w.save(hs(3, next), [entry(next, 3), entry(next + 1, 3)], true);
      await w.close();
      const again = await reopen(d2);
      expect(again.entries).toEqual([...got, entry(next, 3), entry(next + 1, 3)]);
      expect(again.hardState).toEqual(hs(3, next));
    }
  });
});

describe('process crash before every disk operation', () => {
  it('create, saves, segment cuts, snapshot markers and close: acknowledged data always survives', async () => {
    // count the operations of a full run, then crash before each one in turn
    const run = async (disk: MemDisk, acked: Entry[]): Promise<void> => {
      const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 1024 });
      for (let i = 1; i <= 30; i += 3) {
        const batch = entries(i, i + 2);
        await w.save(hs(1, i), batch, true);
        acked.push(...batch);
        if (i % 9 === 1) await w.saveSnapshot({ index: i, term: 1 });
      }
      await w.close();
    };
    let ops = 0;
    const counter = new MemDisk();
    counter.fault = () => {
      ops++;
      return undefined;
    };
    await run(counter, []);
    expect(ops).toBeGreaterThan(50);

    for (let k = 1; k <= ops; k++) {
      const disk = new MemDisk();
      let seen = 0;
      disk.fault = () => (++seen === k ? { crash: true, afterBytes: 0 } : undefined);
      const acked: Entry[] = [];
      await run(disk, acked).catch((err: unknown) => {
        if (!(err instanceof SimulatedCrash)) throw err;
      });
      const after = disk.afterCrash('process');
      if (!WAL.exists(DIR, after)) {
        // the crash came before create() renamed the WAL into place: nothing was acknowledged
        expect(acked, `crash before op ${k}`).toEqual([]);
        continue;
      }
      const got = await reopen(after).catch((e: unknown) => {
        throw new Error(`crash before op ${k}: ${String(e)}`);
      });
      // everything acknowledged is there, and nothing beyond the batch in flight
      expect(got.entries.slice(0, acked.length), `crash before op ${k}`).toEqual(acked);
      expect(got.entries.length, `crash before op ${k}`).toBeLessThanOrEqual(acked.length + 3);
      expect(got.entries, `crash before op ${k}`).toEqual(entries(1, got.entries.length));
    }
  });
});

describe('power cut', () => {
  it('keeps every acknowledged entry whatever subset of unsynced sectors reached the disk', async () => {
    for (let seed = 1; seed <= 150; seed++) {
      const disk = new MemDisk();
      const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 2048 });
      // crash somewhere in the next few KB of writes
      disk.crashAfterBytes = disk.bytesWritten + ((seed * 7919) % 6000);
      const acked: Entry[] = [];
      let inflight: Entry[] = [];
      try {
        for (let i = 1; ; i += 5) {
          inflight = entries(i, i + 4, 1, 40 + ((seed + i) % 300));
          await w.save(hs(1, i), inflight, true);
          acked.push(...inflight);
          inflight = [];
        }
      } catch (err) {
        expect(err).toBeInstanceOf(SimulatedCrash);
      }
      const after = disk.afterCrash('power', seed);
      const got = await reopen(after).catch((e: unknown) => {
        throw new Error(`seed ${seed}: ${String(e)}`);
      });
      expect(got.entries.slice(0, acked.length), `seed ${seed}`).toEqual(acked);
      // beyond that, at most a prefix of the batch that was being written
      expect(got.entries.slice(acked.length), `seed ${seed}`).toEqual(inflight.slice(0, got.entries.length - acked.length));
    }
  });

  it('keeps what a durable write acknowledged when unsynced commit records came before it', async () => {
    // A save with entries is one write through the O_DSYNC descriptor, which makes only its
    // own bytes durable: the commit-only HardStates written unsynced before it must be
    // rewritten with it, or a power cut leaves a hole of zeros before the entries.
    for (let seed = 1; seed <= 40; seed++) {
      let disk = new MemDisk();
      let w = await WAL.create(DIR, META, { disk, segmentSizeBytes: SEG });
      const acked: Entry[] = [];
      let index = 1;
      for (let life = 0; life < 2; life++) {
        if (life > 0) {
          // a restart after a process crash: everything written is still there
          disk = disk.afterCrash('process');
          w = await WAL.open(DIR, { index: 0, term: 0 }, { disk, segmentSizeBytes: SEG });
          await w.readAll();
        }
        for (let round = 0; round < 4; round++) {
          const batch = entries(index, index + 2, 1, 30 + ((seed * 13 + round) % 200));
          await w.save(hs(1, index - 1), batch, true);
          acked.push(...batch);
          index += 3;
          for (let c = 0; c < 1 + ((seed + round) % 3); c++) await w.save(hs(1, index - 3 + c), [], false);
        }
        // The cut comes after a durable save: unsynced records at the very end are another
        // matter (a torn tail).
        const last = entries(index, index, 1, 50);
        await w.save(hs(1, index - 1), last, true);
        acked.push(...last);
        index += 1;
      }
      const got = await reopen(disk.afterCrash('power', seed)).catch((e: unknown) => {
        throw new Error(`seed ${seed}: ${String(e)}`);
      });
      expect(got.entries, `seed ${seed}`).toEqual(acked);
    }
  });
});

describe('unsynced records before a durable save', () => {
  it('past 1 MiB, are not rewritten but synced whole, and survive a power cut', async () => {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4 * 1024 * 1024 });
    await w.save(hs(1, 0), entries(1, 1), true);
    for (let c = 0; c < 1100; c++) await w.save(hs(1, 1), entries(c + 2, c + 2, 1, 1000), false);
    const ops: string[] = [];
    disk.fault = (o) => {
      if (o.path.endsWith('.wal')) ops.push(o.op === 'write' ? `write of ${o.length}` : o.op);
      return undefined;
    };
    await w.save(hs(1, 1102), entries(1102, 1102), true);
    // the new records alone, not the 1.1 MB before them, then the sync
    expect(ops).toHaveLength(2);
    expect(ops[0]).toMatch(/^write of \d{2,3}$/);
    expect(ops[1]).toBe('fdatasync');
    const got = await reopen(disk.afterCrash('power', 7));
    expect(got.entries).toEqual([...entries(1, 1), ...entries(2, 1101, 1, 1000), ...entries(1102, 1102)]);
  });
});

describe('damage on disk', () => {
  async function sample(): Promise<{ disk: MemDisk; path: string; bytes: Uint8Array; used: number; good: WalContents }> {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4096 });
    await w.save(hs(1, 1), entries(1, 3, 1, 20), true);
    await w.saveSnapshot({ index: 1, term: 1 });
    await w.save(hs(1, 3), entries(4, 5, 1, 13), true);
    const used = (w as unknown as { mode: { tail: { offset: number } } }).mode.tail.offset;
    await w.close();
    const path = join(DIR, walName(0, 0));
    return { disk, path, bytes: disk.fileBytes(path), used, good: await reopen(disk) };
  }

  it('detects a flipped bit anywhere in the records, or it changed nothing that is read', async () => {
    const { disk, path, bytes, used, good } = await sample();
    const { starts } = frameLayout(bytes, 0, used);
    // the record type (first varint of each record) is outside the CRC in etcd's format
    const typeBytes = new Set(starts.map((s) => s + FRAME_HEADER_BYTES + 1));
    const outcomes = { detected: 0, harmless: 0, typeFlips: 0 };
    for (let bit = 0; bit < used * 8; bit++) {
      const damaged = bytes.slice();
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      disk.setFileBytes(path, damaged);
      const res = await reopen(disk).then(
        (c) => c,
        (e: unknown) => e,
      );
      disk.setFileBytes(path, bytes);
      if (res instanceof WalCorruptError) {
        expect(res.file).toBe(path);
        expect(res.offset % 8).toBe(0);
        outcomes.detected++;
      } else if (res instanceof Error) {
        // flips outside the CRC (record type, frame length) caught by the replay rules
        expect(res.message, `bit ${bit}`).toMatch(/^wal: (conflicting metadata|snapshot|slice bounds)/);
        outcomes.detected++;
      } else if (typeBytes.has(bit >> 3)) {
        outcomes.typeFlips++;
      } else {
        // undetected: only flips that change nothing read back (padding is outside the CRC, as in etcd)
        expect(res, `bit ${bit} (byte ${bit >> 3})`).toEqual(good);
        outcomes.harmless++;
      }
    }
    expect(outcomes.detected).toBeGreaterThan(used * 8 * 0.9);
    expect(outcomes.typeFlips).toBeLessThan(starts.length * 8);
  });

  it('names the file and offset of the damaged record', async () => {
    const { disk, path, bytes } = await sample();
    const damaged = bytes.slice();
    damaged[0x70]! ^= 0x10; // inside the data of the first entry (its frame starts at 0x50)
    disk.setFileBytes(path, damaged);
    const err = (await reopen(disk).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/crc mismatch in .* at offset 80;/);
    expect(err.offset).toBe(0x50);
  });

  it('a zeroed preallocated tail ends the log; garbage after it is wiped and logged', async () => {
    const { disk, path, bytes, used, good } = await sample();
    const damaged = bytes.slice();
    // stray bytes in a later sector: a write whose first sector never landed
    const strayAt = (Math.floor(used / 512) + 1) * 512 + 64;
    damaged.fill(0x5a, strayAt, strayAt + 36);
    disk.setFileBytes(path, damaged);
    const log = captureLogger();
    expect(await reopen(disk, log)).toEqual(good);
    expect(log.lines.find((l) => l.msg === 'repairing torn WAL tail')?.fields['discarded-non-zero-bytes']).toBe(36);
    expect(disk.fileBytes(path).subarray(used).every((b) => b === 0)).toBe(true);
  });

  it('damage in a segment before the last is never repaired', async () => {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 1024 });
    for (let i = 1; i <= 40; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    await w.close();
    const first = join(DIR, walName(0, 0));
    const bytes = disk.fileBytes(first);
    // cut the first segment short, as a lost write would
    disk.setFileBytes(first, bytes.subarray(0, bytes.length - 40));
    const err = await reopen(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect((err as WalCorruptError).file).toBe(first);
  });

  it('a missing middle segment is an error, not a silent gap', async () => {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 1024 });
    for (let i = 1; i <= 40; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    await w.close();
    const names = (await disk.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    await disk.unlink(join(DIR, names[1]!));
    await expect(reopen(disk)).rejects.toThrow(/wal: file not found/);
  });
});

describe('on the real file system', () => {
  it('a write cut at every byte of the last record (rest still preallocated zeros) reopens to the records before it', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const walDir = join(dir, 'wal');
      const opts = { segmentSizeBytes: 16 * 1024 };
      const w = await WAL.create(walDir, META, opts);
      await w.save(hs(1, 2), entries(1, 4), true);
      const before = (w as unknown as { mode: { tail: { offset: number } } }).mode.tail.offset;
      await w.save(undefined, [entry(5, 1, 100)], true);
      const after = (w as unknown as { mode: { tail: { offset: number } } }).mode.tail.offset;
      await w.close();
      const seg = join(walDir, walName(0, 0));
      const full = readFileSync(seg);
      const recordEnd = before + FRAME_HEADER_BYTES + (full[before]! | (full[before + 1]! << 8));
      expect(after - before).toBeGreaterThan(100);

      const trial = join(dir, 'trial');
      mkdirSync(trial);
      for (let n = 0; n <= after - before; n++) {
        const torn = Buffer.from(full);
        torn.fill(0, before + n);
        writeFileSync(join(trial, walName(0, 0)), torn);
        const r = await WAL.open(trial, { index: 0, term: 0 }, opts);
        const got = await r.readAll().finally(() => r.close());
        const want = before + n >= recordEnd ? [...entries(1, 4), entry(5, 1, 100)] : entries(1, 4);
        expect(got.entries, `cut after ${n} bytes`).toEqual(want);
        expect(got.hardState).toEqual(hs(1, 2));
      }
    } finally {
      cleanup();
    }
  });
});

describe('empty state', () => {
  it('an all-zero segment after its header reads as an empty log', async () => {
    const disk = new MemDisk();
    await (await WAL.create(DIR, META, { disk, segmentSizeBytes: SEG })).close();
    const got = await reopen(disk);
    expect(got).toEqual({ metadata: META, hardState: emptyHardState, entries: [] });
  });
});
