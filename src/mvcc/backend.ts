// The LevelDB backend: etcd's bbolt buckets become one-byte key prefixes in a single
// LevelDB, so one LevelDB batch carries an apply batch's revisions, lease records and
// the consistent index together (atomic, hence idempotent replay after a crash).
//
// The backend also keeps the exact serialized size of everything it has written, and
// the batches still in flight, so that a consistent point-in-time view (for
// snapshots and Hash) with a known byte size can be taken synchronously.

import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { varintSize } from '../raftpb/wire.js';
import { asBuffer } from './codec.js';
import { KEY_BUCKET_PREFIX, revisionDbKey, revisionKeyLength, revisionKeyOf } from './revision.js';

export { revisionDbKey };

/**
 * LevelDB's memtable: up to two of them in memory (one filling, one being written out),
 * native memory outside the V8 heap. Revision keys only ever grow, so the tables a
 * memtable becomes hardly overlap and compaction mostly moves them down without
 * merging: a bigger memtable saves little compaction work here, while 32 MiB ones held
 * up to 64 MiB of a member's RSS as soon as it had taken 64 MiB of puts (bench/scale).
 */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * LevelDB's cache of uncompressed blocks. The hot values are in the store's value cache
 * already, the table files in the kernel's page cache: this only spares recent cold
 * reads a decompression.
 */
const BLOCK_CACHE_BYTES = 8 * 1024 * 1024;

/** Bucket prefixes (etcd bucket names in comments). */
export const Bucket = {
  /** `key`: revision (its etcd key in hex digits, revision.ts) -> mvccpb.KeyValue */
  key: KEY_BUCKET_PREFIX,
  /** `meta`: consistent_index, scheduledCompactRev, finishedCompactRev */
  meta: 0x6d,
  /** `lease`: lease ID (8-byte big-endian) -> leasepb.Lease */
  lease: 0x6c,
  /** `auth`: authEnabled, authRevision */
  auth: 0x61,
  /** `authUsers`: user name -> authpb.User */
  authUsers: 0x75,
  /** `authRoles`: role name -> authpb.Role */
  authRoles: 0x72,
  /** `alarm`: etcdserverpb.AlarmMember -> empty */
  alarm: 0x41,
} as const;
export type BucketName = keyof typeof Bucket;

export const BUCKET_NAMES: Record<number, string> = {
  0x6b: 'key',
  0x6d: 'meta',
  0x6c: 'lease',
  0x61: 'auth',
  0x75: 'authUsers',
  0x72: 'authRoles',
  0x41: 'alarm',
};

export const MetaKey = {
  consistentIndex: 'consistent_index',
  scheduledCompactRev: 'scheduledCompactRev',
  finishedCompactRev: 'finishedCompactRev',
} as const;

export type Db = ClassicLevel<Buffer, Buffer>;
export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/**
 * Put records of one batch, which may not be in LevelDB yet, in revision order.
 * Parallel arrays: one put costs no object of its own here.
 */
class PendingRevisions {
  private readonly mains: number[] = [];
  private readonly subs: number[] = [];
  private readonly values: Buffer[] = [];

  push(main: number, sub: number, value: Buffer): void {
    this.mains.push(main);
    this.subs.push(sub);
    this.values.push(value);
  }

  find(main: number, sub: number): Buffer | undefined {
    const m = this.mains;
    const n = m.length;
    if (n === 0 || main < m[0]! || main > m[n - 1]!) return undefined;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const mm = m[mid]!;
      const ms = this.subs[mid]!;
      if (mm < main || (mm === main && ms < sub)) lo = mid + 1;
      else if (mm === main && ms === sub) return this.values[mid];
      else hi = mid - 1;
    }
    return undefined;
  }
}

export function bucketKey(bucket: BucketName, key: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + key.length);
  b[0] = Bucket[bucket];
  b.set(key, 1);
  return b;
}

/** Bytes one entry takes in a serialized view: uvarint key length, key, uvarint value length, value. */
export function entrySize(keyLen: number, valueLen: number): number {
  return varintSize(keyLen) + keyLen + varintSize(valueLen) + valueLen;
}

const SIZE_REFRESH_MS = 1000;

/** The stores open in this process, by absolute path. */
const OPEN_LOCATIONS = new Set<string>();

/** A consistent point-in-time view of the whole database, in key order. */
export interface View {
  /** serialized bytes of all entries (see entrySize) */
  readonly bytes: number;
  /** every entry, bucket prefix included; iterate once: the view is released at the end */
  entries(): AsyncIterable<[Buffer, Buffer]>;
}

/**
 * The `key` bucket's record count and sizes, kept as records are written: what a
 * snapshot streamed while it is read lays its file out by (an upper bound on its pages).
 * Never below the truth: a delete whose record size is not known is not counted off,
 * and the largest record is the largest written since the store was opened.
 */
export class KeyBucketSize {
  records = 0;
  /** entrySize of every record */
  bytes = 0;
  maxEntry = 0;
  /** the longest key, with its bucket prefix */
  maxKey = 0;

  put(keyLength: number, size: number): void {
    this.records++;
    this.bytes += size;
    if (size > this.maxEntry) this.maxEntry = size;
    if (keyLength > this.maxKey) this.maxKey = keyLength;
  }

  /** a record of `size` bytes deleted (a delete of unknown size counts off nothing) */
  delete(size: number): void {
    this.records--;
    this.bytes -= size;
  }
}

/** A bucket's records (keys without the bucket prefix), counted when a view is taken; sizes are upper bounds. */
export interface BucketSize {
  readonly records: number;
  /** key and value bytes of every record */
  readonly dataBytes: number;
  /** key and value bytes of the largest record */
  readonly maxPairBytes: number;
  /** the longest key's bytes */
  readonly maxKeyBytes: number;
}

/**
 * entrySize less the prefix byte and two varint lengths of at least a byte each: a
 * record's key (without prefix) and value bytes are at most this.
 */
const ENTRY_OVERHEAD = 3;

/**
 * A consistent point-in-time view read one bucket at a time, in any bucket order (etcd's
 * bbolt orders buckets by name, LevelDB by prefix byte). Held until close().
 */
export interface BucketView {
  /** the bucket's size in this view */
  size(name: BucketName): BucketSize;
  /**
   * the bucket's entries in key order, keys without the bucket prefix, in the batches
   * LevelDB reads them in (a whole store's worth of keys is then not a promise per key)
   */
  bucket(name: BucketName): AsyncIterable<ReadonlyArray<readonly [Buffer, Buffer]>>;
  /**
   * the `key` bucket as bucket('key') gives it, with each record's LevelDB key as the
   * store keeps it, a string: the bucket's prefix, then the etcd revision key's hex digits
   * (bbolt's key.ts takes it so): what an export writes without a Buffer or a slice a key
   */
  revisionRecords(): AsyncIterable<ReadonlyArray<readonly [string, Buffer]>>;
  /** what the view is made of besides its LevelDB snapshot, for a StoreReader's twin of it (bucketViewOf) */
  readonly point: FrozenPoint;
  close(): Promise<void>;
}

/**
 * A view's contents besides its LevelDB snapshot, as plain data a worker thread can be
 * sent: the records of the batches in flight when it froze, laid over the snapshot
 * ([LevelDB key as latin1, value or null for a delete]), and every bucket's size by
 * prefix byte.
 */
export interface FrozenPoint {
  readonly overlay: ReadonlyArray<readonly [string, Uint8Array | null]>;
  readonly sizes: ReadonlyArray<readonly [number, BucketSize]>;
}

/**
 * Another thread reading the store (an export, server/backup/export-thread.ts), through
 * classic-level's multithreading: it shares this thread's open LevelDB, so the store
 * closes its readers before it closes LevelDB; a store opened later at the same path
 * would otherwise be handed the old database.
 */
export interface StoreReader {
  /** takes the reader's LevelDB snapshot, synchronously: called as a view freezes, before any later write is issued */
  takeSnapshot(): void;
  close(): Promise<void>;
}

export class Backend {
  private ops: BatchOp[] = [];
  private pendingRevs = new PendingRevisions();
  private flushingRevs = new PendingRevisions();
  private readonly inflight = new Set<BatchOp[]>();
  private readonly readers = new Set<StoreReader>();
  private closed = false;
  /** serialized size of every entry once all issued writes land */
  private issuedBytes = 0;
  /** sizes of the non-revision entries (meta, lease), which get overwritten and deleted */
  private otherSizes = new Map<string, number>();
  private keyBucket = new KeyBucketSize();
  private sizeOnDisk = 0;
  private sizeRefreshedAt = 0;
  private sizeRefreshing = false;

  private constructor(
    readonly dir: string,
    readonly db: Db,
  ) {}

  static async open(dir: string): Promise<Backend> {
    // LevelDB's lock no longer tells two opens in this process apart (multithreading below)
    const location = resolve(dir);
    if (OPEN_LOCATIONS.has(location)) throw new Error(`the store at ${dir} is open already in this process`);
    OPEN_LOCATIONS.add(location);
    try {
      return await Backend.openDb(dir);
    } catch (err) {
      OPEN_LOCATIONS.delete(location);
      throw err;
    }
  }

  private static async openDb(dir: string): Promise<Backend> {
    const db = new ClassicLevel<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      writeBufferSize: WRITE_BUFFER_BYTES,
      cacheSize: BLOCK_CACHE_BYTES,
      // a StoreReader in a worker thread opens the same database
      multithreading: true,
    });
    await db.open();
    const b = new Backend(dir, db);
    await b.refreshSize();
    return b;
  }

  /** The sizes of the stored entries, as the open's restore counted them (restore.ts); once, before any write. */
  setStoredSizes(bytes: number, otherSizes: Map<string, number>, keyBucket: KeyBucketSize): void {
    this.issuedBytes = bytes;
    this.otherSizes = otherSizes;
    this.keyBucket = keyBucket;
  }

  /** the key bucket's record count and sizes, which snapshot layouts are bounded by (for an index image) */
  get storedKeyBucket(): Readonly<KeyBucketSize> {
    return this.keyBucket;
  }

  /** The sizes of the non-revision entries, as logicalSize counts them (for an index image). */
  get storedOtherSizes(): ReadonlyMap<string, number> {
    return this.otherSizes;
  }

  /** Exact serialized size of the store as of the last issued write. */
  get logicalSize(): number {
    return this.issuedBytes;
  }

  /** Stages a revision record; `value` is the marshaled KeyValue. */
  putRevision(main: number, sub: number, tombstone: boolean, value: Buffer): void {
    this.ops.push({ type: 'put', key: revisionDbKey(main, sub, tombstone), value });
    if (!tombstone) this.pendingRevs.push(main, sub, value);
  }

  put(bucket: BucketName, key: Uint8Array, value: Buffer): void {
    this.ops.push({ type: 'put', key: bucketKey(bucket, key), value });
  }

  del(bucket: BucketName, key: Uint8Array): void {
    this.ops.push({ type: 'del', key: bucketKey(bucket, key) });
  }

  putMeta(name: string, value: Buffer): void {
    this.put('meta', Buffer.from(name), value);
  }

  getMetaSync(name: string): Buffer | undefined {
    return this.db.getSync(bucketKey('meta', Buffer.from(name)));
  }

  /** Writes every staged op as one LevelDB batch (sync:false: the WAL is the durability point). */
  async flush(): Promise<void> {
    if (this.ops.length === 0) return;
    const ops = this.ops;
    this.ops = [];
    this.flushingRevs = this.pendingRevs;
    this.pendingRevs = new PendingRevisions();
    try {
      await this.write(ops);
    } finally {
      this.flushingRevs = new PendingRevisions();
    }
  }

  /**
   * Issues one batch now, outside the apply batch (compaction's deletes). Revision
   * deletes must carry the deleted value's length in `sizes` (by position).
   */
  async write(ops: BatchOp[], deletedSizes?: number[]): Promise<void> {
    ops.forEach((op, i) => this.account(op, deletedSizes?.[i]));
    this.inflight.add(ops);
    // a chained batch: several times faster than db.batch(array) for many small ops
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    try {
      await batch.write({ sync: false });
    } finally {
      this.inflight.delete(ops);
    }
    this.maybeRefreshSize();
  }

  private account(op: BatchOp, deletedSize: number | undefined): void {
    if (op.key[0] === Bucket.key) {
      // sizes count etcd's revision key, as an export writes it
      const kl = 1 + revisionKeyLength(op.key.length);
      if (op.type === 'put') {
        const size = entrySize(kl, op.value.length);
        this.issuedBytes += size;
        this.keyBucket.put(kl, size);
      } else {
        this.issuedBytes -= entrySize(kl, deletedSize ?? 0);
        if (deletedSize !== undefined) this.keyBucket.delete(entrySize(kl, deletedSize));
      }
      return;
    }
    const k = op.key.toString('latin1');
    this.issuedBytes -= this.otherSizes.get(k) ?? 0;
    if (op.type === 'put') {
      const size = entrySize(op.key.length, op.value.length);
      this.otherSizes.set(k, size);
      this.issuedBytes += size;
    } else {
      this.otherSizes.delete(k);
    }
  }

  /** A staged or in-flight put record, not necessarily readable from LevelDB yet. */
  private unflushedRevision(main: number, sub: number): Buffer | undefined {
    return this.pendingRevs.find(main, sub) ?? this.flushingRevs.find(main, sub);
  }

  /** Reads one put record, staged or stored. Synchronous (used inside atomic txns). */
  getRevisionSync(main: number, sub: number): Buffer | undefined {
    return this.unflushedRevision(main, sub) ?? this.db.getSync(revisionDbKey(main, sub, false));
  }

  async getRevisions(revs: ReadonlyArray<{ main: number; sub: number }>): Promise<Array<Buffer | undefined>> {
    const out: Array<Buffer | undefined> = new Array(revs.length);
    const missing: Buffer[] = [];
    const at: number[] = [];
    revs.forEach((r, i) => {
      const v = this.unflushedRevision(r.main, r.sub);
      if (v) out[i] = v;
      else {
        missing.push(revisionDbKey(r.main, r.sub, false));
        at.push(i);
      }
    });
    if (missing.length > 0) {
      const got = await this.db.getMany(missing);
      got.forEach((v, j) => (out[at[j]!] = v));
    }
    return out;
  }

  /**
   * Everything written so far (staged ops excluded), frozen now: a LevelDB snapshot
   * with the in-flight batches laid over it, so whether they have landed does not matter.
   */
  view(): View {
    const frozen = this.freeze();
    return {
      bytes: this.issuedBytes,
      entries: async function* () {
        try {
          for await (const batch of frozen.entries(Buffer.of(0x00), undefined)) yield* batch;
        } finally {
          await frozen.snapshot.close();
        }
      },
    };
  }

  /**
   * Everything written so far, as view() freezes it, read bucket by bucket. `reader` (one
   * of this store's, addReader) takes its snapshot at the same moment, so that
   * bucketViewOf(its snapshot, view.point) reads what the view reads.
   */
  bucketView(reader?: StoreReader): BucketView {
    if (reader !== undefined && !this.readers.has(reader)) throw new Error('the reader belongs to a store that is closed');
    const snapshot = this.db.snapshot();
    const point: FrozenPoint = { overlay: this.inflightRecords(), sizes: [...this.bucketSizes()] };
    try {
      reader?.takeSnapshot();
    } catch (err) {
      void snapshot.close();
      throw err;
    }
    return bucketViewOf(this.db, snapshot, point);
  }

  /**
   * Registers `reader` until it closes (removeReader); returns the location it opens,
   * with classic-level's `multithreading` option.
   */
  addReader(reader: StoreReader): string {
    if (this.closed) throw new Error('the store is closed');
    this.readers.add(reader);
    return this.dir;
  }

  removeReader(reader: StoreReader): void {
    this.readers.delete(reader);
  }

  /** Every bucket's size now, by prefix byte: the issued writes, as freeze() sees them. */
  private bucketSizes(): Map<number, BucketSize> {
    const out = new Map<number, { records: number; dataBytes: number; maxPairBytes: number; maxKeyBytes: number }>();
    const k = this.keyBucket;
    out.set(Bucket.key, {
      records: k.records,
      dataBytes: k.bytes - ENTRY_OVERHEAD * k.records,
      maxPairBytes: Math.max(0, k.maxEntry - ENTRY_OVERHEAD),
      maxKeyBytes: Math.max(0, k.maxKey - 1),
    });
    for (const [key, size] of this.otherSizes) {
      const prefix = key.charCodeAt(0);
      let s = out.get(prefix);
      if (s === undefined) out.set(prefix, (s = { records: 0, dataBytes: 0, maxPairBytes: 0, maxKeyBytes: 0 }));
      s.records++;
      s.dataBytes += size - ENTRY_OVERHEAD;
      s.maxPairBytes = Math.max(s.maxPairBytes, size - ENTRY_OVERHEAD);
      s.maxKeyBytes = Math.max(s.maxKeyBytes, key.length - 1);
    }
    return out;
  }

  /** The records of the batches in flight, the last write of a key winning. */
  private inflightRecords(): Array<[string, Buffer | null]> {
    const overlay = new Map<string, Buffer | null>();
    for (const ops of this.inflight) {
      for (const op of ops) overlay.set(op.key.toString('latin1'), op.type === 'put' ? op.value : null);
    }
    return [...overlay];
  }

  private freeze(): {
    snapshot: Snapshot;
    entries(gte: Buffer, lt: Buffer | undefined): AsyncGenerator<Array<[Buffer, Buffer]>>;
  } {
    const snapshot = this.db.snapshot();
    const overlay = new Map(this.inflightRecords());
    const db = this.db;
    return { snapshot, entries: (gte, lt) => mergeOverlay(db, snapshot, overlay, gte, lt, BUFFER_KEYS) };
  }

  /** Bytes on disk (cached; refreshed at most once a second after writes). */
  get size(): number {
    return this.sizeOnDisk;
  }

  private maybeRefreshSize(): void {
    if (this.sizeRefreshing || Date.now() - this.sizeRefreshedAt < SIZE_REFRESH_MS) return;
    this.refreshSize().catch(() => {});
  }

  async refreshSize(): Promise<number> {
    this.sizeRefreshing = true;
    try {
      let total = 0;
      for (const name of await readdir(this.dir)) {
        try {
          total += (await stat(join(this.dir, name))).size;
        } catch {
          // a file LevelDB removed while we listed the directory
        }
      }
      this.sizeOnDisk = total;
      this.sizeRefreshedAt = Date.now();
      return total;
    } finally {
      this.sizeRefreshing = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      await Promise.all([...this.readers].map((r) => r.close()));
      await this.db.close();
    } finally {
      OPEN_LOCATIONS.delete(resolve(this.dir));
    }
  }
}

type Snapshot = ReturnType<Db['snapshot']>;

const EMPTY_BUCKET: BucketSize = { records: 0, dataBytes: 0, maxPairBytes: 0, maxKeyBytes: 0 };

/**
 * The view of `db` that `snapshot` with `point` laid over it holds (Backend.bucketView);
 * closing it releases the snapshot. In another thread: `point` as it arrived there.
 */
export function bucketViewOf(db: Db, snapshot: Snapshot, point: FrozenPoint): BucketView {
  const overlay = new Map<string, Buffer | null>(point.overlay.map(([k, v]) => [k, v === null ? null : asBuffer(v)]));
  const sizes = new Map(point.sizes);
  return {
    point,
    size: (name) => sizes.get(Bucket[name]) ?? EMPTY_BUCKET,
    bucket: async function* (name) {
      const prefix = Bucket[name];
      for await (const batch of mergeOverlay(db, snapshot, overlay, Buffer.of(prefix), Buffer.of(prefix + 1), BUFFER_KEYS)) {
        yield batch.map(([k, v]) => [name === 'key' ? revisionKeyOf(k) : k.subarray(1), v] as const);
      }
    },
    revisionRecords: () => mergeOverlay(db, snapshot, overlay, Buffer.of(Bucket.key), Buffer.of(Bucket.key + 1), STRING_KEYS),
    close: () => snapshot.close(),
  };
}

/**
 * Entries per LevelDB iterator read, and the bytes after which a read stops short of
 * them: classic-level's default of 16 KiB is some 50 etcd revisions of 256-byte values,
 * and each read is a trip through the thread pool.
 */
const ITERATOR_BATCH = 1000;
const ITERATOR_BATCH_BYTES = 1 << 20;

/** How a scan hands keys back: as Buffers, or (for keys of ASCII bytes) as strings. */
interface KeyForm<K> {
  readonly keyEncoding: 'buffer' | 'utf8';
  /** the key as the overlay's latin1 string, which compares as its bytes do */
  toLatin1(k: K): string;
  fromLatin1(s: string): K;
}

const BUFFER_KEYS: KeyForm<Buffer> = { keyEncoding: 'buffer', toLatin1: (k) => k.toString('latin1'), fromLatin1: (s) => Buffer.from(s, 'latin1') };
/** The `key` bucket's keys are ASCII (revision.ts): classic-level returns them as strings for a fraction of a Buffer's cost, the same as their latin1 strings. */
const STRING_KEYS: KeyForm<string> = { keyEncoding: 'utf8', toLatin1: (k) => k, fromLatin1: (s) => s };

/**
 * The snapshot's entries in [gte, lt) (lt undefined: to the end) with the overlay laid
 * over them, in the batches LevelDB reads (never empty), keys in `form`.
 */
async function* mergeOverlay<K extends Buffer | string>(
  db: Db,
  snapshot: Snapshot,
  overlay: Map<string, Buffer | null>,
  gte: Buffer,
  lt: Buffer | undefined,
  form: KeyForm<K>,
): AsyncGenerator<Array<[K, Buffer]>> {
  // latin1 strings compare as their bytes do
  const from = gte.toString('latin1');
  const to = lt?.toString('latin1');
  const extra = [...overlay.keys()].filter((k) => k >= from && (to === undefined || k < to)).sort();
  let x = 0;
  const range = lt === undefined ? { snapshot, gte } : { snapshot, gte, lt };
  // a one-off full scan: kept out of the block cache, whose blocks are the hot ones
  const it = (db as unknown as ClassicLevel<Buffer, Buffer>).iterator({
    ...range,
    keyEncoding: form.keyEncoding,
    valueEncoding: 'buffer',
    highWaterMarkBytes: ITERATOR_BATCH_BYTES,
    fillCache: false,
  });
  let next = it.nextv(ITERATOR_BATCH);
  try {
    for (;;) {
      const batch = (await next) as unknown as Array<[K, Buffer]>;
      if (batch.length === 0) break;
      // LevelDB reads the next batch on its thread while this one is consumed
      next = it.nextv(ITERATOR_BATCH);
      if (x === extra.length) {
        yield batch;
        continue;
      }
      const merged: Array<[K, Buffer]> = [];
      for (const [k, v] of batch) {
        const ks = form.toLatin1(k);
        while (x < extra.length && extra[x]! < ks) {
          const ov = overlay.get(extra[x]!)!;
          if (ov) merged.push([form.fromLatin1(extra[x]!), ov]);
          x++;
        }
        if (x < extra.length && extra[x] === ks) {
          const ov = overlay.get(ks)!;
          if (ov) merged.push([k, ov]);
          x++;
        } else {
          merged.push([k, v]);
        }
      }
      if (merged.length > 0) yield merged;
    }
    const rest: Array<[K, Buffer]> = [];
    for (; x < extra.length; x++) {
      const ov = overlay.get(extra[x]!)!;
      if (ov) rest.push([form.fromLatin1(extra[x]!), ov]);
    }
    if (rest.length > 0) yield rest;
  } finally {
    await next.catch(() => undefined);
    await it.close();
  }
}
