// A backup read by an export thread while it is sent (a leader's snapshot for a
// follower), as etcd sends its live bbolt file: no copy of the store on disk first, so a
// leader whose disk has no room for one still catches its followers up, and the follower
// receives the first bytes while the thread reads on. The thread's frames are laid out
// for a client's gRPC stream; the file's bytes are their blobs. A follower checks the
// file as bbolt, not by a digest (etcd sends none), so the thread hashes nothing.

import type { StreamLayout } from '../../bbolt/index.js';
import type { BucketView } from '../../mvcc/index.js';
import type { SnapshotFrames } from '../api/snapshot-frames.js';
import type { ClusterState } from './etcd-db.js';
import type { ExportThread } from './export-thread.js';

/**
 * The bytes of the backup of `state` (a view taken with `thread`) in `layout`, in order.
 * It owns the thread and the view: both are released when the iteration ends, fails, or
 * is ended with return(), also before its first step.
 */
export class StreamedBackup implements AsyncIterableIterator<Buffer> {
  /** blobs received and not yet handed out */
  private readonly queue: Buffer[] = [];
  /** the thread's delivery of the next batch waits for this */
  private onConsumed: (() => void) | undefined;
  /** next() waits for this: a batch, the end or a failure */
  private onProgress: (() => void) | undefined;
  private started = false;
  private ended = false;
  private failure: Error | undefined;
  private released: Promise<void> | undefined;

  constructor(
    private readonly thread: ExportThread,
    private readonly layout: StreamLayout,
    private readonly state: { view: BucketView; cluster: ClusterState },
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    if (!this.started) this.start();
    for (;;) {
      const blob = this.queue.shift();
      if (blob !== undefined) return { value: blob, done: false };
      // all handed out: the thread may deliver the next batch
      this.consumed();
      if (this.failure !== undefined) {
        await this.release();
        throw this.failure;
      }
      if (this.ended) {
        await this.release();
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => (this.onProgress = resolve));
    }
  }

  async return(): Promise<IteratorResult<Buffer>> {
    await this.release();
    return { value: undefined, done: true };
  }

  private start(): void {
    this.started = true;
    this.thread
      .streamUnhashed(this.layout, this.state.view.point, this.state.cluster, (frames) => this.deliver(frames))
      .then(
        () => (this.ended = true),
        (err: Error) => (this.failure ??= err),
      )
      .finally(() => this.progress());
  }

  private deliver(frames: SnapshotFrames): Promise<void> {
    // a batch already on its way when the stream was released is dropped
    if (this.released !== undefined) return Promise.resolve();
    for (const r of frames.responses) this.queue.push(r.blob);
    this.progress();
    return new Promise((resolve) => (this.onConsumed = resolve));
  }

  private progress(): void {
    const wake = this.onProgress;
    this.onProgress = undefined;
    wake?.();
  }

  private consumed(): void {
    const go = this.onConsumed;
    this.onConsumed = undefined;
    go?.();
  }

  /** Stops the thread (a stream still running fails, unheard) and closes the view. */
  private release(): Promise<void> {
    this.released ??= (async () => {
      this.failure ??= new Error('the backup stream was closed');
      this.queue.length = 0;
      this.consumed();
      try {
        await this.thread.close();
      } finally {
        await this.state.view.close();
      }
    })();
    return this.released;
  }
}
