// I/O errors: they reach the caller, the WAL stops accepting writes, and nothing
// acknowledged before is lost.

import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raftpb/index.js';
import { type FaultHook, MemDisk, WAL, WalFailedError } from '../../src/wal/index.js';
import { META, captureLogger, entries, hs } from './helpers.js';

const DIR = '/d/member/wal';

async function replay(disk: MemDisk): Promise<Entry[]> {
  const w = await WAL.open(DIR, { index: 0, term: 0 }, { disk, segmentSizeBytes: 4096 });
  try {
    return (await w.readAll()).entries;
  } finally {
    await w.close();
  }
}

/** Fails the `nth` matching operation (1-based) with `code`. */
function failNth(op: string, nth: number, code: string, pathPart = '.wal'): FaultHook {
  let seen = 0;
  return (o) => (o.op === op && o.path.includes(pathPart) && ++seen === nth ? { error: code } : undefined);
}

describe('write and sync failures', () => {
  for (const [op, code] of [
    ['write', 'ENOSPC'],
    ['write', 'EIO'],
    ['fdatasync', 'EIO'],
    ['fdatasync', 'ENOSPC'],
  ] as const) {
    it(`${code} on ${op} fails save(), later writes are refused, acknowledged entries survive`, async () => {
      const disk = new MemDisk();
      const log = captureLogger();
      const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4096, logger: log });
      await w.save(hs(1, 2), entries(1, 5), true);
      disk.fault = failNth(op, 1, code);
      const err = await w.save(hs(1, 5), entries(6, 8), true).catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe(code);
      disk.fault = undefined;
      // the disk works again, but the WAL no longer trusts its own state
      const again = await w.save(hs(1, 5), entries(6, 8), true).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(WalFailedError);
      expect((again as Error).message).toContain(code);
      await expect(w.saveSnapshot({ index: 3, term: 1 })).rejects.toBeInstanceOf(WalFailedError);
      expect(log.lines.some((l) => l.level === 'warn' && l.msg.includes('refusing further writes'))).toBe(true);
      await w.close();

      const got = await replay(disk);
      expect(got.slice(0, 5)).toEqual(entries(1, 5));
      // the failed batch was never acknowledged: it may be there (the write landed before the sync
      // failed) or not, but nothing else is
      expect([entries(1, 5), entries(1, 8)]).toContainEqual(got);
    });
  }

  it('an fsync failure on saveSnapshot surfaces and stops the WAL', async () => {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4096 });
    await w.save(hs(1, 2), entries(1, 5), true);
    disk.fault = failNth('fdatasync', 1, 'EIO');
    await expect(w.saveSnapshot({ index: 2, term: 1 })).rejects.toMatchObject({ code: 'EIO' });
    disk.fault = undefined;
    await expect(w.save(hs(1, 5), entries(6, 6), true)).rejects.toBeInstanceOf(WalFailedError);
    await w.close();
    expect(await replay(disk)).toEqual(entries(1, 5));
  });

  it('short writes are completed, and a write that makes no progress is an error', async () => {
    const disk = new MemDisk();
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4096 });
    disk.fault = (o) => (o.op === 'write' ? { shortWrite: 3 } : undefined);
    await w.save(hs(1, 2), entries(1, 10), true);
    disk.fault = (o) => (o.op === 'write' ? { shortWrite: 0 } : undefined);
    await expect(w.save(hs(1, 2), entries(11, 11), true)).rejects.toMatchObject({ code: 'EIO' });
    disk.fault = undefined;
    await w.close();
    expect(await replay(disk)).toEqual(entries(1, 10));
  });

  it('running out of space while preparing the next segment fails the save that needs it', async () => {
    const disk = new MemDisk();
    // every preallocation of a .tmp segment fails
    disk.fault = (o) => (o.op === 'truncate' && o.path.endsWith('.tmp') ? { error: 'ENOSPC' } : undefined);
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 1024 });
    const acked: Entry[] = [];
    let failure: unknown;
    for (let i = 1; i <= 40 && failure === undefined; i += 2) {
      try {
        await w.save(hs(1, i), entries(i, i + 1), true);
        acked.push(...entries(i, i + 1));
      } catch (err) {
        failure = err;
      }
    }
    expect((failure as NodeJS.ErrnoException).code).toBe('ENOSPC');
    await expect(w.save(hs(1, 50), entries(50, 50), true)).rejects.toBeInstanceOf(WalFailedError);
    await w.close();
    disk.fault = undefined;
    const got = await replay(disk);
    expect(got.slice(0, acked.length)).toEqual(acked);
    expect(got.length).toBeLessThanOrEqual(acked.length + 2);
  });

  it('a failure while creating leaves no WAL behind and no lock held', async () => {
    const disk = new MemDisk();
    disk.fault = failNth('fdatasync', 1, 'EIO');
    await expect(WAL.create(DIR, META, { disk, segmentSizeBytes: 4096 })).rejects.toMatchObject({ code: 'EIO' });
    disk.fault = undefined;
    expect(WAL.exists(DIR, disk)).toBe(false);
    const w = await WAL.create(DIR, META, { disk, segmentSizeBytes: 4096 });
    await w.save(hs(1, 1), entries(1, 1), true);
    await w.close();
    expect(await replay(disk)).toEqual(entries(1, 1));
  });
});
