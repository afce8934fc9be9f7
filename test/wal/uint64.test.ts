// etcd-ts's own disk data holds terms and indexes as uint64 too. A record whose value
// has no exact JS number (2^53 or more: a corrupt or foreign file, since raft never
// writes one) must fail with an error naming the file, never load as a wrong number.
// The CRCs here are valid: only the decoder stands between the value and raft.

import { describe, expect, it } from 'vitest';
import { emptyConfState } from '../../src/raftpb/index.js';
import { MemDisk, SnapError, Snapshotter, WAL, WalError, snapName } from '../../src/wal/index.js';
import { META, entry, hs } from './helpers.js';

const DIR = '/data/member/wal';
const SEGMENT = `${DIR}/0000000000000000-0000000000000000.wal`;
const TWO_53 = 2 ** 53;

async function walWith(save: (w: WAL) => Promise<void>): Promise<MemDisk> {
  const disk = new MemDisk();
  const w = await WAL.create(DIR, META, { disk });
  await w.save(hs(1, 0), [entry(1, 1)], true);
  await save(w);
  await w.close();
  return disk;
}

async function replay(disk: MemDisk): Promise<unknown> {
  const r = await WAL.open(DIR, { index: 0, term: 0 }, { disk });
  try {
    return await r.readAll();
  } finally {
    await r.close();
  }
}

describe('disk records with values past 2^53-1', () => {
  it('a WAL entry record with term 2^53 fails replay, naming the file and the value', async () => {
    const disk = await walWith((w) => w.save(hs(1, 1), [{ ...entry(2, 1), term: TWO_53 }], true));
    const err = await replay(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalError);
    expect((err as Error).message).toContain(`undecodable entry record (protobuf decode: Entry.term 9007199254740992 is above 2^53-1) in ${SEGMENT}`);
  });

  it('a WAL state record with commit 2^53 fails replay, naming the file and the value', async () => {
    const disk = await walWith((w) => w.save({ ...hs(1, 1), commit: TWO_53 }, [], true));
    const err = await replay(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalError);
    expect((err as Error).message).toContain(`undecodable state record (protobuf decode: HardState.commit 9007199254740992 is above 2^53-1) in ${SEGMENT}`);
  });

  it('a WAL snapshot marker with index 2^53 fails replay, naming the file and the value', async () => {
    const disk = await walWith((w) => w.saveSnapshot({ index: TWO_53, term: 1 }));
    const err = await replay(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalError);
    expect((err as Error).message).toContain(`walpb.Snapshot.index 9007199254740992 is above 2^53-1) in ${SEGMENT}`);
  });

  it('a .snap file with term 2^53 is refused with its path, and not loaded', async () => {
    const disk = new MemDisk();
    const dir = '/data/member/snap';
    const s = new Snapshotter(dir, { disk });
    await s.save({ data: new Uint8Array([1, 2, 3]), metadata: { index: 10, term: 2, confState: emptyConfState } });
    await s.save({ data: new Uint8Array([4, 5, 6]), metadata: { index: 20, term: TWO_53, confState: emptyConfState } });
    const path = `${dir}/${snapName(TWO_53, 20)}`;
    await expect(Snapshotter.read(path, disk)).rejects.toThrow(
      new SnapError(`snap: corrupted snapshot file ${path}: protobuf decode: SnapshotMetadata.term 9007199254740992 is above 2^53-1`),
    );
    // its name does not parse as a term either, so loading passes it over
    expect((await s.load())?.metadata).toMatchObject({ index: 10, term: 2 });
  });
});
