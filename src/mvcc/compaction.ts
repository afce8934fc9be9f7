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

/** Deletes per LevelDB batch (etcd's compactionBatchLimit). */
const BATCH_LIMIT = 1000;

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
  ) {}

  /** The revision the in-memory index was last compacted at. */
  private indexCompactedAt = 0;

  /** Drops from the index every revision compaction at `rev` removes (synchronous). */
  compactIndex(rev: number): void {
    this.indexCompactedAt = Math.max(this.indexCompactedAt, rev);
    const emptied: string[] = [];
    this.index.all((ki) => {
      if (ki.compact(rev)) emptied.push(ki.key);
    });
    for (const k of emptied) this.index.delete(k);
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
    let deleted = 0;
    const it = this.backend.db.iterator({ gte: Buffer.of(Bucket.key), lt: revisionDbKeyFloor(rev + 1) });
    try {
      for (;;) {
        if (this.stopping) throw new StoreClosedError();
        const entries = await it.nextv(BATCH_LIMIT);
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
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await it.close();
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
