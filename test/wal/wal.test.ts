import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { type Entry, emptyHardState } from '../../src/raftpb/index.js';
import {
  MemDisk,
  WAL,
  WalError,
  createNodeDisk,
  nodeDisk,
  WalLockedError,
  purgeFiles,
  validSnapshotEntries,
  walName,
} from '../../src/wal/index.js';
import { META, captureLogger, entries, entry, hs, tempDir } from './helpers.js';

const DIR = '/data/member/wal';

function memOpts(disk = new MemDisk(), segmentSizeBytes = 4096) {
  return { disk, segmentSizeBytes };
}

describe('WAL create / open / readAll', () => {
  it('replays metadata, the last HardState and the entries after the snapshot', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 0), entries(1, 5), true);
    await w.save(hs(1, 3), entries(6, 10), true);
    await w.saveSnapshot({ index: 4, term: 1 });
    await w.save(hs(2, 8), [], true);
    await w.close();

    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    const all = await r.readAll();
    expect(all.metadata).toEqual(META);
    expect(all.hardState).toEqual(hs(2, 8));
    expect(all.entries).toEqual(entries(1, 10));
    await r.close();

    const r2 = await WAL.open(DIR, { index: 4, term: 1 }, o);
    const after = await r2.readAll();
    expect(after.entries).toEqual(entries(5, 10));
    await r2.close();
  });

  it('a fresh WAL reads back empty', async () => {
    const o = memOpts();
    await (await WAL.create(DIR, META, o)).close();
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    expect(await r.readAll()).toEqual({ metadata: META, hardState: emptyHardState, entries: [] });
    await r.close();
  });

  it('later entries replace the conflicting suffix (raft log truncation)', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 2), entries(1, 6, 1), true);
    await w.save(hs(2, 2), entries(4, 5, 2), true); // new leader overwrote 4..6
    await w.close();
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    const { entries: got } = await r.readAll();
    expect(got).toEqual([...entries(1, 3, 1), ...entries(4, 5, 2)]);
    await r.close();
  });

  it('appends after replay continue the CRC chain', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 1), entries(1, 3), true);
    await w.close();
    for (let round = 0; round < 3; round++) {
      const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
      const { entries: got } = await r.readAll();
      const next = got.length + 1;
      await r.save(hs(1, next), entries(next, next + 2), true);
      await r.close();
    }
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    expect((await r.readAll()).entries).toEqual(entries(1, 12));
    await r.close();
  });

  it('refuses to create over an existing WAL and to save before readAll', async () => {
    const o = memOpts();
    await (await WAL.create(DIR, META, o)).close();
    await expect(WAL.create(DIR, META, o)).rejects.toThrow(/already holds a WAL/);
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    await expect(r.save(hs(1, 0), entries(1, 1), true)).rejects.toThrow(/readAll must be called/);
    await r.close();
  });

  it('reports a snapshot the WAL never recorded, and one recorded with another term', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 3), entries(1, 5), true);
    await w.saveSnapshot({ index: 3, term: 1 });
    await w.close();
    const r1 = await WAL.open(DIR, { index: 4, term: 1 }, o);
    await expect(r1.readAll()).rejects.toThrow(/wal: snapshot not found/);
    await r1.close();
    const r2 = await WAL.open(DIR, { index: 3, term: 2 }, o);
    await expect(r2.readAll()).rejects.toThrow(/wal: snapshot mismatch/);
    await r2.close();
  });

  it('reports a missing WAL', async () => {
    const o = memOpts();
    await o.disk.mkdirAll(DIR);
    await expect(WAL.open(DIR, { index: 0, term: 0 }, o)).rejects.toThrow(/wal: file not found/);
    expect(WAL.exists(DIR, o.disk)).toBe(false);
    await (await WAL.create('/other/wal', META, o)).close();
    expect(WAL.exists('/other/wal', o.disk)).toBe(true);
  });

  it('writes the first segment as etcd does: crc, metadata, empty snapshot marker', async () => {
    const o = memOpts();
    await (await WAL.create(DIR, META, o)).close();
    const bytes = o.disk.fileBytes(join(DIR, walName(0, 0)));
    // crc record {type 4, crc 0}, 8-byte aligned
    expect([...bytes.subarray(0, 16)]).toEqual([4, 0, 0, 0, 0, 0, 0, 0x84, 0x08, 0x04, 0x10, 0x00, 0, 0, 0, 0]);
    expect(bytes.length).toBe(4096); // preallocated
  });
});

describe('segments', () => {
  it('cuts full segments, names them by sequence and next index, and reads across them', async () => {
    const o = memOpts(new MemDisk(), 2048);
    const log = captureLogger();
    const w = await WAL.create(DIR, META, { ...o, logger: log });
    for (let i = 1; i <= 100; i += 4) await w.save(hs(1, i - 1), entries(i, i + 3), true);
    await w.close();
    const names = (await o.disk.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    expect(names.length).toBeGreaterThan(4);
    expect(names[0]).toBe(walName(0, 0));
    names.forEach((n, i) => expect(n.startsWith(i.toString(16).padStart(16, '0'))).toBe(true));
    expect(log.lines.filter((l) => l.msg === 'created a new WAL segment')).toHaveLength(names.length - 1);
    expect(await o.disk.readdir(DIR)).not.toContain('0.tmp'); // the prepared file is removed on close

    // every segment after the first starts with crc, metadata and the HardState at the cut
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    const all = await r.readAll();
    expect(all.entries).toEqual(entries(1, 100));
    expect(all.hardState).toEqual(hs(1, 96));
    await r.close();

    // a segment's name is the index of its first entry: opening at a later snapshot skips older segments
    const w2 = await WAL.open(DIR, { index: 0, term: 0 }, o);
    await w2.readAll();
    await w2.saveSnapshot({ index: 60, term: 1 });
    await w2.close();
    const r2 = await WAL.open(DIR, { index: 60, term: 1 }, o);
    expect((await r2.readAll()).entries).toEqual(entries(61, 100));
    await r2.close();
  });

  it('a snapshot marker in a later segment is found when earlier segments are purged', async () => {
    const o = memOpts(new MemDisk(), 1024);
    const w = await WAL.create(DIR, META, o);
    for (let i = 1; i <= 60; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    await w.saveSnapshot({ index: 50, term: 1 });
    await w.releaseLockTo(50);
    const purged = await purgeFiles(DIR, '.wal', 1, { disk: o.disk });
    expect(purged.length).toBeGreaterThan(0);
    await w.save(hs(1, 61), entries(61, 62), true);
    await w.close();
    const r = await WAL.open(DIR, { index: 50, term: 1 }, o);
    expect((await r.readAll()).entries).toEqual(entries(51, 62));
    await r.close();
  });
});

describe('retention', () => {
  it('purges only segments released by releaseLockTo, never one needed past the snapshot', async () => {
    const o = memOpts(new MemDisk(), 1024);
    const w = await WAL.create(DIR, META, o);
    for (let i = 1; i <= 80; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    const segs = (await o.disk.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    expect(segs.length).toBeGreaterThan(6);

    // nothing released yet: purge removes nothing even with max 1
    expect(await purgeFiles(DIR, '.wal', 1, { disk: o.disk })).toEqual([]);

    // snapshot at 41: the segment holding entry 41 (and everything after) must stay
    await w.saveSnapshot({ index: 41, term: 1 });
    await w.releaseLockTo(41);
    const purged = await purgeFiles(DIR, '.wal', 1, { disk: o.disk });
    const left = (await o.disk.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    expect(purged.length).toBeGreaterThan(0);
    expect(left).toEqual(segs.slice(purged.length));
    const firstLeftIndex = parseInt(left[0]!.slice(17, 33), 16);
    expect(firstLeftIndex).toBeLessThanOrEqual(41);
    await w.close();
    const r = await WAL.open(DIR, { index: 41, term: 1 }, o);
    expect((await r.readAll()).entries).toEqual(entries(42, 80));
    await r.close();
  });

  it('keeps at most max files once they are released', async () => {
    const o = memOpts(new MemDisk(), 1024);
    const w = await WAL.create(DIR, META, o);
    for (let i = 1; i <= 80; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    await w.releaseLockTo(80);
    await purgeFiles(DIR, '.wal', 3, { disk: o.disk });
    expect((await o.disk.readdir(DIR)).filter((n) => n.endsWith('.wal'))).toHaveLength(3);
    await w.close();
  });

  it('max 0 keeps everything', async () => {
    const o = memOpts(new MemDisk(), 1024);
    const w = await WAL.create(DIR, META, o);
    for (let i = 1; i <= 40; i += 2) await w.save(hs(1, i), entries(i, i + 1), true);
    await w.close();
    expect(await purgeFiles(DIR, '.wal', 0, { disk: o.disk })).toEqual([]);
  });
});

describe('validSnapshotEntries', () => {
  it('lists the snapshot markers covered by the committed index', async () => {
    const o = memOpts(new MemDisk(), 1024);
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 10), entries(1, 20), true);
    await w.saveSnapshot({ index: 5, term: 1 });
    await w.saveSnapshot({ index: 10, term: 1 });
    await w.saveSnapshot({ index: 15, term: 1 }); // beyond commit 10
    await w.close();
    expect(await validSnapshotEntries(DIR, { disk: o.disk })).toEqual([
      { index: 0, term: 0 },
      { index: 5, term: 1 },
      { index: 10, term: 1 },
    ]);
  });
});

describe('locking', () => {
  it('a second open of the same directory fails at once, naming the directory and holder', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const walDir = join(dir, 'member', 'wal');
      const w = await WAL.create(walDir, META, { segmentSizeBytes: 64 * 1024 });
      const err = await WAL.open(walDir, { index: 0, term: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WalLockedError);
      expect((err as Error).message).toContain(walDir);
      expect((err as Error).message).toContain(`pid ${process.pid}`);
      await w.close();
      const r = await WAL.open(walDir, { index: 0, term: 0 });
      await r.readAll();
      await r.close();
      expect(readdirSync(walDir).filter((n) => !n.endsWith('.wal'))).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('takes over the lock of a process that died', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const walDir = join(dir, 'wal');
      await (await WAL.create(walDir, META, { segmentSizeBytes: 64 * 1024 })).close();
      const { writeFileSync } = await import('node:fs');
      const { hostname } = await import('node:os');
      // pid 2^22+1 is above Linux's pid_max default range: never running
      writeFileSync(join(walDir, '.etcd-ts.lock'), JSON.stringify({ pid: 4194305, host: hostname(), bootId: '' }));
      const r = await WAL.open(walDir, { index: 0, term: 0 });
      await r.readAll();
      await r.close();
    } finally {
      cleanup();
    }
  });

  it('never takes over a lock from another host', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const walDir = join(dir, 'wal');
      await (await WAL.create(walDir, META, { segmentSizeBytes: 64 * 1024 })).close();
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(walDir, '.etcd-ts.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', bootId: 'x' }));
      await expect(WAL.open(walDir, { index: 0, term: 0 })).rejects.toThrow(/pid 1 on host elsewhere/);
    } finally {
      cleanup();
    }
  });

  it('is exclusive against another process', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const walDir = join(dir, 'wal');
      const w = await WAL.create(walDir, META, { segmentSizeBytes: 64 * 1024 });
      const { execFileSync } = await import('node:child_process');
      const script = `
        import { WAL } from ${JSON.stringify(join(process.cwd(), 'src/wal/index.ts'))};
        try { await WAL.open(${JSON.stringify(walDir)}, { index: 0, term: 0 }); console.log('OPENED'); }
        catch (e) { console.log(e.name + ': ' + e.message); }`;
      const out = execFileSync(join(process.cwd(), 'node_modules/.bin/tsx'), ['--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
      expect(out).toContain('WalLockedError');
      expect(out).toContain(walDir);
      expect(out).toContain(`pid ${process.pid}`);
      await w.close();
    } finally {
      cleanup();
    }
  });
});

describe('misc', () => {
  it('save with nothing to save does not write', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    const before = o.disk.bytesWritten;
    await w.save(undefined, [], true);
    await w.save(emptyHardState, [], true);
    expect(o.disk.bytesWritten).toBe(before);
    await w.close();
  });

  it('holds a HardState saved alone without a sync until the next write, as etcd buffers it', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.save(hs(1, 1), entries(1, 2), true);
    const ops: string[] = [];
    o.disk.fault = (op) => {
      if (op.path.endsWith('.wal')) ops.push(op.op);
      return undefined;
    };
    // commit indexes moving: no write, no job for the thread pool
    await w.save(hs(1, 1), [], false);
    await w.save(hs(1, 2), [], false);
    expect(ops).toEqual([]);
    // a process crash now loses them and nothing else
    const crashed = await WAL.open(DIR, { index: 0, term: 0 }, { ...o, disk: o.disk.afterCrash('process') });
    expect(await crashed.readAll()).toMatchObject({ hardState: hs(1, 1), entries: entries(1, 2) });
    await crashed.close();
    // the next durable save writes them ahead of its own records, in one durable write
    await w.save(hs(1, 2), entries(3, 3), true);
    expect(ops).toEqual(['write', 'fdatasync']);
    // and close writes what is still held
    await w.save(hs(1, 3), [], false);
    await w.close();
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    expect(await r.readAll()).toMatchObject({ hardState: hs(1, 3), entries: entries(1, 3) });
    await r.close();
  });

  it('reports fsync durations and written bytes', async () => {
    const o = memOpts();
    const fsyncs: number[] = [];
    let bytes = 0;
    const w = await WAL.create(DIR, META, { ...o, onFsync: (s) => fsyncs.push(s), onWrite: (n) => (bytes += n) });
    const n0 = fsyncs.length;
    await w.save(hs(1, 1), [entry(1)], true);
    await w.save(hs(1, 1), [entry(2)], false);
    expect(fsyncs.length - n0).toBe(1);
    expect(bytes).toBeGreaterThan(2 * 64);
    await w.close();
  });

  it('--unsafe-no-fsync: saves are written but never synced, so a process crash keeps them and a power cut may not', async () => {
    for (const unsafeNoFsync of [false, true]) {
      const disk = new MemDisk();
      const fsyncs: number[] = [];
      const w = await WAL.create(DIR, META, { ...memOpts(disk), unsafeNoFsync, onFsync: (s) => fsyncs.push(s) });
      const n0 = fsyncs.length;
      await w.save(hs(1, 1), [entry(1)], true);
      await w.save(hs(1, 2), [entry(2)], true);
      // as etcd: no fdatasync, so none counted in etcd_disk_wal_fsync_duration_seconds
      expect(fsyncs.length - n0).toBe(unsafeNoFsync ? 0 : 2);

      const afterProcessCrash = await WAL.open(DIR, { index: 0, term: 0 }, memOpts(disk.afterCrash('process')));
      expect(await afterProcessCrash.readAll()).toMatchObject({ hardState: hs(1, 2), entries: [entry(1), entry(2)] });
      await afterProcessCrash.close();
      // a power cut keeps each unsynced sector or not (MemDisk's draw, one seed per cut)
      const kept: number[] = [];
      for (let seed = 1; seed <= 8; seed++) {
        const afterPowerCut = await WAL.open(DIR, { index: 0, term: 0 }, memOpts(disk.afterCrash('power', seed)));
        kept.push((await afterPowerCut.readAll()).entries.length);
        await afterPowerCut.close();
      }
      if (unsafeNoFsync) expect(Math.min(...kept)).toBeLessThan(2);
      else expect(kept).toEqual(Array(8).fill(2));
    }
  });

  it('close is idempotent and a closed WAL refuses writes', async () => {
    const o = memOpts();
    const w = await WAL.create(DIR, META, o);
    await w.close();
    await w.close();
    await expect(w.save(hs(1, 1), [entry(1)], true)).rejects.toBeInstanceOf(WalError);
  });

  it('logs "slow fdatasync" when a sync takes over a second', async () => {
    const o = memOpts();
    const log = captureLogger();
    const w = await WAL.create(DIR, META, { ...o, logger: log });
    // a clock that jumps 1.5 s across the next fdatasync
    let t = 0;
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => (t += 1500));
    try {
      await w.save(hs(1, 1), [entry(1)], true);
    } finally {
      spy.mockRestore();
    }
    const slow = log.lines.filter((l) => l.msg === 'slow fdatasync');
    expect(slow).toHaveLength(1);
    expect(slow[0]!.fields).toEqual({ took: '1.5s', 'expected-duration': '1s' });
    await w.close();
  });

  it('reads frames that straddle read chunks, including records larger than a chunk', async () => {
    const o = memOpts(new MemDisk(), 64 * 1024 * 1024);
    const w = await WAL.create(DIR, META, o);
    const sizes = [1, 300, 70_000, 5 * 1024 * 1024, 17, 200_000, 4 * 1024 * 1024 + 3, 65_536, 9];
    const all: Entry[] = [];
    let index = 1;
    for (let round = 0; round < 6; round++) {
      const batch = sizes.map((size, i) => entry(index + i, 1, size + round));
      index += batch.length;
      all.push(...batch);
      await w.save(hs(1, index - 1), batch, true);
    }
    await w.close();
    const r = await WAL.open(DIR, { index: 0, term: 0 }, o);
    const got = await r.readAll();
    await r.close();
    expect(got.entries.length).toBe(all.length);
    got.entries.forEach((e, i) => {
      // compare big payloads as buffers: a deep equal over megabytes is slow
      expect({ ...e, data: undefined }, `entry ${i + 1}`).toEqual({ ...all[i]!, data: undefined });
      expect(Buffer.from(e.data).equals(Buffer.from(all[i]!.data)), `entry ${i + 1} data`).toBe(true);
    });
  });
});

describe('nodeDisk writeDurable', () => {
  it('writes through a second descriptor of the same file, also after the file was renamed', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const from = join(dir, '0.tmp');
      const to = join(dir, 'seg.wal');
      const file = await nodeDisk.open(from, 'create');
      await nodeDisk.preallocate(file, 4096);
      // as a WAL segment: prepared under a temporary name, renamed into place, then appended to
      await nodeDisk.rename(from, to);
      expect(await file.write(Buffer.from('plain '), 0)).toBe(6);
      expect(await file.writeDurable(Buffer.from('durable'), 6)).toBe(7);
      expect(await file.writeDurable(Buffer.from('!'), 13)).toBe(1);
      await file.close();
      const bytes = readFileSync(to);
      expect(bytes.length).toBe(4096);
      expect(bytes.subarray(0, 14).toString()).toBe('plain durable!');
      expect(readdirSync(dir)).toEqual(['seg.wal']);
    } finally {
      cleanup();
    }
  });

  it('is made on the main thread when durableWriteMayBlock says so: it is done before the event loop turns', async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const block of [false, true]) {
        const disk = createNodeDisk({ durableWriteMayBlock: () => block });
        const path = join(dir, `${block}.wal`);
        const file = await disk.open(path, 'create');
        await disk.preallocate(file, 4096);
        await file.writeDurable(Buffer.from('a'), 0); // opens the O_DSYNC descriptor
        let done = false;
        const written = file.writeDurable(Buffer.from('b'), 1).then(() => (done = true));
        // microtasks only: a write through the thread pool is answered on a turn of the loop
        for (let i = 0; i < 20; i++) await Promise.resolve();
        expect(done, `blocking: ${block}`).toBe(block);
        await written;
        await file.close();
        expect(readFileSync(path).subarray(0, 2).toString()).toBe('ab');
      }
    } finally {
      cleanup();
    }
  });
});
