// Compaction (etcd's kvstore_compaction.go): the in-memory index is compacted at once;
// superseded revisions are then deleted from LevelDB in small batches, in the
// background, one compaction after another. finishedCompactRev records completion,
// so an interrupted job is resumed at the next open.

import type { Logger } from 'pino';
import { nativeHeapTrimmer } from '../pkg/native-heap.js';
import { Bucket, MetaKey, bucketKey, type Backend, type BatchOp } from './backend.js';
import { decodeKeyValue } from './codec.js';
import { parseRevisionDbKey, revisionBytes, revisionDbKeyFloor } from './revision.js';
import type { MvccStats } from './stats.js';
import type { TreeIndex } from './tree-index.js';

/** etcd's default --experimental-compaction-batch-limit */
export const DEFAULT_COMPACTION_BATCH_LIMIT = 1000;

/** How a store's compactions run, and who hears their timings (etcd's etcd_debugging_mvcc_*_compaction_* histograms). */
export interface CompactionTuning {
  /** --experimental-compaction-batch-limit: revisions read, and deleted, per LevelDB batch */
  readonly batchLimit: number;
  /** each full batch, from its read to its write, in whole milliseconds (etcd's db compaction pause) */
  onBatch?(ms: number): void;
  /** each job, from its start to its end, in whole milliseconds */
  onJob?(ms: number): void;
  /** each compaction of the in-memory index, in whole milliseconds */
  onIndex?(ms: number): void;
}

export class StoreClosedError extends Error {
  constructor() {
    super('mvcc: store is closed');
    this.name = 'StoreClosedError';
  }
}

export class Compaction {
  private queue: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    private readonly backend: Backend,
    private readonly index: TreeIndex,
    private readonly logger: Logger | undefined,
    private readonly stats: MvccStats,
    private readonly tuning: CompactionTuning,
  ) {}

  /** The revision the in-memory index was last compacted at. */
  private indexCompactedAt = 0;

  /** Drops from the index every revision compaction at `rev` removes (synchronous). */
  compactIndex(rev: number): void {
    const started = performance.now();
    this.indexCompactedAt = Math.max(this.indexCompactedAt, rev);
    const emptied: string[] = [];
    this.index.all((ki) => {
      if (ki.compact(rev)) emptied.push(ki.key);
    });
    for (const k of emptied) this.index.delete(k);
    this.tuning.onIndex?.(Math.floor(performance.now() - started));
  }

  /**
   * Queues the physical removal for `rev`, to start once `after` settles (the commit
   * that makes scheduledCompactRev durable). Resolves when done; rejects with
   * StoreClosedError if the store closes first.
   */
  schedule(rev: number, after: Promise<void>): Promise<void> {
    const job = this.queue.then(() => after).then(() => this.run(rev));
    this.queue = job.catch(() => {});
    return job;
  }

  private async run(rev: number): Promise<void> {
    const started = Date.now();
    const { batchLimit, onBatch, onJob } = this.tuning;
    let deleted = 0;
    const it = this.backend.db.iterator({ gte: Buffer.of(Bucket.key), lt: revisionDbKeyFloor(rev + 1) });
    try {
      for (;;) {
        if (this.stopping) throw new StoreClosedError();
        const batchStarted = performance.now();
        const entries = await it.nextv(batchLimit);
        if (entries.length === 0) break;
        const ops: BatchOp[] = [];
        const sizes: number[] = [];
        // A later compaction may already be applied to the index (in memory) while this
        // job runs; it is not durable until its entry is committed. What this job deletes
        // must be what compaction at `rev` alone removes, or a crash (or a snapshot of
        // the committed state) would find the later compaction half done without its
        // entry: a key's survivor at `rev` deleted, the key gone at revisions that still
        // serve it. So with the index ahead, a key whose oldest held revision is past
        // `rev` (or that the index dropped) keeps its records; the later job removes them.
        const indexAhead = this.indexCompactedAt > rev;
        for (const [k, v] of entries) {
          const r = parseRevisionDbKey(k);
          if (!r) continue;
          const ki = this.index.get(decodeKeyValue(v).key.toString('latin1'));
          // the survivor of a key is the oldest revision its index still holds
          if (ki && ki.isOldest(r.main, r.sub)) continue;
          if (indexAhead && !(ki && ki.oldestMain()! <= rev)) continue;
          ops.push({ type: 'del', key: k });
          sizes.push(v.length);
        }
        if (this.stopping) throw new StoreClosedError();
        if (ops.length > 0) await this.backend.write(ops, sizes);
        deleted += ops.length;
        this.stats.compactedDbKeys += ops.length;
        // etcd times the batches that may have more after them: a short one is the last
        if (entries.length === batchLimit) onBatch?.(Math.floor(performance.now() - batchStarted));
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await it.close();
      onJob?.(Date.now() - started);
    }
    if (this.stopping) throw new StoreClosedError();
    await this.backend.write([
      { type: 'put', key: bucketKey('meta', Buffer.from(MetaKey.finishedCompactRev)), value: revisionBytes(rev, 0) },
    ]);
    this.logger?.info(
      { 'compact-revision': rev, took: `${Date.now() - started}ms`, deleted },
      'finished scheduled compaction',
    );
    // the pass read every old record: give the memory it freed back
    nativeHeapTrimmer.request('compaction', this.logger);
  }

  /** Settles once every job queued so far has finished or failed. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Stops after the current batch; queued jobs reject. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.queue;
  }
}
