import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { Harness, b, copyStore, removeDir } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await Harness.open();
});
afterEach(async () => {
  await h.close();
});

async function history(store: MvccStore) {
  const out: string[] = [];
  for (let rev = Math.max(1, store.compactRevision); rev <= store.currentRevision; rev++) {
    const r = await store.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0), revision: rev });
    out.push(`${rev}: ${r.kvs.map((kv) => `${kv.key}=${kv.value}/${kv.version}/${kv.lease}`).join(' ')}`);
  }
  return out;
}

async function fill(): Promise<void> {
  for (let i = 0; i < 50; i++) await h.put(`k${i % 7}`, `v${i}`, { lease: BigInt(i % 3) });
  await h.del('k3');
  await h.compact(20);
  h.store.putLeaseRecord(9n, b('lease-nine'));
  await h.commit();
}

describe('a copy built from the bucket view (how a member installs a leader snapshot)', () => {
  it('round-trips the whole store: data, history, compaction, leases, consistent index, hashes', async () => {
    await fill();
    const { dir, restored } = await copyStore(h.store);
    try {
      const copy = await MvccStore.open({ dir, restored });
      try {
        expect(copy.currentRevision).toBe(h.store.currentRevision);
        expect(copy.compactRevision).toBe(20);
        expect(copy.consistentIndex).toBe(h.store.consistentIndex);
        expect(await history(copy)).toEqual(await history(h.store));
        expect(await copy.hashKV(0)).toEqual(await h.store.hashKV(0));
        expect((await copy.hash()).hash).toBe((await h.store.hash()).hash);
        expect(await copy.leaseRecords()).toEqual([[9n, b('lease-nine')]]);
        // and it takes new writes
        await copy.put({ key: b('new'), value: b('1'), lease: 0n }, copy.consistentIndex + 1);
        await copy.commit();
        expect(copy.currentRevision).toBe(h.store.currentRevision + 1);
      } finally {
        await copy.close();
      }
    } finally {
      removeDir(dir);
    }
  });
});

describe('bucket view', () => {
  async function records(it: AsyncIterable<ReadonlyArray<readonly [Buffer, Buffer]>>): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for await (const batch of it) for (const [k, v] of batch) out.push([k.toString('hex'), v.toString('hex')]);
    return out;
  }

  it('is one frozen point however long it is read: a batch still landing is in it, later writes are not', async () => {
    await fill();
    for (let i = 0; i < 500; i++) await h.put(`late${i}`, `v${i}`);
    await h.store.commit(); // issued, maybe not landed yet
    const view = h.store.bucketView();
    const at = { rev: h.store.currentRevision, index: h.store.consistentIndex };
    const second = h.store.bucketView(); // read at once
    const keysAtView = await records(second.bucket('key'));
    await second.close();
    await h.put('after', 'x');
    await h.del('k1');
    h.store.putLeaseRecord(10n, b('lease-ten'));
    await h.commit();
    await h.store.flushed();
    try {
      // buckets in bbolt's name order (key before lease before meta), not LevelDB's prefix order
      const keys = await records(view.bucket('key'));
      expect(keys).toEqual(keysAtView);
      expect(parseInt(keys.at(-1)![0].slice(0, 16), 16)).toBe(at.rev);
      expect((await records(view.bucket('lease'))).map(([k]) => k)).toEqual(['0000000000000009']);
      const meta = new Map(await records(view.bucket('meta')));
      expect(meta.get(b('consistent_index').toString('hex'))).toBe(at.index.toString(16).padStart(16, '0'));
      expect(await records(view.bucket('alarm'))).toEqual([]);
    } finally {
      await view.close();
    }
  });
});

describe('hash', () => {
  it('is equal for equal data whatever the consistent index, different otherwise', async () => {
    const other = await Harness.open();
    try {
      other.index = 1000;
      for (const s of [h, other]) {
        await s.put('a', '1');
        await s.put('b', '2');
      }
      expect((await h.store.hash()).hash).toBe((await other.store.hash()).hash);
      expect(h.store.consistentIndex).not.toBe(other.store.consistentIndex);
      await other.put('b', '3');
      expect((await h.store.hash()).hash).not.toBe((await other.store.hash()).hash);
      expect((await other.store.hash()).revision).toBe(4);
    } finally {
      await other.close();
    }
  });

  it('HashKV rejects compacted and future revisions like etcd', async () => {
    await fill();
    await expect(h.store.hashKV(20)).rejects.toMatchObject({ code: 'compacted' });
    await expect(h.store.hashKV(h.store.currentRevision + 1)).rejects.toMatchObject({ code: 'future-rev' });
    const at = await h.store.hashKV(21);
    expect(at).toMatchObject({ compactRevision: 20, revision: h.store.currentRevision });
    // a hash at an old revision does not change with later writes
    await h.put('z', 'late');
    expect((await h.store.hashKV(21)).hash).toBe(at.hash);
  });
});

describe('HashKV while a compaction is under way', () => {
  it('with no key live, a member agrees with one whose compaction is done once compactionsDone settles', async () => {
    const twin = await Harness.open();
    try {
      // the same history on both: 3,000 records (three batches of deletes), then every key deleted
      for (const s of [h, twin]) {
        for (let i = 0; i < 3000; i++) await s.store.put({ key: b(`k${i % 10}`), value: b(`v${i}`), lease: 0n }, ++s.index);
        await s.del('k', 'l');
      }
      const rev = h.store.currentRevision;
      await twin.compact(rev);
      // (etcd 3.4's HashByRev: with no key live it hashes whatever the compaction has not deleted yet)
      await h.store.compact(rev, ++h.index);
      await h.store.commit();
      await h.store.compactionsDone();
      expect(await h.store.hashKV(0)).toEqual(await twin.store.hashKV(0));
    } finally {
      await twin.close();
    }
  });
});

describe('size and defragment', () => {
  it('reports sizes and compacts LevelDB without changing the data', async () => {
    for (let i = 0; i < 2000; i++) await h.store.put({ key: b(`k${i % 100}`), value: Buffer.alloc(200, i), lease: 0n }, ++h.index);
    await h.commit();
    const before = await history(h.store);
    expect(h.store.dbSizeInUse()).toBeLessThanOrEqual(h.store.dbSize());
    await h.compact(h.store.currentRevision);
    await h.store.defragment();
    expect(h.store.dbSize()).toBeGreaterThan(0);
    expect(h.store.dbSizeInUse()).toBeGreaterThan(100 * 200);
    expect(await history(h.store)).toEqual(before.slice(-1));
    await h.reopen();
    expect((await h.range('k0', '\0')).count).toBe(100);
  });
});
