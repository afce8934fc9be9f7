// Building a store directory from records streamed bucket by bucket (an import of
// etcd's bbolt db): written in bounded batches, so memory does not grow with the data,
// and on disk when it resolves. The records pass through the open's restore on their
// way (restore.ts): the store's first open takes that instead of reading them all back.
// Also what a closed store's consistent index is, without loading the store.

import { mkdir, readdir } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { type BucketName, MetaKey, bucketKey } from './backend.js';
import { dropIndexImage } from './index-image.js';
import { RestoredState } from './restore.js';
import { readUint64BE, revisionDbKeyOf } from './revision.js';

/** A LevelDB batch ends at whichever comes first; at most two are in memory. */
const BATCH_RECORDS = 4096;
const BATCH_BYTES = 4 << 20;
/** a memtable as big as the store's own (backend.ts): fewer, bigger level-0 tables */
const WRITE_BUFFER_BYTES = 32 << 20;

/** Records of one bucket, keys without the bucket prefix. */
export interface BucketRecords {
  readonly bucket: BucketName;
  readonly entries: ReadonlyArray<readonly [key: Buffer, value: Buffer]>;
}

export interface BuildOptions {
  /** called after each batch lands, with the number of batches so far (progress, fault injection in tests) */
  onBatch?: (batches: number) => void;
}

/**
 * Writes `records` into a new store at `dir`, which must be missing or empty, and returns
 * what its open would restore from them (MvccStoreOptions.restored). Each bucket's
 * records must come in key order. A failure leaves a directory that is not a store to
 * open: the caller builds at a temporary path and renames it into place only once this
 * resolves.
 */
export async function buildStore(
  dir: string,
  records: AsyncIterable<BucketRecords>,
  opts: BuildOptions = {},
): Promise<RestoredState> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new Error(`mvcc: ${dir} is not empty`);
  const restored = new RestoredState();
  await writeRecords(dir, true, records, opts, restored);
  return restored;
}

/**
 * Writes `records` over an existing, closed store at `dir` (a record with the key of one
 * it holds replaces it); on disk when it resolves. Not atomic: a caller that can be
 * stopped half way must be able to write the same records again.
 */
export async function addToStore(dir: string, records: AsyncIterable<BucketRecords>): Promise<void> {
  await writeRecords(dir, false, records, {});
}

async function writeRecords(
  dir: string,
  create: boolean,
  records: AsyncIterable<BucketRecords>,
  opts: BuildOptions,
  restored?: RestoredState,
): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: create, writeBufferSize: WRITE_BUFFER_BYTES });
  await db.open();
  // One batch is written while the next fills; put() copies into LevelDB's batch at once.
  let writing: Promise<void> = Promise.resolve();
  try {
    // written into: an image of the key index its last close saved no longer describes it
    if (!create) await dropIndexImage(db);
    let batch = db.batch();
    let bytes = 0;
    let batches = 0;
    for await (const { bucket, entries } of records) {
      for (const [key, value] of entries) {
        // a revision record's key is kept in hex digits (revision.ts)
        const k = bucket === 'key' ? revisionDbKeyOf(key) : bucketKey(bucket, key);
        batch.put(k, value);
        restored?.add(k, value);
        bytes += key.length + value.length;
        if (batch.length < BATCH_RECORDS && bytes < BATCH_BYTES) continue;
        await writing;
        const full = batch;
        writing = full.write().then(() => opts.onBatch?.(++batches));
        // handled here so a failure while the next batch fills is not an unhandled
        // rejection; the await above rethrows it
        writing.catch(() => undefined);
        batch = db.batch();
        bytes = 0;
      }
    }
    await writing;
    // synced: LevelDB syncs the tables it wrote, this syncs its log, so the whole store is on disk
    await batch.write({ sync: true });
    opts.onBatch?.(++batches);
  } finally {
    await writing.catch(() => undefined);
    await db.close();
  }
}

/** The consistent index recorded in the closed store at `dir` (0: none recorded). */
export async function storeConsistentIndex(dir: string): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  try {
    const v = await db.get(bucketKey('meta', Buffer.from(MetaKey.consistentIndex)));
    if (v === undefined) return 0;
    const ci = v.length === 8 ? readUint64BE(v, 0) : undefined;
    if (ci === undefined) throw new Error(`mvcc: ${dir} records ${v.toString('hex')} as its consistent index`);
    return ci;
  } finally {
    await db.close();
  }
}
