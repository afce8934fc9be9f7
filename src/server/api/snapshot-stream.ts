// Sending a backup to `etcdctl snapshot save` as etcd does: SnapshotResponse messages of
// 32 KiB blobs, each with the bytes still to come, a MiB of them per HTTP/2 write, then
// one last message holding the SHA-256 of everything sent. The bytes come from a file
// written beforehand (sendFile), or framed by the thread that reads the store as the
// client receives them (sendFrames; export-thread.ts).

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { StreamCall } from '../grpc/call.js';
import { readSnapshotFrames, type SnapshotFrames } from './snapshot-frames.js';

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
  finishSnapshot(call, sha.digest());
}

/**
 * Sends one batch of messages (frames another thread laid out and filled,
 * export-thread.ts); resolves once the client can take more.
 */
export async function sendFrames(call: StreamCall<object, object>, batch: SnapshotFrames, cancelled: AbortSignal): Promise<void> {
  if (!send(call, batch)) await drained(call, cancelled);
  if (cancelled.aborted) throw new SnapshotCancelledError('the client cancelled the snapshot');
}

/** After the last byte: the message with the SHA-256 of everything sent, and the call's end. */
export function finishSnapshot(call: StreamCall<object, object>, checksum: Buffer): void {
  call.write({ remaining_bytes: 0, blob: checksum });
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
