// The key index holds no values: reads find them in LevelDB by revision, hot ones in a
// byte-bounded cache. These tests hold the store to both halves: memory does not grow
// with the value bytes stored, and every read path still returns the right values.

import { afterEach, describe, expect, it } from 'vitest';
import { liveArrayBuffers } from '../live-array-buffers.js';
import { KeyIndex } from '../../src/mvcc/key-index.js';
import { ValueCache } from '../../src/mvcc/value-cache.js';
import { HISTORY_BYTES } from '../../src/mvcc/history.js';
import type { Event } from '../../src/mvcc/index.js';
import { Harness, b } from './helpers.js';

describe('ValueCache', () => {
  const value = (n: number) => Buffer.alloc(n, 1);

  it('keeps key and value bytes plus overhead under its bound, evicting the oldest unread entry', () => {
    const c = new ValueCache(1000);
    const keys = ['a', 'b', 'c', 'd', 'e'].map((k) => new KeyIndex(k));
    keys.forEach((ki, i) => c.set(ki, i + 2, 0, value(200)));
    expect(c.size).toBeLessThanOrEqual(1000);
    expect(c.get(keys[0]!, 2, 0)).toBeUndefined(); // the oldest went first
    expect(c.get(keys[4]!, 6, 0)).toEqual(value(200));
  });

  it('gives an entry read since the last pass a second chance', () => {
    const c = new ValueCache(1000);
    const [a, b2, c2, d] = ['a', 'b', 'c', 'd'].map((k) => new KeyIndex(k));
    c.set(a!, 2, 0, value(100));
    c.set(b2!, 3, 0, value(100));
    c.set(c2!, 4, 0, value(100));
    expect(c.get(a!, 2, 0)).toBeDefined(); // a is hot
    c.set(d!, 5, 0, value(100)); // over the bound: b, not a, goes
    expect(c.get(a!, 2, 0)).toEqual(value(100));
    expect(c.get(b2!, 3, 0)).toBeUndefined();
  });

  it('answers only for the revision it holds, and forgets deleted keys', () => {
    const c = new ValueCache(1000);
    const ki = new KeyIndex('k');
    c.set(ki, 5, 1, Buffer.alloc(1, 'v'));
    expect(c.get(ki, 5, 0)).toBeUndefined();
    expect(c.get(ki, 6, 1)).toBeUndefined();
    expect(c.get(ki, 5, 1)).toEqual(b('v'));
    c.set(ki, 7, 0, Buffer.alloc(1, 'w'));
    expect(c.get(ki, 5, 1)).toBeUndefined();
    c.delete(ki);
    expect(c.get(ki, 7, 0)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('counts the whole buffer a value is a view into (its record, or a pool slab), not the bytes it shows', () => {
    const c = new ValueCache(4000);
    const ki = new KeyIndex('k');
    c.set(ki, 2, 0, Buffer.alloc(5000).subarray(0, 10));
    expect(c.get(ki, 2, 0)).toBeUndefined(); // 10 bytes, but it would keep 5000
    expect(c.size).toBe(0);
    c.set(ki, 3, 0, b('pooled')); // a slice of Node's 8 KB pool
    expect(c.get(ki, 3, 0)).toBeUndefined();
    c.set(ki, 4, 0, Buffer.alloc(3000).subarray(100, 110));
    expect(c.get(ki, 4, 0)).toEqual(Buffer.alloc(10));
    expect(c.size).toBeGreaterThanOrEqual(3000);
  });

  it('keeps no replaced or deleted value alive: a hot key rewritten a thousand times holds one', async () => {
    const c = new ValueCache(1024 * 1024);
    const before = await liveArrayBuffers();
    const hot = new KeyIndex('hot');
    const gone = new KeyIndex('gone');
    for (let rev = 2; rev < 1002; rev++) {
      c.set(hot, rev, 0, Buffer.alloc(64 * 1024));
      c.set(gone, rev, 1, Buffer.alloc(64 * 1024));
      c.delete(gone);
    }
    // 2000 values of 64 KiB went through it (125 MiB); the cache holds one
    expect((await liveArrayBuffers()) - before).toBeLessThan(2 * 1024 * 1024);
    expect(c.get(hot, 1001, 0)).toEqual(Buffer.alloc(64 * 1024));
    expect(c.get(hot, 1000, 0)).toBeUndefined();
  });

  it('caches nothing at size 0 or for an entry past its bound, and refuses a bad size', () => {
    const off = new ValueCache(0);
    const ki = new KeyIndex('k');
    off.set(ki, 2, 0, b('v'));
    expect(off.get(ki, 2, 0)).toBeUndefined();
    const small = new ValueCache(500);
    small.set(ki, 2, 0, value(1000));
    expect(small.get(ki, 2, 0)).toBeUndefined();
    expect(small.size).toBe(0);
    expect(() => new ValueCache(-1)).toThrow(/value cache size/);
    expect(() => new ValueCache(1.5)).toThrow(/value cache size/);
  });
});

describe('a store whose values outgrow its value cache', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const KEYS = 2000;
  const VALUE_BYTES = 64 * 1024;
  const valueOf = (i: number, gen: number) => Buffer.alloc(VALUE_BYTES, `${gen}:${i};`);
  const keyOf = (i: number) => `key/${String(i).padStart(4, '0')}`;
  /** the value cache (1 MiB) + the watch history ring (HISTORY_BYTES) + slack */
  const BOUND = 1024 * 1024 + HISTORY_BYTES + 8 * 1024 * 1024;

  /** every key's value through one range read (a function, so the 128 MB result is garbage after) */
  async function expectWholeRange(h: Harness): Promise<void> {
    const all = await h.store.range({ key: b('key/'), rangeEnd: b('key0') });
    expect(all.count).toBe(KEYS);
    expect(all.kvs.every((kv, i) => kv.value.equals(valueOf(i, 0)))).toBe(true);
  }

  it('keeps no record alive through a long-lived neighbour in Node\'s buffer pool (a raft entry stays until a snapshot)', async () => {
    h = await Harness.open({ valueCacheBytes: 1024 * 1024 });
    const before = await liveArrayBuffers();
    const n = 100_000;
    // small buffers cut from Node's 8 KB pool and kept, as the raft log keeps its entries
    const neighbours: Buffer[] = [];
    for (let i = 0; i < n; i += 100) {
      for (let j = i; j < i + 100; j++) {
        await h.store.put({ key: b(`small/${String(j).padStart(6, '0')}`), value: Buffer.alloc(1024, j), lease: 0n }, ++h.index);
        neighbours.push(Buffer.from(`entry ${j}`));
      }
      await h.commit();
    }
    // 100 MB of records written: the store keeps its 1 MiB cache and the watch history
    // ring; the neighbours fill ~1 MB of pool slabs. Records cut from the pool kept
    // every slab, and with it every record, alive: ~110 MB.
    expect((await liveArrayBuffers()) - before).toBeLessThan(1024 * 1024 + HISTORY_BYTES + 16 * 1024 * 1024);
    expect(neighbours.length).toBe(n);
    expect((await h.store.range({ key: b('small/000007') })).kvs[0]!.value).toEqual(Buffer.alloc(1024, 7));
  });

  it('keeps memory bounded by the cache and watch history, not by the 128 MB of values, and reads every value back', async () => {
    h = await Harness.open({ valueCacheBytes: 1024 * 1024 });
    const before = await liveArrayBuffers();
    for (let i = 0; i < KEYS; i += 100) {
      for (let j = i; j < i + 100; j++) await h.store.put({ key: b(keyOf(j)), value: valueOf(j, 0), lease: 0n }, ++h.index);
      await h.commit();
    }
    // 128 MB written; the store holds its 1 MB cache of them and the 32 MB watch history
    // ring (LevelDB's own memory is native, not ArrayBuffers)
    expect((await liveArrayBuffers()) - before).toBeLessThan(BOUND);

    // every value, through the single-key, range, txn and prev_kv paths
    for (const i of [0, 1, 499, 998, 999]) {
      expect((await h.store.range({ key: b(keyOf(i)) })).kvs[0]!.value).toEqual(valueOf(i, 0));
    }
    await expectWholeRange(h);
    const keysOnly = await h.store.range({ key: b('key/'), rangeEnd: b('key0'), keysOnly: true, limit: 3 });
    expect(keysOnly.kvs.map((kv) => [kv.key.toString(), kv.value.length, kv.modRevision])).toEqual([
      [keyOf(0), 0, 2],
      [keyOf(1), 0, 3],
      [keyOf(2), 0, 4],
    ]);
    const t = await h.txn({
      compare: [{ key: b(keyOf(7)), target: 'value', result: 'equal', value: valueOf(7, 0) }],
      success: [{ range: { key: b(keyOf(8)) } }, { put: { key: b(keyOf(9)), value: valueOf(9, 1), lease: 0n, prevKv: true } }],
      failure: [],
    });
    expect(t.succeeded).toBe(true);
    expect(t.responses[0]).toMatchObject({ range: { kvs: [{ value: valueOf(8, 0) }] } });
    expect(t.responses[1]).toMatchObject({ put: { prevKv: { value: valueOf(9, 0), modRevision: 11 } } });

    // watchers get prev_kv of keys long evicted from the cache
    const events: Event[] = [];
    const sink = (r: { events: Event[] }) => {
      events.push(...r.events);
      return true;
    };
    h.store.newWatchStream(sink).watch({
      key: b('key/'),
      rangeEnd: b('key0'),
      startRevision: 0,
      prevKv: true,
    });
    const deleted = await h.del('key/0000', 'key/0003', { prevKv: true });
    expect(deleted.prevKvs.map((kv) => kv.value)).toEqual([valueOf(0, 0), valueOf(1, 0), valueOf(2, 0)]);
    await h.put(keyOf(500), 'new', { prevKv: true }).then((r) => expect(r.prevKv?.value).toEqual(valueOf(500, 0)));
    expect(events.map((e) => [e.type, e.kv.key.toString(), e.prevKv?.value.equals(valueOf(Number(e.kv.key.toString().slice(4)), 0))])).toEqual([
      ['delete', keyOf(0), true],
      ['delete', keyOf(1), true],
      ['delete', keyOf(2), true],
      ['put', keyOf(500), true],
    ]);

    // after a reopen the index is rebuilt without values, and they still read back
    await h.reopen();
    expect((await liveArrayBuffers()) - before).toBeLessThan(BOUND);
    expect((await h.store.range({ key: b(keyOf(3)) })).kvs[0]!.value).toEqual(valueOf(3, 0));
    expect((await h.store.range({ key: b(keyOf(9)) })).kvs[0]!.value).toEqual(valueOf(9, 1));
    expect((await h.store.range({ key: b(keyOf(0)) })).count).toBe(0);
  });
});
