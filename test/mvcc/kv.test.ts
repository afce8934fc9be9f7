import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MvccError, MvccStore, type Compare, type RequestOp } from '../../src/mvcc/index.js';
import { Harness, b, copyStore, kvData, recordsOf, removeDir } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await Harness.open();
});
afterEach(async () => {
  await h.close();
});

const put = (key: string, value = 'v', extra = {}): RequestOp => ({ put: { key: b(key), value: b(value), lease: 0n, ...extra } });
const del = (key: string, rangeEnd?: string): RequestOp => ({
  deleteRange: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) },
});
const get = (key: string, extra = {}): RequestOp => ({ range: { key: b(key), ...extra } });
const cmp = (key: string, target: Compare['target'], result: Compare['result'], value: number | string | bigint, rangeEnd?: string): Compare =>
  ({
    key: b(key),
    rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd),
    target,
    result,
    value: typeof value === 'string' ? b(value) : value,
  }) as Compare;

async function rejects(p: Promise<unknown>, code: MvccError['code']): Promise<MvccError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MvccError);
  expect((e as MvccError).code).toBe(code);
  return e as MvccError;
}

describe('revisions and versions', () => {
  it('starts at revision 1 and the first write makes revision 2', async () => {
    expect(h.store.currentRevision).toBe(1);
    expect(h.store.compactRevision).toBe(-1);
    expect(await h.put('a', '1')).toEqual({ revision: 2 });
    const r = await h.range('a');
    expect(r.kvs.map(kvData)).toEqual([{ key: 'a', create: 2, mod: 2, ver: 1, value: '1', lease: 0n }]);
    expect(r.revision).toBe(2);
  });

  it('bumps version on each put and resets it after a delete', async () => {
    await h.put('a', '1');
    const p = await h.put('a', '2', { prevKv: true });
    expect(p.revision).toBe(3);
    expect(kvData(p.prevKv!)).toEqual({ key: 'a', create: 2, mod: 2, ver: 1, value: '1', lease: 0n });
    const d = await h.del('a', undefined, { prevKv: true });
    expect(d.revision).toBe(4);
    expect(d.deleted).toBe(1);
    expect(d.prevKvs.map(kvData)).toEqual([{ key: 'a', create: 2, mod: 3, ver: 2, value: '2', lease: 0n }]);
    await h.put('a', '3');
    expect((await h.range('a')).kvs.map(kvData)).toEqual([{ key: 'a', create: 5, mod: 5, ver: 1, value: '3', lease: 0n }]);
  });

  it('does not bump the revision when a delete removes nothing', async () => {
    await h.put('a', '1');
    expect(await h.del('b')).toEqual({ revision: 2, deleted: 0, prevKvs: [] });
    expect(h.store.currentRevision).toBe(2);
  });

  it('deletes a range in one revision with sub-revisions', async () => {
    for (const k of ['a', 'b', 'c', 'd']) await h.put(k);
    const d = await h.del('b', 'd');
    expect(d).toMatchObject({ revision: 6, deleted: 2 });
    expect((await h.range('a', '\0')).kvs.map((kv) => kv.key.toString())).toEqual(['a', 'd']);
  });

  it('keeps the lease of a key and reports it', async () => {
    await h.put('a', '1', { lease: 0x1234n });
    expect((await h.range('a')).kvs[0]!.lease).toBe(0x1234n);
  });
});

describe('range', () => {
  beforeEach(async () => {
    await h.put('a', '1'); // 2
    await h.put('b', '2'); // 3
    await h.put('c', '3'); // 4
    await h.put('a', '4'); // 5
    await h.put('d', '0'); // 6
  });

  const keys = (r: { kvs: { key: Buffer }[] }) => r.kvs.map((kv) => kv.key.toString());

  it('reads single keys, prefixes, from-key and all keys', async () => {
    expect(keys(await h.range('b'))).toEqual(['b']);
    expect(keys(await h.range('b', 'd'))).toEqual(['b', 'c']);
    expect(keys(await h.range('b', '\0'))).toEqual(['b', 'c', 'd']);
    expect(keys(await h.range('\0', '\0'))).toEqual(['a', 'b', 'c', 'd']);
    expect(keys(await h.range('c', 'a'))).toEqual([]);
    expect(keys(await h.range('zz'))).toEqual([]);
  });

  it('rejects an empty key', async () => {
    await rejects(h.range(''), 'empty-key');
  });

  it('counts before the limit and reports more', async () => {
    const r = await h.range('a', '\0', { limit: 2 });
    expect(keys(r)).toEqual(['a', 'b']);
    expect(r.more).toBe(true);
    expect(r.count).toBe(4);
    const all = await h.range('a', '\0', { limit: 4 });
    expect(all.more).toBe(false);
  });

  it('reads history and rejects compacted and future revisions', async () => {
    const r = await h.range('a', '\0', { revision: 3 });
    expect(r.kvs.map(kvData)).toEqual([
      { key: 'a', create: 2, mod: 2, ver: 1, value: '1', lease: 0n },
      { key: 'b', create: 3, mod: 3, ver: 1, value: '2', lease: 0n },
    ]);
    expect(r.revision).toBe(6); // header revision is the current one
    const e = await rejects(h.range('a', undefined, { revision: 7 }), 'future-rev');
    expect(e.message).toBe('mvcc: required revision is a future revision');
    expect(e.grpcMessage).toBe('etcdserver: mvcc: required revision is a future revision');
    await h.compact(4);
    // the compact revision itself stays readable
    expect(keys(await h.range('a', '\0', { revision: 4 }))).toEqual(['a', 'b', 'c']);
    const c = await rejects(h.range('a', undefined, { revision: 3 }), 'compacted');
    expect(c.message).toBe('mvcc: required revision has been compacted');
    expect(c.grpcCode).toBe(11);
    // revision <= 0 means latest
    expect(keys(await h.range('a', undefined, { revision: -1 }))).toEqual(['a']);
  });

  it('sorts by any target; NONE with a non-key target means ascending', async () => {
    expect(keys(await h.range('a', '\0', { sortTarget: 'mod' }))).toEqual(['b', 'c', 'a', 'd']);
    expect(keys(await h.range('a', '\0', { sortTarget: 'value', sortOrder: 'descend' }))).toEqual(['a', 'c', 'b', 'd']);
    expect(keys(await h.range('a', '\0', { sortTarget: 'key', sortOrder: 'descend' }))).toEqual(['d', 'c', 'b', 'a']);
    expect(keys(await h.range('a', '\0', { sortTarget: 'create', sortOrder: 'descend', limit: 2 }))).toEqual(['d', 'c']);
    // version ties keep key order in both directions
    expect(keys(await h.range('a', '\0', { sortTarget: 'version', sortOrder: 'descend' }))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('with sort order NONE and a limit, sorts only the first limit+1 keys (etcd reads limit+1 first)', async () => {
    const r = await h.range('a', '\0', { sortTarget: 'mod', limit: 1 });
    // reads a, b (limit+1) in key order, sorts them by mod: b(3), a(5)
    expect(keys(r)).toEqual(['b']);
    expect(r.more).toBe(true);
  });

  it('filters on mod and create revisions after counting', async () => {
    const r = await h.range('a', '\0', { minModRevision: 4, maxModRevision: 5 });
    expect(keys(r)).toEqual(['a', 'c']);
    expect(r.count).toBe(4);
    expect(keys(await h.range('a', '\0', { minCreateRevision: 3, maxCreateRevision: 4 }))).toEqual(['b', 'c']);
    const lim = await h.range('a', '\0', { minCreateRevision: 3, limit: 1 });
    expect(keys(lim)).toEqual(['b']);
    expect(lim.more).toBe(true);
  });

  it('supports keys_only and count_only', async () => {
    const k = await h.range('a', '\0', { keysOnly: true });
    expect(k.kvs.every((kv) => kv.value.length === 0)).toBe(true);
    expect(k.kvs[0]!.version).toBe(2);
    expect(await h.range('a', '\0', { countOnly: true, limit: 1 })).toEqual({ revision: 6, kvs: [], more: false, count: 4 });
  });

  it('reads history again after a reopen', async () => {
    await h.reopen();
    expect(h.store.currentRevision).toBe(6);
    const r = await h.range('a', '\0', { revision: 4 });
    expect(r.kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['a=1', 'b=2', 'c=3']);
  });
});

describe('put options', () => {
  it('ignore_value and ignore_lease keep the current value and lease', async () => {
    await h.put('a', 'x', { lease: 7n });
    await h.put('a', '', { ignoreValue: true, lease: 9n });
    expect(kvData((await h.range('a')).kvs[0]!)).toMatchObject({ value: 'x', lease: 9n, ver: 2 });
    await h.put('a', 'y', { ignoreLease: true });
    expect(kvData((await h.range('a')).kvs[0]!)).toMatchObject({ value: 'y', lease: 9n, ver: 3 });
  });

  it('ignore_* on a missing key fails without a new revision but consumes the index', async () => {
    const e = await rejects(h.put('a', '', { ignoreValue: true }), 'key-not-found');
    expect(e.message).toBe('etcdserver: key not found');
    expect(h.store.currentRevision).toBe(1);
    expect(h.store.consistentIndex).toBe(1);
  });

  it('rejects a value with ignore_value and a lease with ignore_lease', async () => {
    await h.put('a', 'x');
    expect((await rejects(h.put('a', 'z', { ignoreValue: true }), 'value-provided')).message).toBe(
      'etcdserver: value is provided',
    );
    expect((await rejects(h.put('a', '', { ignoreLease: true, lease: 5n }), 'lease-provided')).message).toBe(
      'etcdserver: lease is provided',
    );
  });
});

describe('txn', () => {
  it('compares a missing key as zeroes, but a value compare on it is false', async () => {
    let r = await h.txn({ compare: [cmp('a', 'mod', 'equal', 0), cmp('a', 'version', 'less', 1)], success: [put('a')], failure: [] });
    expect(r.succeeded).toBe(true);
    r = await h.txn({ compare: [cmp('zz', 'value', 'equal', '')], success: [], failure: [] });
    expect(r.succeeded).toBe(false);
    r = await h.txn({ compare: [cmp('zz', 'value', 'not_equal', 'x')], success: [], failure: [] });
    expect(r.succeeded).toBe(false);
    r = await h.txn({ compare: [cmp('zz', 'lease', 'equal', 0n), cmp('zz', 'create', 'equal', 0)], success: [], failure: [] });
    expect(r.succeeded).toBe(true);
  });

  it('compares every key of a range', async () => {
    await h.put('k1', 'a');
    await h.put('k2', 'b');
    const ok = await h.txn({ compare: [cmp('k', 'value', 'greater', 'A', 'l')], success: [], failure: [] });
    expect(ok.succeeded).toBe(true);
    const no = await h.txn({ compare: [cmp('k', 'value', 'equal', 'a', 'l')], success: [], failure: [] });
    expect(no.succeeded).toBe(false);
    const empty = await h.txn({ compare: [cmp('x', 'version', 'equal', 0, 'y')], success: [], failure: [] });
    expect(empty.succeeded).toBe(true);
  });

  it('writes one revision with sub-revisions and reports revisions like etcd', async () => {
    await h.put('a', '1'); // 2
    const r = await h.txn({
      compare: [],
      success: [del('zzz'), get('a'), put('b'), get('b'), del('nothing'), put('c')],
      failure: [],
    });
    expect(r.revision).toBe(3);
    const revs = r.responses.map((x) => ('range' in x ? x.range.revision : 'put' in x ? x.put.revision : 'deleteRange' in x ? x.deleteRange.revision : -1));
    // before any write a response carries the old revision; after one, the new
    expect(revs).toEqual([2, 2, 3, 3, 3, 3]);
    const got = await h.range('a', '\0');
    expect(got.kvs.map((kv) => [kv.key.toString(), kv.modRevision])).toEqual([
      ['a', 2],
      ['b', 3],
      ['c', 3],
    ]);
    const rb = r.responses[3]!;
    expect('range' in rb && rb.range.kvs.map(kvData)).toEqual([{ key: 'b', create: 3, mod: 3, ver: 1, value: 'v', lease: 0n }]);
  });

  it('a read-only txn, or a write txn that changes nothing, keeps the revision', async () => {
    await h.put('a', '1');
    expect((await h.txn({ compare: [], success: [get('a')], failure: [] })).revision).toBe(2);
    expect((await h.txn({ compare: [], success: [del('q')], failure: [put('x')] })).revision).toBe(2);
    expect(h.store.currentRevision).toBe(2);
  });

  it('runs nested txns with compares evaluated against the state before the txn', async () => {
    const r = await h.txn({
      compare: [],
      success: [
        put('a', '1'),
        {
          txn: {
            compare: [cmp('a', 'version', 'equal', 0)], // still 0: compares see the pre-txn state
            success: [put('b', 'inner')],
            failure: [put('c', 'inner')],
          },
        },
      ],
      failure: [],
    });
    expect(r.revision).toBe(2);
    const inner = r.responses[1]!;
    expect('txn' in inner && inner.txn).toEqual({ revision: 0, succeeded: true, responses: [{ put: { revision: 2 } }] });
    expect((await h.range('b')).kvs).toHaveLength(1);
    expect((await h.range('c')).kvs).toHaveLength(0);
  });

  it('enforces the duplicate-key rule like etcd', async () => {
    const dup = async (ops: RequestOp[]) => rejects(h.txn({ compare: [], success: ops, failure: [] }), 'duplicate-key');
    await dup([put('a'), put('a')]);
    await dup([del('a', 'c'), put('b')]);
    await dup([put('b'), del('a', 'c')]);
    await dup([del('b'), put('b')]);
    await dup([put('a'), { txn: { compare: [], success: [put('a')], failure: [] } }]);
    await dup([del('a', 'z'), { txn: { compare: [], success: [], failure: [put('q')] } }]);
    await dup([{ txn: { compare: [], success: [del('a')], failure: [] } }, { txn: { compare: [], success: [put('a')], failure: [] } }]);
    const e = await dup([put('x'), put('x')]);
    expect(e.message).toBe('etcdserver: duplicate key given in txn request');
    // allowed: then/else of one nested txn, puts in different branches, ranges,
    // a from-key delete (etcd's interval check never matches it), and a put in an
    // earlier sibling txn than the delete
    const ok = async (ops: RequestOp[], failure: RequestOp[] = []) => h.txn({ compare: [], success: ops, failure });
    await ok([{ txn: { compare: [], success: [put('a')], failure: [put('a')] } }]);
    await ok([put('a')], [put('a')]);
    await ok([get('a'), get('a'), put('a')]);
    await ok([del('a', '\0'), put('b')]);
    await ok([{ txn: { compare: [], success: [put('m')], failure: [] } }, { txn: { compare: [], success: [del('m')], failure: [] } }]);
    expect(h.store.currentRevision).toBeGreaterThan(1);
  });

  it('limits the number of ops per level', async () => {
    const ops = Array.from({ length: 129 }, (_, i) => get(`k${i}`));
    const e = await rejects(h.txn({ compare: [], success: ops, failure: [] }), 'too-many-ops');
    expect(e.message).toBe('etcdserver: too many operations in txn request');
    await h.txn({ compare: [], success: ops.slice(0, 128), failure: ops.slice(0, 128) });
    await rejects(h.txn({ compare: [], success: [{ txn: { compare: [], success: ops, failure: [] } }], failure: [] }), 'too-many-ops');
    await rejects(h.txn({ compare: [cmp('', 'version', 'equal', 0)], success: [], failure: [] }), 'empty-key');
    await rejects(h.txn({ compare: [], success: [], failure: [put('')] }), 'empty-key');
  });

  it('honours a configured max-txn-ops', async () => {
    const small = await Harness.open({ maxTxnOps: 2 });
    try {
      await rejects(small.txn({ compare: [cmp('a', 'version', 'equal', 0), cmp('b', 'version', 'equal', 0), cmp('c', 'version', 'equal', 0)], success: [], failure: [] }), 'too-many-ops');
    } finally {
      await small.close();
    }
  });

  it('validates the taken branch before changing anything', async () => {
    await h.put('a', '1');
    await rejects(h.txn({ compare: [], success: [put('b'), put('zz', '', { ignoreValue: true })], failure: [] }), 'key-not-found');
    await rejects(h.txn({ compare: [], success: [put('b'), get('a', { revision: 99 })], failure: [] }), 'future-rev');
    // the untaken branch is not checked
    await h.txn({ compare: [], success: [put('b')], failure: [get('a', { revision: 99 })] });
    expect(h.store.currentRevision).toBe(3);
    await h.compact(3);
    await rejects(h.txn({ compare: [], success: [get('a', { revision: 2 })], failure: [] }), 'compacted');
    // inside a txn a negative revision is below the first revision
    await rejects(h.txn({ compare: [], success: [get('a', { revision: -1 })], failure: [] }), 'compacted');
    // a put error wins over a range error whatever their order
    await rejects(h.txn({ compare: [], success: [get('a', { revision: 99 }), put('q', '', { ignoreLease: true })], failure: [] }), 'key-not-found');
  });

  it('reads history inside a txn', async () => {
    await h.put('a', '1');
    await h.put('a', '2');
    const r = await h.txn({ compare: [], success: [get('a', { revision: 2 }), put('b')], failure: [] });
    const first = r.responses[0]!;
    expect('range' in first && first.range.kvs[0]!.value.toString()).toBe('1');
  });
});

describe('compaction', () => {
  it('rejects compacting at or below the compact revision and above the current one', async () => {
    await h.put('a');
    await h.put('a');
    await rejects(h.compact(4), 'future-rev');
    await h.compact(2);
    expect(h.store.compactRevision).toBe(2);
    await rejects(h.compact(2), 'compacted');
    await h.compact(3);
  });

  it('removes superseded revisions and tombstones but keeps what is visible', async () => {
    await h.put('a', '1'); // 2
    await h.put('a', '2'); // 3
    await h.put('b', '1'); // 4
    await h.del('b'); // 5
    await h.put('c', '1'); // 6
    await h.compact(5);
    expect((await h.range('a', '\0', { revision: 5 })).kvs.map((kv) => `${kv.key}@${kv.modRevision}`)).toEqual(['a@3']);
    expect((await h.range('a', '\0')).kvs.map((kv) => `${kv.key}@${kv.modRevision}`)).toEqual(['a@3', 'c@6']);
    await h.reopen();
    expect(h.store.compactRevision).toBe(5);
    await rejects(h.range('a', undefined, { revision: 4 }), 'compacted');
    expect((await h.range('a', '\0', { revision: 5 })).kvs).toHaveLength(1);
    // the LevelDB records left: a@3, c@6 and nothing below 5
    const revisions: string[] = [];
    for await (const r of recordsOf(h.store)) if (r.bucket === 'key') revisions.push(...r.entries.map(([k]) => k.toString('hex')));
    expect(revisions.map((k) => Number.parseInt(k.slice(0, 16), 16))).toEqual([3, 6]);
  });

  it('deletes from LevelDB only what its own compaction removes while a later one is applied in memory only', async () => {
    await h.put('e', '1'); // 2
    await h.put('e', '2'); // 3
    await h.put('a', '1'); // 4
    await h.commit();
    const { done } = await h.store.compact(2, ++h.index);
    // compaction 2 durable: its physical job starts reading LevelDB; before its first
    // batch is back, compaction 3 is applied to the index (and not committed)
    await h.store.commit();
    await h.store.compact(3, ++h.index);
    await done;
    // the committed state (what a crash leaves, what a snapshot ships) is compaction 2's:
    // e@2 is still what revision 2 serves
    const { dir, restored } = await copyStore(h.store);
    const copy = await MvccStore.open({ dir, restored });
    try {
      expect(copy.compactRevision).toBe(2);
      expect((await copy.range({ key: b('e'), revision: 2 })).kvs.map((kv) => `${kv.key}@${kv.modRevision}`)).toEqual(['e@2']);
    } finally {
      await copy.close();
      removeDir(dir);
    }
  });
});

describe('durability', () => {
  it('persists the consistent index with the data in one commit', async () => {
    await h.store.put({ key: b('a'), value: b('1'), lease: 0n }, 10);
    h.store.setConsistentIndex(11);
    await h.commit();
    await h.store.put({ key: b('b'), value: b('1'), lease: 0n }, 12); // applied, never committed
    await h.store.close(); // close writes what was applied
    await h.reopen();
    expect(h.store.consistentIndex).toBe(12);
    expect((await h.range('b')).kvs).toHaveLength(1);
  });

  it('restores the latest value of every key from a long uncompacted history', async () => {
    // 40 MB of superseded 1 KB values: the restore repacks its value slabs along the way
    const value = (k: number, r: number) => Buffer.alloc(k % 7 === 0 ? 5000 : 1000, `${k}:${r}:`);
    const keys = 600;
    const revisions = 70;
    // written once, first: live through every repack
    for (let k = 0; k < 100; k++) await h.store.put({ key: b(`static${k}`), value: value(k, -1), lease: 0n }, ++h.index);
    for (let r = 0; r < revisions; r++) {
      for (let k = 0; k < keys; k++) await h.store.put({ key: b(`k${k}`), value: value(k, r), lease: 0n }, ++h.index);
      await h.store.commit();
    }
    const midRev = h.store.currentRevision;
    await h.store.deleteRange({ key: b('k1'), rangeEnd: b('k2') }, ++h.index); // k1, k10..k19, k100..k199
    await h.commit();
    await h.reopen();
    for (let k = 0; k < keys; k++) {
      const got = (await h.range(`k${k}`)).kvs;
      if (String(k).startsWith('1')) expect(got, `k${k}`).toHaveLength(0);
      else expect(got[0]!.value.equals(value(k, revisions - 1)), `k${k}`).toBe(true);
    }
    for (let k = 0; k < 100; k++) expect((await h.range(`static${k}`)).kvs[0]!.value.equals(value(k, -1)), `static${k}`).toBe(true);
    const old = (await h.range('k150', undefined, { revision: midRev })).kvs[0]!;
    expect(old.value.equals(value(150, revisions - 1))).toBe(true);
    expect(old.version).toBe(revisions);
  });

  it('persists lease records beside the keys', async () => {
    h.store.putLeaseRecord(5n, b('five'));
    h.store.putLeaseRecord(-3n, b('neg'));
    h.store.putLeaseRecord(7n, b('seven'));
    await h.commit();
    h.store.deleteLeaseRecord(7n);
    await h.commit();
    await h.reopen();
    const recs = (await h.store.leaseRecords()).map(([id, r]) => [id, r.toString()]);
    expect(recs.sort()).toEqual([
      [-3n, 'neg'],
      [5n, 'five'],
    ]);
  });
});
