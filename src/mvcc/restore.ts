// Rebuilding the in-memory state of a store from its records (etcd's store.restore): the
// key index, the highest revision and the stored sizes. Values are not kept: reads find
// them in LevelDB by revision.
//
// An open does it in one ordered pass over LevelDB, where byte order is revision order.
// A store just built from a stream of records (an import of etcd's bbolt db) had every
// record in hand, in the same order, as it wrote them: the builder restores as it goes
// and hands the result to the open, which then need not read the whole store back.

import { Bucket, type Db, entrySize, KeyBucketSize } from './backend.js';
import { type IndexFields, readIndexFields } from './codec.js';
import { revisionKeyLength, revisionOfDbKey } from './revision.js';
import { TreeIndex } from './tree-index.js';

const BATCH = 4096;
/**
 * What one read may hold before it returns, so that it does return BATCH records:
 * classic-level's default of 16 KiB stops a read after some 15 records of 1 KiB values,
 * each read a trip through the thread pool and back.
 */
const BATCH_BYTES = 1 << 20;

/** What an open rebuilds from a store's records; fed every record of the store, each bucket's in key order. */
export class RestoredState {
  readonly index = new TreeIndex();
  /** the highest main revision seen (0 if none) */
  currentRev = 0;
  /** serialized size of every entry (Backend's logical size) */
  storedBytes = 0;
  /** sizes of the non-revision entries (meta, lease, auth...), which get overwritten and deleted */
  readonly otherSizes = new Map<string, number>();
  /** the revision records' count and sizes */
  readonly keyBucket = new KeyBucketSize();
  /** the record at hand's fields, reused from record to record */
  private readonly fields: IndexFields = { key: '', createRevision: 0, version: 0, lease: 0n };

  /** One stored entry: `k` with its bucket prefix. */
  add(k: Buffer, v: Buffer): void {
    if (k[0] !== Bucket.key) {
      const size = entrySize(k.length, v.length);
      this.storedBytes += size;
      this.otherSizes.set(k.toString('latin1'), size);
      return;
    }
    // sizes count etcd's revision key, as an export writes it and the backend counts it
    const keyLen = 1 + revisionKeyLength(k.length);
    const size = entrySize(keyLen, v.length);
    this.storedBytes += size;
    this.keyBucket.put(keyLen, size);
    const rev = revisionOfDbKey(k);
    const kv = this.fields;
    readIndexFields(v, kv);
    if (rev.tombstone) {
      // a tombstone whose puts were compacted away closes nothing
      const ki = this.index.get(kv.key);
      if (ki?.isLive()) ki.tombstone(rev.main, rev.sub);
    } else {
      this.index.getOrCreate(kv.key).restorePut(rev.main, rev.sub, kv.createRevision, kv.version, kv.lease);
    }
    if (rev.main > this.currentRev) this.currentRev = rev.main;
  }
}

/** Reads every record of the open store `db` into a new RestoredState. */
export async function restoreFromStore(db: Db): Promise<RestoredState> {
  const state = new RestoredState();
  // a one-off full scan: keep it out of LevelDB's block cache
  const it = db.iterator({ fillCache: false, highWaterMarkBytes: BATCH_BYTES });
  // read the next batch on the thread pool while this one is indexed
  let next = it.nextv(BATCH);
  try {
    for (;;) {
      const entries = await next;
      if (entries.length === 0) break;
      next = it.nextv(BATCH);
      for (const [k, v] of entries) state.add(k, v);
    }
  } finally {
    await next.catch(() => {});
    await it.close();
  }
  return state;
}
