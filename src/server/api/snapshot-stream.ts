// Sending a backup to `etcdctl snapshot save` as etcd does: SnapshotResponse messages of
// 32 KiB blobs, each with the bytes still to come, a MiB of them per HTTP/2 write, then
// one last message holding the SHA-256 of everything sent. The bytes come from a file
// written beforehand (sendFile), or from the bbolt writer as it reads the store
// (SnapshotSender: the client receives while the store is read).

import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { StreamCall } from '../grpc/call.js';
import { readSnapshotFrames, type SnapshotFrames, snapshotFrames } from './snapshot-frames.js';

/** bytes read or gathered at a time, and sent before waiting for the client */
const SNAPSHOT_READ = 1024 * 1024;

export class SnapshotCancelledError extends Error {
  override name = 'SnapshotCancelledError';
}

/** Streams the `size` bytes of `file`, the next read running while one is sent. */
export async function sendFile(file: FileHandle, size: number, call: StreamCall<object, object>, cancelled: AbortSignal): Promise<void> {
  const sha = createHash('sha256');
  const read = (from: number) => readSnapshotFrames(file, size, from, Math.min(SNAPSHOT_READ, size - from));
  let sent = 0;
  let next: Promise<SnapshotFrames> | undefined = size > 0 ? read(0) : undefined;
  try {
    while (next !== undefined) {
      const batch = await next;
      sent += batch.bytes;
      next = sent < size ? read(sent) : undefined;
      for (const r of batch.responses) sha.update(r.blob);
      // Waiting for 'drain' after each message would cost an event-loop turn per 32 KiB
      // (HTTP/2 buffers little); a read's worth goes out, then we wait.
      if (!send(call, batch)) await drained(call, cancelled);
      if (cancelled.aborted) return;
    }
  } finally {
    await next?.catch(() => undefined);
  }
  finish(call, sha);
}

/**
 * Takes a `size`-byte backup in order, in pieces of any size (the bbolt writer's page
 * chunks), and sends it a MiB at a time; resolves each piece once the client can take
 * more, so the writer reads the store no faster than the client receives it.
 */
export class SnapshotSender {
  private readonly sha = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private sent = 0;

  constructor(
    private readonly call: StreamCall<object, object>,
    private readonly size: number,
    private readonly cancelled: AbortSignal,
  ) {}

  /** The next bytes of the backup (copied: the caller may reuse them once this resolves). */
  readonly push = async (bufs: Buffer[]): Promise<void> => {
    for (const b of bufs) {
      this.pending.push(b);
      this.pendingBytes += b.length;
    }
    while (this.pendingBytes >= SNAPSHOT_READ) await this.sendPending(SNAPSHOT_READ);
  };

  /** After the last byte: sends what is gathered, then the checksum, and ends the call. */
  async end(): Promise<void> {
    if (this.pendingBytes > 0) await this.sendPending(this.pendingBytes);
    if (this.sent !== this.size) throw new Error(`the backup was ${this.sent} bytes, not the ${this.size} announced`);
    finish(this.call, this.sha);
  }

  private async sendPending(n: number): Promise<void> {
    if (this.sent + n > this.size) throw new Error(`the backup runs past the ${this.size} bytes announced`);
    const batch = snapshotFrames(this.size, this.sent, n);
    for (const r of batch.responses) {
      this.fill(r.blob);
      this.sha.update(r.blob);
    }
    this.sent += n;
    if (!send(this.call, batch)) await drained(this.call, this.cancelled);
    if (this.cancelled.aborted) throw new SnapshotCancelledError('the client cancelled the snapshot');
  }

  /** Moves the next blob.length pending bytes into `blob`. */
  private fill(blob: Buffer): void {
    let at = 0;
    while (at < blob.length) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, blob.length - at);
      head.copy(blob, at, 0, n);
      at += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    this.pendingBytes -= blob.length;
  }
}

function finish(call: StreamCall<object, object>, sha: Hash): void {
  call.write({ remaining_bytes: 0, blob: sha.digest() });
  call.end();
}

/** Writes one batch of messages, framed as they are when the call takes that; false when the client's window is full. */
function send(call: StreamCall<object, object>, batch: SnapshotFrames): boolean {
  if (call.writeFramed !== undefined) return call.writeFramed(batch.frames, batch.messageSizes);
  let room = true;
  for (const r of batch.responses) room = call.write(r) && room;
  return room;
}

/** Resolves once the client can take more, or it has gone. */
function drained(call: StreamCall<object, object>, cancelled: AbortSignal): Promise<void> {
  if (cancelled.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      cancelled.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    cancelled.addEventListener('abort', done);
  });
}
