// MvccStore.rangeInSlices: a range read a slice of keys at a time, the event loop
// served between slices, answers what range() answers — at the revision it started at,
// whatever is written meanwhile — and starts again when a compaction passes it.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KeyValue, MvccError, type RangeRequest, type RangeSink, type RequestOp } from '../../src/mvcc/index.js';
import { Harness, b, kvData } from './helpers.js';

/** More than two slices of the index (SLICE_KEYS is 4096). */
const KEYS = 10_000;
const key = (i: number): string => `key/${String(i).padStart(6, '0')}`;

let h: Harness;
beforeEach(async () => {
  h = await Harness.open({ maxTxnOps: KEYS });
  const puts = (from: number, to: number, value: string, lease = 0n): RequestOp[] =>
    Array.from({ length: to - from }, (_, j) => ({ put: { key: b(key(from + j)), value: b(`${value}${from + j}`), lease } }));
  await h.txn({ compare: [], success: puts(0, KEYS, 'v'), failure: [] });
  // a second revision for some keys, a tombstone for others, leases (negative too)
  await h.txn({ compare: [], success: puts(3000, 5000, 'w'), failure: [] });
  await h.txn({ compare: [], success: puts(6000, 6100, 'x', 7n), failure: [] });
  await h.txn({ compare: [], success: puts(6100, 6110, 'y', -2n), failure: [] });
  await h.del(key(4500), key(4600));
});
afterEach(async () => {
  await h.close();
});

/**
 * Collects what a sliced range hands over; `onSlice` runs after each slice, before the
 * range goes on. The store's writes change its memory when called (their commit comes
 * later), so writes started there land between this slice and the next.
 */
class Collect implements RangeSink {
  kvs: KeyValue[] = [];
  slices = 0;
  resets = 0;
  readonly started: Promise<unknown>[] = [];
  constructor(private readonly onSlice: (n: number, started: Promise<unknown>[]) => void = () => undefined) {}
  add(kvs: readonly KeyValue[]): void {
    this.kvs.push(...kvs);
    this.onSlice(++this.slices, this.started);
  }
  reset(): void {
    this.kvs = [];
    this.resets++;
  }
}

const req = (from: string, to: string | undefined, extra: Partial<RangeRequest> = {}): RangeRequest => ({
  key: b(from),
  rangeEnd: to === undefined ? undefined : to === '\0' ? Buffer.of(0) : b(to),
  ...extra,
});

async function sliced(r: RangeRequest, sink = new Collect()) {
  const out = await h.store.rangeInSlices(r, sink);
  return { ...out, kvs: sink.kvs.map(kvData), sink };
}

async function whole(r: RangeRequest) {
  const out = await h.store.range(r);
  return { revision: out.revision, count: out.count, more: out.more, kvs: out.kvs.map(kvData) };
}

describe('rangeInSlices', () => {
  it('answers as range() does, across slices: everything, a prefix, limits, keys only, count only, an older revision', async () => {
    const rev = h.store.currentRevision;
    const cases: RangeRequest[] = [
      req('\0', '\0'),
      req('key/004', 'key/005'),
      req('key/0099', '\0', { limit: 5000 }),
      req('\0', '\0', { limit: 1 }),
      req('\0', '\0', { limit: KEYS }),
      req('\0', '\0', { keysOnly: true }),
      req('\0', '\0', { countOnly: true }),
      req('\0', '\0', { countOnly: true, limit: 3 }),
      req('\0', '\0', { revision: 2 }),
      req('\0', '\0', { revision: 3, keysOnly: true, limit: 4200 }),
      req('\0', '\0', { sortOrder: 'ascend', sortTarget: 'key', limit: 10 }),
      req('key/009999', '\0'),
      req('zzz', '\0'),
    ];
    for (const r of cases) {
      const got = await sliced(r);
      const { sink, ...answer } = got;
      expect(answer, JSON.stringify({ ...r, key: r.key.toString() })).toEqual(await whole(r));
      expect(answer.revision).toBe(rev);
    }
    const all = await sliced(req('\0', '\0'));
    expect(all.count).toBe(KEYS - 100);
    expect(all.sink.slices).toBeGreaterThan(2);
    expect(all.kvs.find((kv) => kv.key === key(6105))?.lease).toBe(-2n);
  });

  it('reads at the revision it started at while the store moves on between slices', async () => {
    const before = await whole(req('\0', '\0'));
    const rev = h.store.currentRevision;
    const writes = new Collect((slice, started) => {
      if (slice !== 1) return;
      // between the first slice and the next: new keys, overwrites, deletions, all after `rev`
      started.push(h.put(key(9000), 'changed'), h.put(`${key(7000)}-new`, 'new'), h.del(key(8000), key(8100)));
    });
    const got = await sliced(req('\0', '\0'), writes);
    await Promise.all(writes.started);
    expect(h.store.currentRevision).toBeGreaterThan(rev);
    expect({ revision: got.revision, count: got.count, more: got.more, kvs: got.kvs }).toEqual(before);
    expect(got.sink.resets).toBe(0);
  });

  it('starts again at the current revision when a compaction passes the one it read at; at a requested revision it fails', async () => {
    const compactAfterFirstSlice = (): Collect =>
      new Collect((slice, started) => {
        if (slice !== 1) return;
        started.push(h.put(key(1), 'newer'));
        started.push(h.compact(h.store.currentRevision));
      });
    const again = compactAfterFirstSlice();
    const got = await sliced(req('\0', '\0'), again);
    await Promise.all(again.started);
    expect(again.resets).toBe(1);
    const { sink, ...answer } = got;
    expect(answer).toEqual(await whole(req('\0', '\0')));
    expect(got.kvs.find((kv) => kv.key === key(1))?.value).toBe('newer');

    const at = h.store.currentRevision;
    await h.put(key(2), 'newer still');
    const compacting = compactAfterFirstSlice();
    const failed = await h.store.rangeInSlices(req('\0', '\0', { revision: at }), compacting).catch((e: unknown) => e);
    await Promise.all(compacting.started);
    expect(failed).toBeInstanceOf(MvccError);
    expect((failed as MvccError).code).toBe('compacted');
  });

  it('refuses ranges that sort or filter', async () => {
    await expect(h.store.rangeInSlices(req('\0', '\0', { sortOrder: 'descend' }), new Collect())).rejects.toThrow(/slices/);
    await expect(h.store.rangeInSlices(req('\0', '\0', { minModRevision: 3 }), new Collect())).rejects.toThrow(/slices/);
  });
});
