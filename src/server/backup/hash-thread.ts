// The export's worker's handle on the thread that hashes a streamed backup
// (hash-worker.ts). Chunks go to it in the file's order and come back hashed, in that
// order, each handed over and back without a copy; the export sends a chunk on to the
// member's thread once it is back.

import type { Worker } from 'node:worker_threads';
import type { FromHasher, ToHasher } from './export-protocol.js';
import { startWorker } from './start-worker.js';

interface Waiter<T> {
  resolve(v: T): void;
  reject(err: Error): void;
}

export class HashThread {
  private readonly worker: Worker = startWorker('hash-worker');
  /** the updates not yet back, oldest first */
  private readonly hashing: Array<Waiter<Buffer>> = [];
  private digesting: Waiter<Uint8Array> | undefined;
  private failure: Error | undefined;
  private onFailure: ((err: Error) => void) | undefined;
  /** rejects when the thread fails or stops before its digest */
  readonly failed = new Promise<never>((_, reject) => (this.onFailure = reject));

  constructor() {
    this.worker.on('message', (m: FromHasher) => {
      if (m.type === 'hashed') this.hashing.shift()?.resolve(Buffer.from(m.frames.buffer, m.frames.byteOffset, m.frames.byteLength));
      else this.digesting?.resolve(m.digest);
    });
    // a failure is also each caller's: this one is for whoever waits on something else
    this.failed.catch(() => undefined);
    this.worker.on('error', (err) => this.fail(new Error(`the hash thread failed: ${err.message}`)));
    this.worker.once('exit', () => this.fail(new Error('the hash thread stopped')));
  }

  /**
   * Hashes the blobs of `frames` ((offset, length) pairs in `blobs`) after every earlier
   * update; `frames` is handed over (it must own its ArrayBuffer) and comes back hashed.
   */
  update(frames: Buffer, blobs: readonly number[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      this.hashing.push({ resolve, reject });
      this.post({ type: 'update', frames, blobs }, [frames.buffer as ArrayBuffer]);
    });
  }

  /** The SHA-256 of every update; the thread ends after it. */
  digest(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      this.digesting = { resolve, reject };
      this.post({ type: 'digest' });
    });
  }

  /** Stops the thread, whatever it was doing. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.onFailure?.(err);
    for (const w of this.hashing.splice(0)) w.reject(err);
    this.digesting?.reject(err);
    this.digesting = undefined;
  }

  private post(m: ToHasher, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }
}
