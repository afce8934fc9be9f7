// etcd's bbolt file built in a worker thread (export-worker.ts) from the same frozen view
// of the store the member's thread takes, and handed back as the snapshot stream's
// messages, ready to write to the client.
//
// The worker shares the member's open LevelDB (classic-level's multithreading). Its
// snapshot must hold what the member's view holds: Backend.bucketView calls takeSnapshot
// synchronously as the view freezes, and this thread then blocks until the worker has
// taken it, so no write is issued between the two; the writes in flight then are in the
// view's point, which the worker lays over its snapshot as the member's view does.

import type { Worker } from 'node:worker_threads';
import type { StreamLayout, StreamResult, WriteResult } from '../../bbolt/index.js';
import { asBuffer, type FrozenPoint, type MvccStore, type StoreReader } from '../../mvcc/index.js';
import { type SnapshotFrames, snapshotFramesIn } from '../api/snapshot-frames.js';
import { type ClusterState, ExportAbortedError } from './etcd-db.js';
import { type ExportWorkerData, type FromWorker, SnapshotState, type ToWorker } from './export-protocol.js';
import { startWorker } from './start-worker.js';

/**
 * How long the member's thread waits, blocked, for the worker's snapshot before the
 * export fails. An idle worker answers within a millisecond; a member's thread blocked
 * for seconds would miss its heartbeats.
 */
const SNAPSHOT_WAIT_MS = 1000;
/** How long a close waits for the worker to release the store before it is stopped. */
const CLOSE_WAIT_MS = 5000;

export class ExportThread implements StoreReader {
  private readonly state = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private closing: Promise<void> | undefined;
  private running = true;
  /** takes what the worker says */
  private listener: ((m: FromWorker) => void) | undefined;

  /** A worker with `store`'s LevelDB open, registered with the store (which closes it before itself). */
  static async start(store: MvccStore): Promise<ExportThread> {
    const thread = new ExportThread(store);
    try {
      await thread.opened();
    } catch (err) {
      await thread.close();
      throw err;
    }
    return thread;
  }

  private constructor(private readonly store: MvccStore) {
    const location = store.addReader(this);
    try {
      this.worker = startWorker('export-worker', { location, handshake: this.state.buffer as SharedArrayBuffer } satisfies ExportWorkerData);
    } catch (err) {
      store.removeReader(this);
      throw err;
    }
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', () => {
        this.running = false;
        resolve();
      }),
    );
    this.worker.on('message', (m: FromWorker) => this.listener?.(m));
    this.worker.on('error', (err) => this.listener?.({ type: 'failed', message: `the export thread failed: ${err.message}` }));
    this.worker.once('exit', () => this.listener?.({ type: 'failed', message: 'the export thread stopped' }));
  }

  private opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listener = (m) => {
        this.listener = undefined;
        if (m.type === 'open') resolve();
        else reject(new Error(m.type === 'failed' ? m.message : `the export thread said ${m.type} before it opened the store`));
      };
    });
  }

  /** StoreReader: blocks until the worker has taken its snapshot (see the top of this file). */
  takeSnapshot(): void {
    if (Atomics.load(this.state, 0) !== SnapshotState.waiting) throw new Error('the export thread has taken its snapshot already');
    if (!this.running || this.closing !== undefined) throw new Error('the export thread has stopped');
    this.post({ type: 'snapshot' });
    if (
      Atomics.wait(this.state, 0, SnapshotState.waiting, SNAPSHOT_WAIT_MS) === 'timed-out' &&
      Atomics.compareExchange(this.state, 0, SnapshotState.waiting, SnapshotState.abandoned) === SnapshotState.waiting
    ) {
      throw new Error(`the export thread took no snapshot in ${SNAPSHOT_WAIT_MS} ms`);
    }
  }

  /**
   * Sends etcd's backend database in `layout`, as streamEtcdBackend would from the view
   * whose point is `point` (taken with this reader) and `cluster`, to `out` as the
   * snapshot stream's messages; resolves with the file's SHA-256 once `out` took the last.
   */
  async stream(
    layout: StreamLayout,
    point: FrozenPoint,
    cluster: ClusterState,
    out: (frames: SnapshotFrames) => Promise<void>,
  ): Promise<StreamResult & { checksum: Buffer }> {
    const { checksum, ...result } = await this.send(layout, point, cluster, out, true);
    if (checksum === undefined) throw new Error('the export thread sent no checksum');
    return { ...result, checksum };
  }

  /** stream(), for a reader that needs no checksum (a follower): the file is not hashed. */
  async streamUnhashed(layout: StreamLayout, point: FrozenPoint, cluster: ClusterState, out: (frames: SnapshotFrames) => Promise<void>): Promise<StreamResult> {
    const { checksum: _, ...result } = await this.send(layout, point, cluster, out, false);
    return result;
  }

  private send(
    layout: StreamLayout,
    point: FrozenPoint,
    cluster: ClusterState,
    out: (frames: SnapshotFrames) => Promise<void>,
    hashed: boolean,
  ): Promise<StreamResult & { checksum: Buffer | undefined }> {
    return new Promise((resolve, reject) => {
      let failed = false;
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        this.listener = undefined;
        reject(err);
      };
      // one batch at a time, in order, each acknowledged once `out` took it
      let relay = Promise.resolve();
      this.listener = (m) => {
        switch (m.type) {
          case 'frames': {
            const frames = snapshotFramesIn(asBuffer(m.frames), m.messageSizes, layout.size, m.from, m.bytes);
            relay = relay
              .then(async () => {
                if (failed) return;
                await out(frames);
                this.post({ type: 'taken' });
              })
              .catch(fail);
            return;
          }
          case 'done':
            void relay.then(() => {
              if (failed) return;
              this.listener = undefined;
              resolve({ ...m.result, checksum: m.checksum === undefined ? undefined : asBuffer(m.checksum) });
            });
            return;
          case 'failed':
            fail(new Error(m.message));
            return;
          case 'open':
          case 'written':
            fail(new Error(`the export thread said ${m.type} to a stream`));
        }
      };
      this.post({ type: 'stream', layout, point, cluster, hashed });
    });
  }

  /**
   * Writes etcd's backend database as a new file at `path`, as writeEtcdBackend would
   * from the view whose point is `point` (taken with this reader) and `cluster`; on a
   * failure the partial file is removed. Aborting `signal` closes the thread, which stops
   * the write with ExportAbortedError.
   */
  write(path: string, point: FrozenPoint, cluster: ClusterState, signal?: AbortSignal): Promise<WriteResult> {
    // the signal may be the member's own, which outlives many writes: no listener left behind
    const onAbort = (): void => void this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<WriteResult>((resolve, reject) => {
      this.listener = (m) => {
        this.listener = undefined;
        if (m.type === 'written') resolve(m.result);
        else if (signal?.aborted) reject(new ExportAbortedError('the export was aborted'));
        else reject(new Error(m.type === 'failed' ? m.message : `the export thread said ${m.type} to a write`));
      };
      this.post({ type: 'write', path, point, cluster });
    }).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** StoreReader: stops the worker's export, if one runs, and lets it release the store and end. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.post({ type: 'close' });
      const timer = setTimeout(() => void this.worker.terminate(), CLOSE_WAIT_MS);
      await this.exited;
      clearTimeout(timer);
      this.store.removeReader(this);
    })();
    return this.closing;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }
}
