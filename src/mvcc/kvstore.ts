// MvccStore: etcd's mvcc store (kvstore.go + the applier's KV parts) over LevelDB.
//
// The key index (TreeIndex of KeyIndex) lives in memory and holds revisions only;
// values are read from LevelDB by revision, the latest ones of hot keys from a
// byte-bounded ValueCache, so memory does not grow with the bytes stored. Writes and
// txns are synchronous (LevelDB's getSync, staged records served from the backend's
// pending batch). A write mutates memory synchronously and stages its records in
// the backend batch, which commit() writes as ONE LevelDB batch together with the
// consistent index. Watchers are notified once the batch is in LevelDB, so history
// reads by catching-up watchers always find what synced watchers were sent.

import type { Logger } from 'pino';
import { Backend, Bucket, type BucketView, MetaKey, type StoreReader } from './backend.js';
import { decodeKeyValue, encodeKeyValue, keyViewOf, valueViewOf } from './codec.js';
import { applyCompare } from './compare.js';
import { MvccError } from './errors.js';
import type { KeyIndex } from './key-index.js';
import { finishRange, isSliceable, readLimit } from './range.js';
import { readUint64BE, revisionBytes, revisionDbKeyFloor, revisionOfDbKey, writeUint64BE } from './revision.js';
import { MvccStats } from './stats.js';
import { type TreeIndex, inRange, toRangeBounds, type RangeEnd } from './tree-index.js';
import {
  DEFAULT_MAX_TXN_OPS,
  checkDeleteRangeRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  isTxnReadonly,
} from './txn-check.js';
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './types.js';
import { WatchableStore, type HistorySource, type WatchSink, type WatchStream } from './watchable-store.js';
import { type RestoredState, restoreFromStore } from './restore.js';
import { saveIndexImage, takeIndexImage } from './index-image.js';
import { nativeHeapTrimmer } from '../pkg/native-heap.js';
import { Compaction, type CompactionTuning, DEFAULT_COMPACTION_BATCH_LIMIT } from './compaction.js';
import { hashAll, hashKV } from './hash.js';
import { migrateRevisionKeys } from './migrate-keys.js';
import { RecentHistory } from './history.js';
import { DEFAULT_VALUE_CACHE_BYTES, ValueCache } from './value-cache.js';

/** The buckets etcd keeps its auth store in. */
export type AuthBucket = 'auth' | 'authUsers' | 'authRoles';

const EMPTY = Buffer.alloc(0);
const TOMBSTONE_KV: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n };

export interface MvccStoreOptions {
  dir: string;
  /** --max-txn-ops (default 128) */
  maxTxnOps?: number;
  logger?: Logger;
  /** bytes of latest values kept in memory for reads (default DEFAULT_VALUE_CACHE_BYTES; 0 = none) */
  valueCacheBytes?: number;
  /**
   * The store this one replaces (closed already): its watch streams move here and
   * catch up from this store's history; its stats and compaction tuning carry on here.
   */
  replacing?: MvccStore;
  /** batch size and timing observers of compactions; etcd's default batch when absent (and nothing replaced) */
  compaction?: CompactionTuning;
  /**
   * The state buildStore restored while it wrote the store now at `dir` (moved there
   * since, perhaps), handed over by the caller that built it and opened by nothing
   * since: the open takes it instead of reading every record back.
   */
  restored?: RestoredState;
}

/**
 * Keys of the index walked per slice of a sliced range: a few milliseconds of work, so
 * pings, other clients and raft ticks wait no longer than that while a range of millions
 * of keys is read.
 */
const SLICE_KEYS = 4096;

/** Where a sliced range hands its kvs, a slice at a time, in key order. */
export interface RangeSink {
  add(kvs: readonly KeyValue[]): void;
  /** the range starts again (a compaction passed the revision it read at): forget what was added */
  reset(): void;
}

/** A sliced range's answer besides its kvs. */
export interface SlicedRangeResult {
  revision: number;
  count: number;
  more: boolean;
}

/** A key and the revision of it a read found in the index. */
interface IndexHit {
  ki: KeyIndex;
  main: number;
  sub: number;
  createRevision: number;
  version: number;
}

/** The writes of one apply-level operation: one main revision, sub-revisions per change. */
class WriteTxn {
  changes = 0;
  /**
   * Each touched key as it was before the txn, for txns of several ops: an event's
   * prevKv is the key at rev-1, even when an earlier op of the txn changed it.
   */
  private readonly before: Map<string, KeyValue | undefined> | undefined;

  constructor(
    readonly beginRev: number,
    multiOp: boolean,
  ) {
    this.before = multiOp ? new Map() : undefined;
  }

  /** The key's state before this txn, given its state before the current op. */
  prevForEvent(key: string, current: KeyValue | undefined): KeyValue | undefined {
    if (!this.before) return current;
    if (!this.before.has(key)) this.before.set(key, current);
    return this.before.get(key);
  }
  get rev(): number {
    return this.beginRev + 1;
  }
  /** reads inside a write txn see its own earlier writes */
  get readRev(): number {
    return this.changes > 0 ? this.beginRev + 1 : this.beginRev;
  }
}

export class MvccStore {
  /** operation counts for metrics (shared with the store this one replaced) */
  readonly stats: MvccStats;
  private readonly compactionTuning: CompactionTuning;
  private currentRev: number;
  private compactMainRev: number;
  private appliedIndex: number;
  private storedIndex: number;
  /** revision watchers have been told about (published) */
  private notifiedRev: number;
  /** revision as of the last issued commit (what a backend view holds) */
  private committedRev: number;
  /** revision whose batch has landed in LevelDB (what its iterators see) */
  private landedRev: number;
  private pendingEvents: Event[] = [];
  private commitWaiters: Array<() => void> = [];
  /** the LevelDB write in flight (settles, never rejects; failures land in writeError) */
  private writing: Promise<void> = Promise.resolve();
  private writeError: unknown = undefined;
  /** open: serving; sealed: written out, taking no more writes (a last export may still read it); closed: LevelDB closed */
  private phase: 'open' | 'sealed' | 'closed' = 'open';
  /** the sealing, once begun: close() and abandon() finish it first */
  private sealing: Promise<void> | undefined;
  private readonly logger: Logger | undefined;
  private readonly watchable: WatchableStore;
  private readonly historySource: HistorySource;
  private readonly compaction: Compaction;
  private readonly maxTxnOps: number;
  private readonly values: ValueCache;

  private constructor(
    private readonly backend: Backend,
    private readonly index: TreeIndex,
    state: { currentRev: number; compactRev: number; consistentIndex: number },
    opts: MvccStoreOptions,
  ) {
    this.currentRev = state.currentRev;
    this.compactMainRev = state.compactRev;
    this.appliedIndex = this.storedIndex = state.consistentIndex;
    this.notifiedRev = this.committedRev = this.landedRev = state.currentRev;
    this.maxTxnOps = opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.values = new ValueCache(opts.valueCacheBytes ?? DEFAULT_VALUE_CACHE_BYTES);
    this.logger = opts.logger;
    this.historySource = {
      currentRevision: () => this.currentRev,
      compactRevision: () => this.compactMainRev,
      notifiedRevision: () => this.notifiedRev,
      landedRevision: () => this.landedRev,
      readHistory: (from, to, max) => this.readHistory(from, to, max),
      kvAt: (key, rev) => this.kvAt(key, rev),
      history: new RecentHistory(state.currentRev + 1),
    };
    this.watchable = opts.replacing?.watchable ?? new WatchableStore();
    this.stats = opts.replacing?.stats ?? new MvccStats();
    let live = 0;
    index.forEach('', null, (ki) => void (ki.isLive() && live++));
    this.stats.keys = live;
    this.compactionTuning = opts.compaction ?? opts.replacing?.compactionTuning ?? { batchLimit: DEFAULT_COMPACTION_BATCH_LIMIT };
    this.compaction = new Compaction(backend, index, opts.logger, this.stats, this.compactionTuning);
  }

  static async open(opts: MvccStoreOptions): Promise<MvccStore> {
    const backend = await Backend.open(opts.dir);
    try {
      const migrating = performance.now();
      const migrated = await migrateRevisionKeys(backend.db);
      if (migrated > 0) opts.logger?.info({ records: migrated, took: `${Math.round(performance.now() - migrating)}ms` }, "rewrote the revision records' keys as hex digits");
      const ci = backend.getMetaSync(MetaKey.consistentIndex);
      const scheduled = readRevMeta(backend.getMetaSync(MetaKey.scheduledCompactRev));
      const finished = readRevMeta(backend.getMetaSync(MetaKey.finishedCompactRev));
      const started = performance.now();
      const { restored, from, imageUnused } = await restoreState(backend, opts);
      const { index, currentRev, storedBytes, otherSizes } = restored;
      backend.setStoredSizes(storedBytes, otherSizes, restored.keyBucket);
      const compactRev = scheduled ?? -1;
      const store = new MvccStore(
        backend,
        index,
        {
          currentRev: Math.max(currentRev, compactRev, 1),
          compactRev,
          consistentIndex: ci && ci.length === 8 ? readUint64BE(ci, 0) ?? 0 : 0,
        },
        opts,
      );
      if (scheduled !== undefined) {
        store.compaction.compactIndex(scheduled);
        // an interrupted physical compaction resumes; its meta is already durable
        if (finished !== scheduled) void store.compaction.schedule(scheduled, Promise.resolve()).catch(() => {});
      }
      opts.logger?.info(
        {
          'current-revision': store.currentRev,
          'compact-revision': compactRev,
          keys: index.size,
          // "build": the state its builder restored; "image": the key index its last clean close wrote; "records": every record read
          'restored-from': from,
          ...(imageUnused === undefined ? {} : { 'index-image-unused': imageUnused }),
          took: `${Math.round(performance.now() - started)}ms`,
        },
        'restored mvcc store',
      );
      store.watchable.attach(store.historySource);
      return store;
    } catch (e) {
      await backend.close();
      throw e;
    }
  }

  /** Latest applied revision (1 for an empty store). */
  get currentRevision(): number {
    return this.currentRev;
  }
  /** Latest compaction revision, -1 if the store was never compacted (as etcd reports it). */
  get compactRevision(): number {
    return this.compactMainRev;
  }
  /** Raft index of the last applied entry (what the next commit() makes durable). */
  get consistentIndex(): number {
    return this.appliedIndex;
  }

  // ---- reads ----

  async range(req: RangeRequest): Promise<RangeResponse> {
    this.checkOpen();
    checkRangeRequest(req);
    this.stats.ranges++;
    for (;;) {
      const curRev = this.currentRev;
      if ((!req.rangeEnd || req.rangeEnd.length === 0) && !req.revision && !req.countOnly) {
        // the common Get of a key's latest value: one index lookup, the request's key reused
        const ki = this.index.get(req.key.toString('latin1'));
        const kvs = ki?.isLive() ? [this.latestKv(ki, needsValues(req), req.key)] : [];
        return finishRange(req, kvs, kvs.length, curRev);
      }
      const { count, hits, atRev } = this.collect(req, curRev);
      if (req.countOnly) return { revision: curRev, kvs: [], more: false, count };
      try {
        return finishRange(req, await this.materialize(hits, atRev, needsValues(req)), count, curRev);
      } catch (e) {
        // A read at the current revision found a value gone: the key was overwritten and
        // compacted past while LevelDB was read. Reading again at the new current revision
        // is as linearizable (etcd would have held a read transaction open instead).
        if (!req.revision && e instanceof MvccError && e.code === 'compacted') continue;
        throw e;
      }
    }
  }

  /**
   * A range read a slice of keys at a time (see isSliceable for which ones), each
   * slice's kvs handed to `sink`, the event loop served between slices: a range over
   * millions of keys neither holds the loop for seconds (a client's keepalive PINGs go
   * unanswered, raft stops ticking) nor builds every KeyValue at once. The store may
   * move on between slices; every slice reads at the revision the range started at, and
   * a compaction past it starts a read at the current revision again (`sink.reset()`),
   * as range() does, or fails a read at a requested revision with 'compacted'.
   */
  async rangeInSlices(req: RangeRequest, sink: RangeSink): Promise<SlicedRangeResult> {
    this.checkOpen();
    checkRangeRequest(req);
    if (!isSliceable(req)) throw new Error('mvcc: this range sorts or filters and cannot be read in slices');
    this.stats.ranges++;
    for (;;) {
      try {
        return await this.readSlices(req, this.currentRev, sink);
      } catch (e) {
        if (!req.revision && e instanceof MvccError && e.code === 'compacted') {
          sink.reset();
          continue;
        }
        throw e;
      }
    }
  }

  private async readSlices(req: RangeRequest, curRev: number, sink: RangeSink): Promise<SlicedRangeResult> {
    const requested = req.revision ?? 0;
    if (requested > curRev) throw new MvccError('future-rev');
    const atRev = requested > 0 ? requested : curRev;
    if (atRev < this.compactMainRev) throw new MvccError('compacted');
    const { from, to } = toRangeBounds(req.key, req.rangeEnd);
    const limit = req.countOnly ? 0 : req.limit && req.limit > 0 ? req.limit : Infinity;
    const withValues = needsValues(req);
    let count = 0;
    let taken = 0;
    let start: string | undefined = from;
    for (;;) {
      const hits: IndexHit[] = [];
      start = this.indexSlice(start, to, (ki) => {
        const hit = visibleAt(ki, atRev);
        if (!hit) return;
        count++;
        if (taken < limit) {
          hits.push(hit);
          taken++;
        }
      });
      if (hits.length > 0) {
        const kvs = await this.materialize(hits, atRev, withValues);
        // an older revision's record comes with its value
        sink.add(req.keysOnly ? kvs.map((kv) => (kv.value.length === 0 ? kv : { ...kv, value: EMPTY })) : kvs);
      }
      if (start === undefined) break;
      await new Promise((resolve) => setImmediate(resolve));
      this.checkOpen();
      // a key of the slices to come may have lost the revision visible at atRev
      if (atRev < this.compactMainRev) throw new MvccError('compacted');
    }
    return { revision: curRev, count, more: !req.countOnly && count > limit };
  }

  /** Calls fn for up to SLICE_KEYS keys of [from, to), in key order; returns the key the next slice starts at, if any. */
  private indexSlice(from: string, to: RangeEnd, fn: (ki: KeyIndex) => void): string | undefined {
    let walked = 0;
    const rest: { from?: string } = {};
    this.index.forEach(from, to, (ki) => {
      if (walked++ === SLICE_KEYS) {
        rest.from = ki.key;
        return false;
      }
      fn(ki);
      return true;
    });
    return rest.from;
  }

  /** The index part of a range: which revision of each key is visible at the requested revision. */
  private collect(req: RangeRequest, curRev: number): { count: number; hits: IndexHit[]; atRev: number } {
    const requested = req.revision ?? 0;
    if (requested > curRev) throw new MvccError('future-rev');
    const atRev = requested > 0 ? requested : curRev;
    if (atRev < this.compactMainRev) throw new MvccError('compacted');
    if (!req.rangeEnd || req.rangeEnd.length === 0) {
      // a single key (the common Get): no range walk
      const ki = this.index.get(req.key.toString('latin1'));
      const hit = ki && visibleAt(ki, atRev);
      return hit ? { count: 1, hits: req.countOnly ? [] : [hit], atRev } : { count: 0, hits: [], atRev };
    }
    const { from, to } = toRangeBounds(req.key, req.rangeEnd);
    const limit = req.countOnly ? -1 : readLimit(req);
    const hits: IndexHit[] = [];
    let count = 0;
    this.index.forEach(from, to, (ki) => {
      const hit = visibleAt(ki, atRev);
      if (!hit) return;
      count++;
      if (limit === 0 || hits.length < limit) hits.push(hit);
    });
    return { count, hits, atRev };
  }

  /**
   * Turns index hits into KeyValues: cached latest values from memory, everything else
   * with one LevelDB read of all the missing revisions (values left empty unless `withValues`).
   */
  private async materialize(hits: IndexHit[], atRev: number, withValues: boolean): Promise<KeyValue[]> {
    const kvs: KeyValue[] = new Array(hits.length);
    const missing: number[] = [];
    for (let i = 0; i < hits.length; i++) {
      const v = this.knownValue(hits[i]!, withValues);
      if (v) kvs[i] = indexedKv(hits[i]!, v);
      else missing.push(i);
    }
    if (missing.length === 0) return kvs;
    const records = await this.backend.getRevisions(missing.map((i) => hits[i]!));
    missing.forEach((i, j) => {
      const h = hits[i]!;
      const record = records[j];
      if (!record) {
        // a compaction past atRev, while we read, removed it
        if (atRev < this.compactMainRev) throw new MvccError('compacted');
        throw missingRevision(h);
      }
      const kv = decodeKeyValue(record);
      // only still-latest values go into the cache: the key may have moved on meanwhile
      if (isLatest(h)) this.values.set(h.ki, h.main, h.sub, kv.value);
      kvs[i] = kv;
    });
    return kvs;
  }

  private materializeSync(hits: IndexHit[], withValues: boolean): KeyValue[] {
    return hits.map((h) => {
      const v = this.knownValue(h, withValues);
      if (v) return indexedKv(h, v);
      const record = this.backend.getRevisionSync(h.main, h.sub);
      if (!record) throw new MvccError('compacted');
      const kv = decodeKeyValue(record);
      if (isLatest(h)) this.values.set(h.ki, h.main, h.sub, kv.value);
      return kv;
    });
  }

  /**
   * A latest hit's value without LevelDB: cached, or not wanted (EMPTY). An older hit
   * always needs its record, which alone has the lease it had then.
   */
  private knownValue(h: IndexHit, withValue: boolean): Buffer | undefined {
    if (!isLatest(h)) return undefined;
    return withValue ? this.values.get(h.ki, h.main, h.sub) : EMPTY;
  }

  private rangeSync(req: RangeRequest, readRev: number): RangeResponse {
    const { count, hits } = this.collect(req, readRev);
    if (req.countOnly) return { revision: readRev, kvs: [], more: false, count };
    return finishRange(req, this.materializeSync(hits, needsValues(req)), count, readRev);
  }

  /** Live kvs in [from, to) right now (compares, prev_kv, ignore_*); values only if asked for. */
  private liveKvs(from: string, to: RangeEnd, withValues: boolean): KeyValue[] {
    const out: KeyValue[] = [];
    this.index.forEach(from, to, (ki) => {
      if (ki.isLive()) out.push(this.latestKv(ki, withValues));
    });
    return out;
  }

  /**
   * The live KeyValue of a key, read synchronously (the cache, else one LevelDB get);
   * `key` may pass the key's bytes when the caller has them.
   */
  private latestKv(ki: KeyIndex, withValue: boolean, key: Buffer = Buffer.from(ki.key, 'latin1')): KeyValue {
    const main = ki.modRevision;
    const sub = ki.modSub;
    let value: Buffer = EMPTY;
    if (withValue) {
      const cached = this.values.get(ki, main, sub);
      if (cached) value = cached;
      else {
        const record = this.backend.getRevisionSync(main, sub);
        if (!record) throw missingRevision({ main, sub });
        value = decodeKeyValue(record).value;
        this.values.set(ki, main, sub, value);
      }
    }
    return { key, createRevision: ki.createRevision, modRevision: main, version: ki.version, value, lease: ki.lease };
  }

  // ---- writes (apply path: called one at a time, in raft order) ----

  async put(req: PutRequest, index: number): Promise<PutResponse> {
    return this.putSync(req, index);
  }

  /** put() without its promise: the applier's path for the writes that need nothing async. */
  putSync(req: PutRequest, index: number): PutResponse {
    this.checkOpen();
    try {
      checkPutRequest(req);
      const keyStr = req.key.toString('latin1');
      const ki = this.index.get(keyStr);
      if ((req.ignoreValue || req.ignoreLease) && !ki?.isLive()) throw new MvccError('key-not-found');
      const tw = new WriteTxn(this.currentRev, false);
      const resp = this.applyPut(tw, req, keyStr, ki);
      this.endWrite(tw);
      return resp;
    } finally {
      this.setConsistentIndex(index);
    }
  }

  async deleteRange(req: DeleteRangeRequest, index: number): Promise<DeleteRangeResponse> {
    this.checkOpen();
    try {
      checkDeleteRangeRequest(req);
      const tw = new WriteTxn(this.currentRev, false);
      const r = this.applyDeleteRange(tw, req);
      this.endWrite(tw);
      return r;
    } finally {
      this.setConsistentIndex(index);
    }
  }

  async txn(req: TxnRequest, index: number): Promise<TxnResponse> {
    this.checkOpen();
    try {
      checkTxnRequest(req, this.maxTxnOps);
      // compares of every txn on the taken path see the state before the txn; each is a
      // range to etcd's metrics, counted in the read txn that evaluates them
      const readonly = isTxnReadonly(req);
      const comparesBefore = this.stats.ranges;
      const path = this.decide(req);
      const compares = this.stats.ranges - comparesBefore;
      if (!readonly) this.checkPuts(path);
      this.checkPath(path, (op) => this.checkRange(op));
      const tw = new WriteTxn(this.currentRev, true);
      const opsBefore = this.stats.ranges + this.stats.puts + this.stats.deletes;
      const resp = this.applyTxn(tw, path);
      const ops = this.stats.ranges + this.stats.puts + this.stats.deletes - opsBefore;
      // etcd counts a txn per mvcc transaction of more than one operation: a read-only
      // txn is one (compares and ops); a writing one ends the compares' read txn first
      if (readonly) {
        if (compares + ops > 1) this.stats.txns++;
      } else {
        if (compares > 1) this.stats.txns++;
        if (ops > 1) this.stats.txns++;
      }
      this.endWrite(tw);
      resp.revision = tw.changes > 0 ? tw.rev : tw.beginRev;
      return resp;
    } finally {
      this.setConsistentIndex(index);
    }
  }

  /** Records the raft index of an applied entry that changed no key. */
  setConsistentIndex(index: number): void {
    if (index > this.appliedIndex) this.appliedIndex = index;
  }

  /**
   * Tells watchers about everything applied since the last call. Cheap: the server calls
   * it after every apply batch, while LevelDB writes (commit) can be spaced out.
   */
  publish(): void {
    const events = this.pendingEvents;
    this.pendingEvents = [];
    if (this.currentRev <= this.notifiedRev) return;
    this.notifiedRev = this.currentRev;
    if (events.length > 0) this.watchable.notify(this.historySource, events, this.currentRev);
  }

  /**
   * Issues everything applied since the last commit as ONE LevelDB batch, with the
   * consistent index (publishing it to watchers first). Resolves once the write is on its
   * way: one write is in flight at a time, so this first waits for the previous one, and
   * the caller's next apply batch overlaps this write. Reads never wait for it (staged
   * records are served from memory). flushed() waits for the write to land.
   * A failed LevelDB write is fatal: it is logged and rethrown by every later call.
   */
  async commit(): Promise<void> {
    this.checkOpen();
    this.publish();
    await this.writing;
    this.checkWriteError();
    const rev = this.currentRev;
    this.committedRev = rev;
    this.writing = this.flush().then(
      () => {
        this.landedRev = rev;
        this.watchable.landed(this.historySource);
      },
      (e: unknown) => {
        // LevelDB names the file it failed on; name the store too, for the errors that do not
        const reason = e instanceof Error ? e.message : String(e);
        this.writeError = new Error(`failed to commit the apply batch to ${this.backend.dir}: ${reason}`, { cause: e });
        this.logger?.error({ path: this.backend.dir, error: reason }, 'failed to write the apply batch to the backend');
      },
    );
  }

  /** Resolves when every committed batch is in LevelDB and its watchers were notified. */
  async flushed(): Promise<void> {
    await this.writing;
    this.checkWriteError();
  }

  private checkWriteError(): void {
    if (this.writeError !== undefined) throw this.writeError;
  }

  private async flush(): Promise<void> {
    if (this.appliedIndex !== this.storedIndex) {
      const b = Buffer.allocUnsafe(8);
      writeUint64BE(b, 0, this.appliedIndex);
      this.backend.putMeta(MetaKey.consistentIndex, b);
      this.storedIndex = this.appliedIndex;
    }
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    try {
      await this.backend.flush();
    } finally {
      for (const w of waiters) w();
    }
  }

  private releaseCommitWaiters(): void {
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    for (const w of waiters) w();
  }

  /** Settles once the next commit's batch is in LevelDB (compaction jobs and HashKV wait for their data). */
  private nextCommit(): Promise<void> {
    return new Promise((resolve) => this.commitWaiters.push(resolve));
  }

  private endWrite(tw: WriteTxn): void {
    if (tw.changes > 0) this.currentRev = tw.rev;
  }

  /** `ki` is the key's index entry if it has one (the caller looked it up already). */
  private applyPut(tw: WriteTxn, req: PutRequest, keyStr: string, found: KeyIndex | undefined): PutResponse {
    const prevKv = found?.isLive() ? this.latestKv(found, true, req.key) : undefined;
    const value = req.ignoreValue ? prevKv!.value : req.value;
    const lease = req.ignoreLease ? prevKv!.lease : req.lease;
    const main = tw.rev;
    const sub = tw.changes++;
    const ki = found ?? this.index.insert(keyStr);
    this.stats.puts++;
    this.stats.putBytes += req.key.length + value.length;
    if (prevKv === undefined) this.stats.keys++;
    const kv: KeyValue = {
      key: req.key,
      createRevision: prevKv ? prevKv.createRevision : main,
      modRevision: main,
      version: prevKv ? prevKv.version + 1 : 1,
      value,
      lease,
    };
    // the cache and the event keep the key and value as views into the record: one
    // allocation per write, and nothing of the request (a view into its raft entry)
    const record = encodeKeyValue(kv);
    const valueView = valueViewOf(record, kv);
    kv.key = keyViewOf(record, kv);
    ki.put(main, sub, lease);
    this.values.set(ki, main, sub, valueView);
    kv.value = valueView;
    if (prevKv) prevKv.key = kv.key;
    this.backend.putRevision(main, sub, false, record);
    const eventPrev = tw.prevForEvent(keyStr, prevKv);
    // a create has no prevKv (etcd skips the lookup for create events)
    this.pendingEvents.push(prevKv && eventPrev ? { type: 'put', kv, prevKv: eventPrev } : { type: 'put', kv });
    return req.prevKv && prevKv ? { revision: main, prevKv } : { revision: main };
  }

  private applyDeleteRange(tw: WriteTxn, req: DeleteRangeRequest): DeleteRangeResponse {
    const { from, to } = toRangeBounds(req.key, req.rangeEnd);
    const prevs = this.liveKvs(from, to, true);
    this.stats.deletes++;
    this.stats.keys -= prevs.length;
    if (prevs.length === 0) return { revision: tw.readRev, deleted: 0, prevKvs: [] };
    const main = tw.rev;
    for (const prevKv of prevs) {
      const sub = tw.changes++;
      const kv: KeyValue = { key: prevKv.key, createRevision: 0, modRevision: main, version: 0, value: EMPTY, lease: 0n };
      const keyStr = prevKv.key.toString('latin1');
      const ki = this.index.get(keyStr)!;
      ki.tombstone(main, sub);
      this.values.delete(ki);
      // a tombstone record holds the key alone; the event keeps a view into it, as a put's does
      const record = encodeKeyValue({ ...TOMBSTONE_KV, key: prevKv.key });
      kv.key = prevKv.key = keyViewOf(record, kv);
      this.backend.putRevision(main, sub, true, record);
      const eventPrev = tw.prevForEvent(keyStr, prevKv);
      this.pendingEvents.push(eventPrev ? { type: 'delete', kv, prevKv: eventPrev } : { type: 'delete', kv });
    }
    return { revision: main, deleted: prevs.length, prevKvs: req.prevKv ? prevs : [] };
  }

  // ---- txn ----

  private decide(req: TxnRequest): TxnPath {
    const succeeded = req.compare.every((c) => {
      this.stats.ranges++;
      const { from, to } = toRangeBounds(c.key, c.rangeEnd);
      return applyCompare(c, this.liveKvs(from, to, c.target === 'value'));
    });
    const ops = succeeded ? req.success : req.failure;
    const nested = new Map<number, TxnPath>();
    ops.forEach((op, i) => {
      if (op && 'txn' in op) nested.set(i, this.decide(op.txn));
    });
    return { succeeded, ops, nested };
  }

  private checkPath(path: TxnPath, check: (op: RequestOp) => void): void {
    path.ops.forEach((op, i) => {
      if (!op) return;
      if ('txn' in op) this.checkPath(path.nested.get(i)!, check);
      else check(op);
    });
  }

  /**
   * ignore_value/ignore_lease puts need their key to exist when they run. etcd checks
   * against the state before the txn, then panics if an earlier op of the txn deleted
   * the key (a from-key delete slips through the duplicate check). We follow the ops
   * in order instead and refuse such a txn before it changes anything.
   */
  private checkPuts(path: TxnPath): void {
    const overrides = new Map<string, boolean>();
    const live = (k: string) => overrides.get(k) ?? this.index.get(k)?.isLive() ?? false;
    this.checkPath(path, (op) => {
      if ('put' in op) {
        const k = op.put.key.toString('latin1');
        if ((op.put.ignoreValue || op.put.ignoreLease) && !live(k)) throw new MvccError('key-not-found');
        overrides.set(k, true);
      } else if ('deleteRange' in op) {
        const { from, to } = toRangeBounds(op.deleteRange.key, op.deleteRange.rangeEnd);
        const gone: string[] = [];
        this.index.forEach(from, to, (ki) => void gone.push(ki.key));
        for (const k of overrides.keys()) if (inRange(k, from, to)) gone.push(k);
        for (const k of gone) overrides.set(k, false);
      }
    });
  }

  private checkRange(op: RequestOp): void {
    if (!('range' in op)) return;
    const rev = op.range.revision ?? 0;
    if (rev === 0) return;
    if (rev > this.currentRev) throw new MvccError('future-rev');
    if (rev < this.compactMainRev) throw new MvccError('compacted');
  }

  private applyTxn(tw: WriteTxn, path: TxnPath): TxnResponse {
    const responses: ResponseOp[] = [];
    path.ops.forEach((op, i) => {
      if (!op) return;
      if ('range' in op) {
        this.stats.ranges++;
        responses.push({ range: this.rangeSync(op.range, tw.readRev) });
      }
      else if ('put' in op) {
        const keyStr = op.put.key.toString('latin1');
        responses.push({ put: this.applyPut(tw, op.put, keyStr, this.index.get(keyStr)) });
      } else if ('deleteRange' in op) responses.push({ deleteRange: this.applyDeleteRange(tw, op.deleteRange) });
      else responses.push({ txn: this.applyTxn(tw, path.nested.get(i)!) });
    });
    // nested txn responses carry an empty header in etcd; the caller sets the outer one
    return { revision: 0, succeeded: path.succeeded, responses };
  }

  // ---- compaction ----

  /**
   * Compacts history up to `rev`: reads below it fail from now on. The in-memory index
   * is compacted at once; `done` settles when the old revisions are gone from LevelDB.
   */
  async compact(rev: number, index: number): Promise<{ done: Promise<void> }> {
    this.checkOpen();
    try {
      if (rev <= this.compactMainRev) throw new MvccError('compacted');
      if (rev > this.currentRev) throw new MvccError('future-rev');
      this.compactMainRev = rev;
      this.backend.putMeta(MetaKey.scheduledCompactRev, revisionBytes(rev, 0));
      this.compaction.compactIndex(rev);
      const done = this.compaction.schedule(rev, this.nextCommit());
      done.catch(() => {}); // the caller may not wait for physical removal
      return { done };
    } finally {
      this.setConsistentIndex(index);
    }
  }

  // ---- leases ----

  putLeaseRecord(id: bigint, record: Buffer): void {
    this.backend.put('lease', leaseKey(id), record);
  }

  deleteLeaseRecord(id: bigint): void {
    this.backend.del('lease', leaseKey(id));
  }

  /**
   * Every live key that has a lease, with it, from the key index alone: no value is read,
   * so the lessor's attachments at start cost a pass over the index, not over the store.
   */
  forEachLeasedKey(fn: (lease: bigint, key: Buffer) => void): void {
    this.checkOpen();
    this.index.all((ki) => {
      if (ki.isLive() && ki.lease !== 0n) fn(ki.lease, Buffer.from(ki.key, 'latin1'));
    });
  }

  /** Stored lease records (call at startup, before applying anything). */
  async leaseRecords(): Promise<Array<[bigint, Buffer]>> {
    this.checkOpen();
    const out: Array<[bigint, Buffer]> = [];
    for await (const [k, v] of this.backend.db.iterator({ gte: Buffer.of(0x6c), lt: Buffer.of(0x6d) })) {
      if (k.length !== 9) continue;
      out.push([k.readBigInt64BE(1), v]);
    }
    return out;
  }

  // ---- auth records: opaque to the store, kept in its batches so snapshots carry them ----

  putAuthRecord(bucket: AuthBucket, key: Uint8Array, value: Buffer): void {
    this.backend.put(bucket, key, value);
  }

  deleteAuthRecord(bucket: AuthBucket, key: Uint8Array): void {
    this.backend.del(bucket, key);
  }

  /** Stored records of one auth bucket, in key order (call when opening, before applying anything). */
  async authRecords(bucket: AuthBucket): Promise<Array<[Buffer, Buffer]>> {
    this.checkOpen();
    const out: Array<[Buffer, Buffer]> = [];
    const prefix = Bucket[bucket];
    for await (const [k, v] of this.backend.db.iterator({ gte: Buffer.of(prefix), lt: Buffer.of(prefix + 1) })) {
      out.push([k.subarray(1), v]);
    }
    return out;
  }

  // ---- alarms: etcd's `alarm` bucket, one empty record per active alarm ----

  putAlarmRecord(key: Uint8Array): void {
    this.backend.put('alarm', key, EMPTY);
  }

  deleteAlarmRecord(key: Uint8Array): void {
    this.backend.del('alarm', key);
  }

  /** Keys of the stored alarm records (call when opening, before applying anything). */
  async alarmRecords(): Promise<Buffer[]> {
    this.checkOpen();
    const out: Buffer[] = [];
    for await (const k of this.backend.db.keys({ gte: Buffer.of(Bucket.alarm), lt: Buffer.of(Bucket.alarm + 1) })) out.push(k.subarray(1));
    return out;
  }

  // ---- integrity, size, maintenance ----

  /** CRC-32C of every stored record except the consistent index (etcd's Maintenance.Hash). */
  async hash(): Promise<{ hash: number; revision: number }> {
    this.checkOpen();
    const revision = this.committedRev;
    return { hash: await hashAll(this.backend.view()), revision };
  }

  /**
   * Settles once the physical compactions scheduled so far are done (or stopped by a
   * close). When no key is live at the hashed revision, HashKV (as etcd 3.4's HashByRev)
   * counts the old records a compaction has yet to delete, so members with the same
   * history agree on it only once their compactions are done: the simulator waits here.
   */
  compactionsDone(): Promise<void> {
    return this.compaction.idle();
  }

  /** etcd's HashByRev: same history (and compaction) as a real etcd gives the same hash. */
  async hashKV(rev: number): Promise<{ hash: number; compactRevision: number; revision: number }> {
    this.checkOpen();
    const compactRevision = this.compactMainRev;
    const revision = this.currentRev;
    if (rev > 0 && rev <= compactRevision) throw new MvccError('compacted');
    if (rev > 0 && rev > revision) throw new MvccError('future-rev');
    const atRev = rev === 0 ? revision : rev;
    // everything up to atRev must be readable from LevelDB: wait for the write in
    // flight, and for the next commit if atRev was applied but not committed yet
    await this.writing;
    while (atRev > this.landedRev) {
      await this.nextCommit();
      await this.writing;
      this.checkOpen();
    }
    this.checkOpen();
    const hash = await hashKV(this.backend.db, this.index, atRev, compactRevision);
    return { hash, compactRevision, revision };
  }

  /** Bytes LevelDB occupies on disk (cached, refreshed about once a second). */
  dbSize(): number {
    return this.backend.size;
  }

  /** The serialized size of the stored records: what an export of the store reads and writes, before bbolt's pages. */
  recordBytes(): number {
    return this.backend.logicalSize;
  }

  /** Approximate bytes of live records. */
  dbSizeInUse(): number {
    return Math.min(this.backend.logicalSize, this.backend.size);
  }

  /** Compacts LevelDB's files over the whole key space (etcd's defrag); logs sizes before and after. */
  async defragment(): Promise<void> {
    this.checkOpen();
    const before = await this.backend.refreshSize();
    await this.backend.db.compactRange(Buffer.of(0x00), Buffer.alloc(32, 0xff));
    const after = await this.backend.refreshSize();
    this.logger?.info({ 'size-before': before, 'size-after': after }, 'defragmented backend');
  }

  /**
   * Everything committed so far (call commit() first for what is applied), frozen now
   * and read bucket by bucket in etcd's layouts: for a backup in etcd's bbolt format.
   */
  bucketView(reader?: StoreReader): BucketView {
    this.checkReadable();
    return this.backend.bucketView(reader);
  }

  /** Registers another thread's reader of this store (Backend.addReader); returns the LevelDB location it opens. */
  addReader(reader: StoreReader): string {
    this.checkReadable();
    return this.backend.addReader(reader);
  }

  removeReader(reader: StoreReader): void {
    this.backend.removeReader(reader);
  }

  // ---- watch ----

  /**
   * A watch stream. Streams belong to the store and the stores that replace it; one
   * opened on a closed store is served once its successor opens.
   */
  newWatchStream(sink: WatchSink): WatchStream {
    return this.watchable.newStream(sink);
  }

  /** Open streams, live and unsynced (slow) watchers, events sent: for etcd's watch metrics. */
  watchStats(): { streams: number; watchers: number; slowWatchers: number; eventsSent: number } {
    const s = this.watchable.stats;
    return { streams: s.streams, watchers: s.watchers, slowWatchers: this.watchable.unsyncedWatchers, eventsSent: s.eventsSent };
  }

  /**
   * Writes what was applied but not committed and stops compaction; from then on the
   * store takes no writes, and only bucketView and addReader still read it, until
   * close(). With `saveIndex` (a member's clean stop) it then writes the key index out,
   * so the next open need not read every record (index-image.ts). A member's stop seals
   * before its last export of etcd's bbolt file, which at gigabytes takes a minute: a
   * SIGKILL meanwhile (a container runtime's stop timeout) still leaves the next start
   * its index.
   */
  seal(opts: { saveIndex?: boolean } = {}): Promise<void> {
    return (this.sealing ??= this.stopWriting(true, opts.saveIndex ?? false));
  }

  /**
   * Seals the store (unless it is already) and closes LevelDB. A store about to be
   * replaced or removed saves no index.
   */
  async close(opts: { saveIndex?: boolean } = {}): Promise<void> {
    await this.seal(opts);
    await this.closeBackend();
  }

  /**
   * Closes LevelDB as a crash leaves it: the batch on its way lands, what is staged and
   * not committed is dropped (the simulator's crashes; the WAL replays it at restart).
   */
  async abandon(): Promise<void> {
    await (this.sealing ??= this.stopWriting(false, false));
    await this.closeBackend();
  }

  private async stopWriting(writeStaged: boolean, saveIndex: boolean): Promise<void> {
    this.phase = 'sealed';
    this.watchable.detach(this.historySource);
    const stopped = this.compaction.stop();
    await this.writing;
    if (writeStaged && this.writeError === undefined) await this.flush();
    else this.releaseCommitWaiters();
    await stopped;
    if (saveIndex && writeStaged && this.writeError === undefined) await this.saveIndex();
  }

  private async closeBackend(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    await this.backend.close();
  }

  /** Every write has landed and none comes: the index, the revision and the sizes are the store's. */
  private async saveIndex(): Promise<void> {
    const started = performance.now();
    try {
      const source = { index: this.index, currentRev: this.currentRev, storedBytes: this.backend.logicalSize, otherSizes: this.backend.storedOtherSizes, keyBucket: this.backend.storedKeyBucket };
      await saveIndexImage(this.backend.db, this.backend.dir, source);
      this.logger?.info({ keys: this.index.size, took: `${Math.round(performance.now() - started)}ms` }, 'saved the key index for the next open');
    } catch (err) {
      // the token is written last: a failed save leaves the next open a rebuild, nothing worse
      this.logger?.warn({ error: err instanceof Error ? err.message : String(err) }, 'failed to save the key index; the next open reads every record');
    }
  }

  private checkOpen(): void {
    if (this.phase !== 'open') throw new Error('mvcc: store is closed');
  }

  /** What an export of a sealed store may still do. */
  private checkReadable(): void {
    if (this.phase === 'closed') throw new Error('mvcc: store is closed');
  }

  // ---- history for watchers ----

  /**
   * Events with revisions in [from, to] from LevelDB, about `max` at most but never
   * splitting a revision. `last` is the highest revision fully covered.
   */
  private async readHistory(from: number, to: number, max: number): Promise<{ events: Event[]; last: number }> {
    // Only what has landed: revisions still in a batch on its way are read on a later
    // pass (or from the recent history in memory), never skipped.
    to = Math.min(to, this.landedRev);
    const events: Event[] = [];
    if (to < from) return { events, last: from - 1 };
    const it = this.backend.db.iterator({
      gte: revisionDbKeyFloor(from),
      lt: revisionDbKeyFloor(to + 1),
    });
    let last = to;
    try {
      for await (const [k, v] of it) {
        const r = revisionOfDbKey(k);
        const rev = r.main;
        if (events.length >= max && rev !== events[events.length - 1]!.kv.modRevision) {
          last = rev - 1;
          break;
        }
        const kv = decodeKeyValue(v);
        if (r.tombstone) {
          events.push({ type: 'delete', kv: { ...kv, modRevision: rev } });
        } else {
          events.push({ type: 'put', kv });
        }
      }
    } finally {
      await it.close();
    }
    return { events, last };
  }

  /** The key as it was at `rev`, or undefined (absent, or compacted away). */
  private async kvAt(key: Buffer, rev: number): Promise<KeyValue | undefined> {
    if (rev < this.compactMainRev || rev <= 0) return undefined;
    const ki = this.index.get(key.toString('latin1'));
    if (!ki) return undefined;
    const hit = visibleAt(ki, rev);
    if (!hit) return undefined;
    const cached = this.knownValue(hit, true);
    if (cached) return indexedKv(hit, cached);
    const [v] = await this.backend.getRevisions([hit]);
    return v ? decodeKeyValue(v) : undefined;
  }
}

interface TxnPath {
  succeeded: boolean;
  ops: RequestOp[];
  /** decisions of the nested txns among `ops`, by position */
  nested: Map<number, TxnPath>;
}

function visibleAt(ki: KeyIndex, atRev: number): IndexHit | undefined {
  if (ki.isLive() && ki.modRevision <= atRev) {
    return { ki, main: ki.modRevision, sub: ki.modSub, createRevision: ki.createRevision, version: ki.version };
  }
  const r = ki.get(atRev);
  return r && { ki, ...r };
}

/** A hit on the key's live revision (its value may be cached). */
function isLatest(h: IndexHit): boolean {
  return h.ki.isLive() && h.main === h.ki.modRevision && h.sub === h.ki.modSub;
}

/** The KeyValue of a hit whose value is known (a latest one: its lease is the index's). */
function indexedKv(h: IndexHit, value: Buffer): KeyValue {
  return {
    key: Buffer.from(h.ki.key, 'latin1'),
    createRevision: h.createRevision,
    modRevision: h.main,
    version: h.version,
    value,
    lease: h.ki.lease,
  };
}

/** A range's values are read unless it returns keys only (and does not sort by value). */
function needsValues(req: RangeRequest): boolean {
  return !req.keysOnly || req.sortTarget === 'value';
}

function missingRevision(r: { main: number; sub: number }): Error {
  return new Error(`mvcc: revision ${r.main}_${r.sub} of an indexed key is missing from the backend`);
}

function leaseKey(id: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(id);
  return b;
}

/** The smallest store whose open from the records asks for a trim of the native heap. */
const TRIM_AFTER_RESTORE_BYTES = 1 << 20;

/** The state an open starts from: its builder's, the image its last clean close left, or every record read. */
async function restoreState(
  backend: Backend,
  opts: MvccStoreOptions,
): Promise<{ restored: RestoredState; from: 'build' | 'image' | 'records'; imageUnused?: string }> {
  // a store just built has no image, and nothing has read its records since
  if (opts.restored) return { restored: opts.restored, from: 'build' };
  const image = await takeIndexImage(backend.db, backend.dir);
  // the size on disk counted the image, now removed
  await backend.refreshSize();
  if (image.state) return { restored: image.state, from: 'image' };
  const restored = await restoreFromStore(backend.db);
  // the open read every record into short-lived buffers: give the memory they freed back
  // (not for a small store: a first start's empty one is not worth loading the FFI)
  if (restored.storedBytes >= TRIM_AFTER_RESTORE_BYTES) nativeHeapTrimmer.request('store-open', opts.logger);
  return { restored, from: 'records', imageUnused: image.reason };
}

function readRevMeta(b: Buffer | undefined): number | undefined {
  return b && b.length >= 8 ? readUint64BE(b, 0) : undefined;
}
