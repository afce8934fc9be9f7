import { describe, expect, it } from 'vitest';
import { type Snapshot, decodeSnapshot, emptyConfState } from '../../src/raftpb/index.js';
import { crc32c } from '../../src/pkg/crc32c.js';
import { MemDisk, SimulatedCrash, SnapError, Snapshotter, snapName } from '../../src/wal/index.js';
import { decodeSnapEnvelope } from '../../src/wal/walpb.js';
import { captureLogger } from './helpers.js';

const SNAP = '/d/member/snap';

function snap(term: number, index: number, size = 300): Snapshot {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13 + index) % 256;
  return { data, metadata: { term, index, confState: { ...emptyConfState, voters: [0x1234n, 0xfeedn] } } };
}

describe('Snapshotter', () => {
  it('writes %016x-%016x.snap holding snappb{crc, raftpb.Snapshot} and loads the newest', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    expect(await s.load()).toBeUndefined(); // no directory yet
    await s.save(snap(2, 10));
    await s.save(snap(3, 20));
    expect((await disk.readdir(SNAP)).sort()).toEqual([snapName(2, 10), snapName(3, 20)]);
    expect(snapName(3, 20)).toBe('0000000000000003-0000000000000014.snap');
    const bytes = disk.fileBytes(`${SNAP}/${snapName(3, 20)}`);
    const env = decodeSnapEnvelope(bytes);
    expect(env.crc).toBe(crc32c(env.data!));
    expect(decodeSnapshot(env.data!)).toEqual(snap(3, 20));
    expect(await s.load()).toEqual(snap(3, 20));
  });

  it('skips an empty snapshot, as etcd does', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    await s.save(snap(0, 0));
    expect(await disk.exists(SNAP)).toBe(false);
  });

  it('a damaged newest file is renamed .broken and the previous one is used', async () => {
    const disk = new MemDisk();
    const log = captureLogger();
    const s = new Snapshotter(SNAP, { disk, logger: log });
    await s.save(snap(2, 10));
    await s.save(snap(2, 20));
    const path = `${SNAP}/${snapName(2, 20)}`;
    const bytes = disk.fileBytes(path);
    bytes[100]! ^= 4;
    disk.setFileBytes(path, bytes);
    expect(await s.load()).toEqual(snap(2, 10));
    expect((await disk.readdir(SNAP)).sort()).toEqual([snapName(2, 10), `${snapName(2, 20)}.broken`]);
    expect(log.lines.some((l) => l.msg === 'renamed to a broken snap file')).toBe(true);
    await expect(Snapshotter.read(`${path}.broken`, disk)).rejects.toThrow(/snap: crc mismatch/);
  });

  it('a load removes the temporary db files a crash orphaned (db.tmp*), as etcd does, and nothing else', async () => {
    const disk = new MemDisk();
    const log = captureLogger();
    const s = new Snapshotter(SNAP, { disk, logger: log });
    await s.save(snap(2, 10));
    for (const name of ['db.tmp.snapshot-0a1b2c', 'db.tmp.482913', 'db', '0000000000000014.snap.db']) await (await disk.open(`${SNAP}/${name}`, 'create')).close();
    expect(await s.load()).toEqual(snap(2, 10));
    expect((await disk.readdir(SNAP)).sort()).toEqual(['0000000000000014.snap.db', snapName(2, 10), 'db'].sort());
    expect(log.lines.filter((l) => l.msg === 'found orphaned temporary db file; deleting')).toHaveLength(2);
  });

  it('an empty or mislabelled file is not loaded', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    await s.save(snap(2, 10));
    await s.save(snap(2, 30));
    await disk.rename(`${SNAP}/${snapName(2, 30)}`, `${SNAP}/${snapName(2, 40)}`); // name says 40, contents 30
    const f = await disk.open(`${SNAP}/${snapName(2, 50)}`, 'create');
    await f.close();
    expect(await s.load()).toEqual(snap(2, 10));
    await expect(Snapshotter.read(`${SNAP}/${snapName(2, 50)}.broken`, disk)).rejects.toBeInstanceOf(SnapError);
  });

  it('loadNewestAvailable takes the newest snapshot the WAL also recorded', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    await s.save(snap(2, 10));
    await s.save(snap(2, 20));
    await s.save(snap(3, 30)); // written just before a crash: its WAL marker never made it
    const walSnaps = [
      { index: 0, term: 0 },
      { index: 10, term: 2 },
      { index: 20, term: 2 },
    ];
    let reads = 0;
    const recorded = (snaps: typeof walSnaps) => async () => (reads++, snaps);
    expect(await s.loadNewestAvailable(recorded(walSnaps))).toEqual(snap(2, 20));
    expect(reads).toBe(1); // once, however many snap files it tried
    expect(await s.loadNewestAvailable(recorded([{ index: 0, term: 0 }]))).toBeUndefined();
  });

  it('loadNewestAvailable reads the WAL markers only when there is a snap file to match them with', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    let reads = 0;
    const walSnaps = async () => (reads++, [{ index: 0, term: 0 }]);
    expect(await s.loadNewestAvailable(walSnaps)).toBeUndefined();
    expect(reads).toBe(0);
    await s.save(snap(2, 10));
    expect(await s.loadNewestAvailable(walSnaps)).toBeUndefined();
    expect(reads).toBe(1);
  });

  it('purge keeps the newest max files', async () => {
    const disk = new MemDisk();
    const s = new Snapshotter(SNAP, { disk });
    for (let i = 1; i <= 8; i++) await s.save(snap(1, i * 10));
    expect(await s.purge(5)).toEqual([1, 2, 3].map((i) => snapName(1, i * 10)));
    expect((await disk.readdir(SNAP)).sort()).toEqual([4, 5, 6, 7, 8].map((i) => snapName(1, i * 10)));
    expect(await s.load()).toEqual(snap(1, 80));
  });

  it('a crash at any point of a save leaves the previous snapshot or the new one, never neither', async () => {
    // count the operations and bytes of one save
    const probe = new MemDisk();
    await new Snapshotter(SNAP, { disk: probe }).save(snap(1, 5));
    let ops = 0;
    probe.fault = () => {
      ops++;
      return undefined;
    };
    const before = probe.bytesWritten;
    await new Snapshotter(SNAP, { disk: probe }).save(snap(2, 9));
    const bytes = probe.bytesWritten - before;

    const trial = async (arm: (d: MemDisk) => void, mode: 'process' | 'power', seed: number, label: string) => {
      const disk = new MemDisk();
      await new Snapshotter(SNAP, { disk }).save(snap(1, 5));
      arm(disk);
      let done = false;
      try {
        await new Snapshotter(SNAP, { disk }).save(snap(2, 9));
        done = true;
      } catch (err) {
        expect(err).toBeInstanceOf(SimulatedCrash);
      }
      const after = disk.afterCrash(mode, seed);
      const loaded = await new Snapshotter(SNAP, { disk: after }).load();
      if (done) expect(loaded, label).toEqual(snap(2, 9));
      else expect([snap(1, 5), snap(2, 9)], label).toContainEqual(loaded);
      // no temp file survives a load
      expect((await after.readdir(SNAP)).filter((n) => n.endsWith('.tmp')), label).toEqual([]);
    };
    for (let n = 0; n <= bytes; n += 7) {
      await trial((d) => (d.crashAfterBytes = d.bytesWritten + n), 'process', 1, `process crash after ${n} bytes`);
      await trial((d) => (d.crashAfterBytes = d.bytesWritten + n), 'power', n, `power cut after ${n} bytes`);
    }
    for (let k = 1; k <= ops; k++) {
      const arm = (d: MemDisk) => {
        let seen = 0;
        d.fault = () => (++seen === k ? { crash: true } : undefined);
      };
      await trial(arm, 'process', 1, `process crash before op ${k}`);
      await trial(arm, 'power', k, `power cut before op ${k}`);
    }
  });
});
