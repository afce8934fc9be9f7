// The key index a clean close saves (src/mvcc/index-image.ts): the next open takes it
// instead of reading every record, it equals what reading the records rebuilds, and an
// image that is torn, old, or outlived by a write is never taken.

import { cpSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Backend } from '../../src/mvcc/backend.js';
import { IMAGE_FILE, TOKEN_KEY, takeIndexImage } from '../../src/mvcc/index-image.js';
import { MvccStore, addToStore } from '../../src/mvcc/index.js';
import { type RestoredState, restoreFromStore } from '../../src/mvcc/restore.js';
import { revisionOfDbKey } from '../../src/mvcc/revision.js';
import { Rng } from '../../src/pkg/rng.js';
import { Harness, b, removeDir, scratchDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

function tempDir(): string {
  const d = scratchDir();
  dirs.push(d);
  return d;
}

/** The store's `restored mvcc store` log line. */
async function openLogged(dir: string): Promise<{ store: MvccStore; line: Record<string, unknown> }> {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) });
  const store = await MvccStore.open({ dir, logger: pino({ level: 'info' }, sink) });
  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'restored mvcc store');
  return { store, line: line! };
}

/** What a client can see of a store: every key at every revision, the hashes, the revisions, the size. */
async function seen(store: MvccStore): Promise<Record<string, unknown>> {
  const revisions = [];
  for (let rev = Math.max(store.compactRevision, 1); rev <= store.currentRevision; rev++) {
    revisions.push(await store.range({ key: b('\0'), rangeEnd: b('\0'), revision: rev }));
  }
  return {
    revisions,
    leases: await store.leaseRecords(),
    hash: await store.hash(),
    hashKV: await store.hashKV(0),
    currentRevision: store.currentRevision,
    compactRevision: store.compactRevision,
    consistentIndex: store.consistentIndex,
    // the logical size: the size on disk differs with LevelDB's files (a copy opened once more, say)
    recordBytes: store.recordBytes(),
  };
}

/**
 * A restored state as plain data, compacted at `compactRev` as an open compacts it
 * (Compaction.compactIndex): every key's generations and lease, the revision, the sizes.
 */
function dump(state: RestoredState, compactRev: number): Record<string, unknown> {
  const emptied: string[] = [];
  for (const ki of state.index.entries()) if (compactRev > 0 && ki.compact(compactRev)) emptied.push(ki.key);
  for (const k of emptied) state.index.delete(k);
  const keys = [...state.index.entries()].map((ki) => ({ key: ki.key, generations: ki.generations(), lease: ki.lease, live: ki.isLive() }));
  return { keys, currentRev: state.currentRev, storedBytes: state.storedBytes, otherSizes: [...state.otherSizes].sort(), keyBucket: { ...state.keyBucket } };
}

/**
 * Seeded puts, deletes, multi-op txns, leases and compactions (finished ones, the last
 * one left to the open to resume as well) over a small key space: many revisions and
 * generations per key.
 */
async function workload(h: Harness, seed: number, ops: number): Promise<void> {
  const rng = new Rng(seed);
  const key = () => `k${String(rng.int(60)).padStart(3, '0')}`;
  for (let i = 0; i < ops; i++) {
    const roll = rng.int(100);
    if (roll < 55) await h.put(key(), `v${i}`, rng.chance(0.3) ? { lease: BigInt(1 + rng.int(5)) } : {});
    else if (roll < 70) await h.del(key());
    else if (roll < 75) await h.del('k01', 'k02');
    else if (roll < 85) {
      await h.txn({
        compare: [],
        // three distinct keys: a txn may not touch one key twice
        success: [
          { put: { key: b(`k${String(2 * rng.int(30)).padStart(3, '0')}`), value: b(`t${i}`), lease: 0n } },
          { deleteRange: { key: b(`k${String(2 * rng.int(30) + 1).padStart(3, '0')}`) } },
          { put: { key: b(`m${rng.int(10)}`), value: b(`u${i}`), lease: 3n } },
        ],
        failure: [],
      });
    } else if (roll < 90) {
      h.store.putLeaseRecord(BigInt(rng.int(20)), Buffer.from(`lease ${i}`));
      await h.commit();
    } else if (roll < 93) {
      h.store.deleteLeaseRecord(BigInt(rng.int(20)));
      await h.commit();
    } else if (roll < 96) {
      const from = Math.max(h.store.compactRevision, 0) + 1;
      const rev = from + rng.int(Math.max(1, h.store.currentRevision - from));
      if (rev < h.store.currentRevision) await h.compact(rev);
    } else {
      await h.put(`long/${String(i).padStart(5, '0')}`, 'x'.repeat(rng.int(3000)));
    }
  }
}

/** A store after `workload`, closed as a member's clean stop closes it. */
async function savedStore(seed: number, ops: number): Promise<string> {
  const h = await Harness.open();
  dirs.push(h.dir);
  await workload(h, seed, ops);
  await h.store.close({ saveIndex: true });
  return h.dir;
}

function copyOf(dir: string): string {
  const copy = tempDir();
  cpSync(dir, copy, { recursive: true });
  return copy;
}

async function compactRevOf(backend: Backend): Promise<number> {
  const v = backend.getMetaSync('scheduledCompactRev');
  return v ? Number(v.readBigUInt64BE(0)) : 0;
}

describe('key index image', () => {
  it('is taken at the next open, equals the index rebuilt from the records, and serves the same store', async () => {
    for (const seed of [1, 2, 3]) {
      const dir = await savedStore(seed, 400);
      expect(existsSync(path.join(dir, IMAGE_FILE))).toBe(true);
      const fromRecordsDir = copyOf(dir);

      // structurally: the image's state against restoreFromStore's, both compacted as an open compacts them
      const a = await Backend.open(copyOf(dir));
      const image = await takeIndexImage(a.db, a.dir);
      const rebuilt = await restoreFromStore(a.db);
      const compactRev = await compactRevOf(a);
      await a.close();
      expect(image.state, `seed ${seed}`).toBeDefined();
      expect(dump(image.state!, compactRev), `seed ${seed}`).toEqual(dump(rebuilt, compactRev));

      // as clients see it: the store opened on the image against one opened on the records
      const viaImage = await openLogged(dir);
      expect(viaImage.line['restored-from']).toBe('image');
      expect(existsSync(path.join(dir, IMAGE_FILE))).toBe(false);
      const imageView = await seen(viaImage.store);
      await viaImage.store.close();
      const stale = await Backend.open(fromRecordsDir);
      await stale.db.del(TOKEN_KEY, { sync: true });
      await stale.close();
      const viaRecords = await openLogged(fromRecordsDir);
      expect(viaRecords.line['restored-from']).toBe('records');
      expect(imageView, `seed ${seed}`).toEqual(await seen(viaRecords.store));
      await viaRecords.store.close();
    }
  });

  it("is saved by a seal, before a member's last export reads the sealed store, which takes no more writes", async () => {
    const h = await Harness.open();
    dirs.push(h.dir);
    await workload(h, 11, 200);
    // applied, not yet committed: the seal writes it out
    await h.store.put({ key: b('staged'), value: b('x'), lease: 0n }, ++h.index);
    await h.store.seal({ saveIndex: true });
    expect(existsSync(path.join(h.dir, IMAGE_FILE))).toBe(true);
    await expect(h.store.put({ key: b('late'), value: b('y'), lease: 0n }, ++h.index)).rejects.toThrow('mvcc: store is closed');
    const view = h.store.bucketView();
    let records = 0;
    let last = '';
    for await (const batch of view.revisionRecords()) {
      records += batch.length;
      last = batch.at(-1)![0];
    }
    await view.close();
    expect(records).toBe(view.size('key').records);
    // the last revision is the staged put's
    expect(revisionOfDbKey(Buffer.from(last, 'latin1')).main).toBe(h.store.currentRevision);
    await h.store.close();

    const reopened = await openLogged(h.dir);
    expect(reopened.line['restored-from']).toBe('image');
    expect((await reopened.store.range({ key: b('staged') })).kvs.map((kv) => kv.value.toString())).toEqual(['x']);
    await reopened.store.close();
  });

  it('is rebuilt from the records when the image is torn anywhere or a byte of it changed', async () => {
    const dir = await savedStore(7, 300);
    const file = path.join(dir, IMAGE_FILE);
    const whole = readFileSync(file);
    const reference = copyOf(dir);
    const ref = await Backend.open(reference);
    await ref.db.del(TOKEN_KEY, { sync: true });
    await ref.close();
    const expected = await (async () => {
      const { store } = await openLogged(reference);
      try {
        return await seen(store);
      } finally {
        await store.close();
      }
    })();
    const damaged: Array<[string, (f: string) => void]> = [
      ['empty', (f) => truncateSync(f, 0)],
      ['header only', (f) => truncateSync(f, 20)],
      ['half', (f) => truncateSync(f, whole.length >> 1)],
      ['last byte missing', (f) => truncateSync(f, whole.length - 1)],
      ['a byte changed', (f) => writeFileSync(f, Buffer.from(whole).fill(whole[whole.length >> 1]! ^ 0xff, whole.length >> 1, (whole.length >> 1) + 1))],
      ['a frame appended', (f) => writeFileSync(f, Buffer.concat([whole, whole.subarray(0, 40)]))],
    ];
    for (const [what, damage] of damaged) {
      const copy = copyOf(dir);
      damage(path.join(copy, IMAGE_FILE));
      const { store, line } = await openLogged(copy);
      expect(line['restored-from'], what).toBe('records');
      expect(line['index-image-unused'], what).toBeTypeOf('string');
      expect(await seen(store), what).toEqual(expected);
      await store.close();
    }
  });

  it('is not taken when the close died before its token was written, nor an older image, nor after a write', async () => {
    const dir = await savedStore(11, 200);
    const oldImage = readFileSync(path.join(dir, IMAGE_FILE));

    // a crash after the image's rename and before its token: the image is whole, nothing names it
    const untokened = copyOf(dir);
    const u = await Backend.open(untokened);
    await u.db.del(TOKEN_KEY, { sync: true });
    await u.close();
    const noToken = await openLogged(untokened);
    expect(noToken.line['index-image-unused']).toMatch(/no image token/);
    await noToken.store.close();

    // the image taken, more written, a crash (no close): the old image put back names nothing
    const crashed = copyOf(dir);
    const first = await openLogged(crashed);
    expect(first.line['restored-from']).toBe('image');
    await first.store.put({ key: b('after-the-image'), value: b('x'), lease: 0n }, first.store.consistentIndex + 1);
    await first.store.commit();
    await first.store.flushed();
    await first.store.abandon();
    writeFileSync(path.join(crashed, IMAGE_FILE), oldImage);
    const afterCrash = await openLogged(crashed);
    expect(afterCrash.line['restored-from']).toBe('records');
    expect((await afterCrash.store.range({ key: b('after-the-image') })).kvs).toHaveLength(1);

    // a newer clean close, then the older image in its place: its token is not LevelDB's
    await afterCrash.store.put({ key: b('second'), value: b('y'), lease: 0n }, afterCrash.store.consistentIndex + 1);
    await afterCrash.store.close({ saveIndex: true });
    writeFileSync(path.join(crashed, IMAGE_FILE), oldImage);
    const older = await openLogged(crashed);
    expect(older.line['index-image-unused']).toMatch(/not the one the store names/);
    expect((await older.store.range({ key: b('second') })).kvs).toHaveLength(1);
    await older.store.close();
  });

  it('is not taken after addToStore wrote into the closed store', async () => {
    const dir = await savedStore(13, 100);
    await addToStore(dir, (async function* () {
      yield { bucket: 'key' as const, entries: [] };
    })());
    const { store, line } = await openLogged(dir);
    expect(line['index-image-unused']).toMatch(/no image token/);
    await store.close();
  });
});
