// A store written with revision records keyed by etcd's revision bytes (the layout before
// hex keys) is rewritten on its first open, whole or half done before, with or without
// its key index image, and serves exactly what it served before.

import { ClassicLevel } from 'classic-level';
import { afterEach, expect, test } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { dropIndexImage } from '../../src/mvcc/index-image.js';
import { KEY_BUCKET_PREFIX, MARKED_REVISION_DB_KEY_LEN, REVISION_DB_KEY_LEN, revisionKeyOf } from '../../src/mvcc/revision.js';
import { Harness, kvData } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Puts, overwrites, deletes, a txn and a compaction: records of every shape, tombstones included. */
async function fill(hh: Harness): Promise<void> {
  for (let i = 0; i < 300; i++) await hh.put(`key${i % 40}`, `value ${i}`);
  await hh.del('key3');
  await hh.del('key10', 'key19');
  await hh.txn({
    compare: [],
    success: [
      { put: { key: Buffer.from('a'), value: Buffer.from('1'), lease: 0n } },
      { put: { key: Buffer.from('b'), value: Buffer.from('2'), lease: 0n } },
      { deleteRange: { key: Buffer.from('key5') } },
    ],
    failure: [],
  });
  await hh.compact(120);
  for (let i = 0; i < 20; i++) await hh.put(`late${i}`, `late ${i}`);
}

/** What the store serves: every key now and at older revisions, and both hashes. */
async function served(hh: Harness) {
  const rev = hh.store.currentRevision;
  const at = [rev, rev - 10, 200, 121];
  const ranges = [];
  for (const r of at) ranges.push((await hh.range('\0', '\xff', { revision: r })).kvs.map(kvData));
  return { rev, ranges, hashKV: await hh.store.hashKV(0), hash: (await hh.store.hash()).hash };
}

/** Rewrites the closed store's first `share` of revision records back to the old layout. */
async function toOldLayout(dir: string, share: number, dropImage: boolean): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    const records: Array<[Buffer, Buffer]> = [];
    for await (const [k, v] of db.iterator({ gte: Buffer.of(KEY_BUCKET_PREFIX), lt: Buffer.of(KEY_BUCKET_PREFIX + 1) })) records.push([k, v]);
    const n = Math.floor(records.length * share);
    const batch = db.batch();
    for (const [k, v] of records.slice(0, n)) {
      batch.put(Buffer.concat([Buffer.of(KEY_BUCKET_PREFIX), revisionKeyOf(k)]), v);
      batch.del(k);
    }
    await batch.write();
    if (dropImage) await dropIndexImage(db);
    return n;
  } finally {
    await db.close();
  }
}

/** The lengths of the store's revision record keys, counted. */
async function keyLengths(dir: string): Promise<Map<number, number>> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const lengths = new Map<number, number>();
  try {
    for await (const k of db.keys({ gte: Buffer.of(KEY_BUCKET_PREFIX), lt: Buffer.of(KEY_BUCKET_PREFIX + 1) })) lengths.set(k.length, (lengths.get(k.length) ?? 0) + 1);
  } finally {
    await db.close();
  }
  return lengths;
}

for (const [what, share, dropImage] of [
  ['every record, the key index image kept', 1, false],
  ['every record, no key index image', 1, true],
  ['half of them (a migration stopped half way)', 0.5, true],
] as const) {
  test(`a store in the old layout is rewritten at its first open: ${what}`, async () => {
    h = await Harness.open();
    await fill(h);
    const before = await served(h);
    await h.store.close();

    const old = await toOldLayout(h.dir, share, dropImage);
    expect(old).toBeGreaterThan(100);
    const lengths = await keyLengths(h.dir);
    // old keys: the prefix and 17 bytes, 18 for a tombstone
    expect((lengths.get(18) ?? 0) + (lengths.get(19) ?? 0)).toBe(old);

    h.store = await MvccStore.open({ dir: h.dir });
    expect(await served(h)).toEqual(before);
    await h.store.close();
    const after = await keyLengths(h.dir);
    expect([...after.keys()].sort()).toEqual([REVISION_DB_KEY_LEN, MARKED_REVISION_DB_KEY_LEN].filter((n) => after.has(n)).sort());
    expect([...after.values()].reduce((a, b) => a + b, 0)).toBe([...lengths.values()].reduce((a, b) => a + b, 0));
    // open again for afterEach to close
    h.store = await MvccStore.open({ dir: h.dir });
  });
}
