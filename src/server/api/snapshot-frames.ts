// The backup's bytes as the SnapshotResponse messages etcd streams (`remaining_bytes`,
// then a `blob` of up to 32 KiB), laid out in gRPC's framing in one buffer per read,
// with the file read straight into each message's blob: the stream costs no copy of the
// data in JS and one HTTP/2 write per read, where encoding each message and then
// framing it had copied every byte twice and written 32 times per MiB.

import type { FileHandle } from 'node:fs/promises';
import { WireType, Writer } from '../../raftpb/wire.js';

/** etcd's snapshotSendBufferSize: the blob of each SnapshotResponse */
const SNAPSHOT_CHUNK = 32 * 1024;
/** gRPC's message prefix: a compression flag byte and a 4-byte big-endian length */
const FRAME_PREFIX = 5;

/** One read's worth of messages. */
export interface SnapshotFrames {
  /** the messages, each with its gRPC prefix, back to back */
  readonly frames: Buffer;
  /** each message's size without its prefix (what the gRPC metrics count) */
  readonly messageSizes: readonly number[];
  /** each message's fields, for a call that encodes its responses itself (the JSON gateway) */
  readonly responses: ReadonlyArray<{ remaining_bytes: number; blob: Buffer }>;
  /** bytes of the file they carry */
  readonly bytes: number;
}

/**
 * Reads bytes [from, from + length) of the backup (`size` bytes long) as messages of
 * SNAPSHOT_CHUNK-byte blobs, each with the bytes still to come after it. A file shorter
 * than `size` is an error, never a short stream.
 */
export async function readSnapshotFrames(file: FileHandle, size: number, from: number, length: number): Promise<SnapshotFrames> {
  const frames = snapshotFrames(size, from, length);
  await readInto(file, frames.responses.map((r) => r.blob), from);
  return frames;
}

/**
 * Bytes [from, from + length) of a `size`-byte backup as messages whose blobs the
 * caller fills (the blobs are views of `frames`, which owns its ArrayBuffer, never a
 * slice of Node's pool: the export's worker hands it to other threads whole).
 */
export function snapshotFrames(size: number, from: number, length: number): SnapshotFrames {
  const heads: Uint8Array[] = [];
  const blobLengths: number[] = [];
  let total = 0;
  for (let off = from; off < from + length; off += SNAPSHOT_CHUNK) {
    const n = Math.min(SNAPSHOT_CHUNK, from + length - off);
    const remaining = size - off - n;
    // gogoproto leaves out a zero remaining_bytes, as protobufjs did
    const w = new Writer(16);
    if (remaining > 0) w.tag(2, WireType.Varint).uint53(remaining);
    const head = w.tag(3, WireType.Bytes).uint32(n).finish();
    heads.push(head);
    blobLengths.push(n);
    total += FRAME_PREFIX + head.length + n;
  }
  const frames = Buffer.allocUnsafeSlow(total);
  const messageSizes: number[] = [];
  let at = 0;
  for (const [i, head] of heads.entries()) {
    const messageSize = head.length + blobLengths[i]!;
    frames[at] = 0;
    frames.writeUInt32BE(messageSize, at + 1);
    frames.set(head, at + FRAME_PREFIX);
    at += FRAME_PREFIX + messageSize;
    messageSizes.push(messageSize);
  }
  return snapshotFramesIn(frames, messageSizes, size, from, length);
}

/**
 * What snapshotFrames(size, from, bytes) returned, from its `frames` and `messageSizes`
 * alone: for frames laid out and filled in another thread (export-worker.ts).
 */
export function snapshotFramesIn(frames: Buffer, messageSizes: readonly number[], size: number, from: number, bytes: number): SnapshotFrames {
  const responses: Array<{ remaining_bytes: number; blob: Buffer }> = [];
  let at = 0;
  let off = from;
  for (const messageSize of messageSizes) {
    const n = Math.min(SNAPSHOT_CHUNK, from + bytes - off);
    at += FRAME_PREFIX + messageSize;
    off += n;
    responses.push({ remaining_bytes: size - off, blob: frames.subarray(at - n, at) });
  }
  return { frames, messageSizes, responses, bytes };
}

/** Fills `bufs` from the file at `position` on (readv may read less than asked). */
async function readInto(file: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  // a copy: filled buffers are dropped from its front as reads land
  const rest = [...bufs];
  let at = position;
  while (rest.length > 0) {
    const { bytesRead } = await file.readv(rest, at);
    if (bytesRead === 0) throw new Error(`the backup ended at byte ${at}, before the size it was written with`);
    at += bytesRead;
    let n = bytesRead;
    while (n > 0 && n >= rest[0]!.length) n -= rest.shift()!.length;
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}
