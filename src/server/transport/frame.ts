// The stream wire format between etcd-ts members: a sequence of frames, each a 4-byte
// big-endian length followed by that many bytes of one raftpb Message. A zero-length
// frame is a keep-alive the sender writes when it has been idle, so the reading side can
// tell a quiet peer from a dead one.

import { encodeMessage, type Message } from '../../raftpb/index.js';

export const FRAME_HEADER_BYTES = 4;
/** Larger than any message raft builds (MaxSizePerMsg plus one max-size entry); more is garbage. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** A write carries at most about this much, so one flush never builds a huge buffer. */
const BATCH_BYTES = 1024 * 1024;

export const KEEPALIVE_FRAME: Buffer = Buffer.alloc(FRAME_HEADER_BYTES);

export class FrameError extends Error {
  override name = 'FrameError';
}

/**
 * Encodes messages from the front of `queue` into one buffer of frames, stopping after
 * about BATCH_BYTES (always at least one message). Returns the buffer and how many
 * messages it holds.
 */
export function encodeBatch(queue: readonly Message[]): { bytes: Buffer; count: number } {
  const encoded: Uint8Array[] = [];
  let total = 0;
  while (encoded.length < queue.length && (encoded.length === 0 || total < BATCH_BYTES)) {
    const b = encodeMessage(queue[encoded.length]!);
    encoded.push(b);
    total += FRAME_HEADER_BYTES + b.length;
  }
  const bytes = Buffer.allocUnsafe(total);
  let off = 0;
  for (const b of encoded) {
    bytes.writeUInt32BE(b.length, off);
    bytes.set(b, off + FRAME_HEADER_BYTES);
    off += FRAME_HEADER_BYTES + b.length;
  }
  return { bytes, count: encoded.length };
}

/**
 * Cuts a byte stream into frame payloads. Chunks are kept as they arrive and copied only
 * when a frame spans several of them, so many small frames in one chunk cost no copy.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** payload length of the frame being read, or -1 while its header is incomplete */
  private frameLen = -1;

  /** Feeds bytes; returns the complete payloads (empty ones are keep-alives). Throws FrameError. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.frameLen < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const len = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (len > MAX_FRAME_BYTES) {
          throw new FrameError(`frame of ${len} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
        }
        this.frameLen = len;
      }
      if (this.buffered < this.frameLen) break;
      frames.push(this.take(this.frameLen));
      this.frameLen = -1;
    }
    return frames;
  }

  /** Bytes of an unfinished frame left over (non-zero when a stream ends mid-frame). */
  get pending(): number {
    return this.buffered + (this.frameLen >= 0 ? FRAME_HEADER_BYTES : 0);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
