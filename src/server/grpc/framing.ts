// The gRPC-over-HTTP/2 wire details a server needs besides HTTP/2 itself: the 5-byte
// length prefix of every message, grpc-timeout, and the percent-encoding of grpc-message
// (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).

import zlib from 'node:zlib';
import { Code } from './codes.js';

/** A status to end a call with; `details` becomes grpc-message. */
export interface CallStatus {
  code: number;
  details: string;
}

export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
  }
}

/**
 * A response message a handler encoded itself, in pieces (a range over millions of keys,
 * encoded a slice at a time between turns of the event loop): the call sends the pieces
 * as one message without joining them, so the answer is held once.
 */
export class EncodedMessage {
  constructor(
    readonly pieces: readonly Buffer[],
    readonly length: number,
  ) {}

  /** The 5-byte prefix that frames it. */
  prefix(): Buffer {
    const out = Buffer.allocUnsafe(5);
    out[0] = 0;
    out.writeUInt32BE(this.length, 1);
    return out;
  }
}

/** One message, length-prefixed, never compressed. */
export function frameMessage(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/**
 * Cuts a stream of DATA chunks into messages. The size check runs on the prefix, before
 * the body is buffered, so an over-large request costs no memory.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** the current message's length and flag byte once its prefix has arrived */
  private pending: { length: number; flag: number } | undefined;

  constructor(
    private readonly maxLength: number,
    private readonly encoding: string,
  ) {}

  /**
   * The messages completed by `chunk`, at most `limit` of them (what lies beyond is left
   * unread); throws a StatusError for a message the call must end on.
   */
  push(chunk: Buffer, limit = Infinity): Buffer[] {
    // A unary request's usual shape, one whole uncompressed message in one DATA frame with
    // nothing buffered before it: one view of it, without the general path's views and state.
    if (this.buffered === 0 && this.pending === undefined && limit >= 1 && chunk.length >= 5 && chunk[0] === 0) {
      const length = chunk.readUInt32BE(1);
      if (length + 5 === chunk.length && length <= this.maxLength) return [chunk.subarray(5)];
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    while (out.length < limit) {
      if (this.pending === undefined) {
        if (this.buffered < 5) return out;
        const head = this.take(5);
        const length = head.readUInt32BE(1);
        if (length > this.maxLength) {
          throw new StatusError(Code.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${length} vs. ${this.maxLength})`);
        }
        this.pending = { length, flag: head[0]! };
      }
      if (this.buffered < this.pending.length) return out;
      const body = this.take(this.pending.length);
      const { flag } = this.pending;
      this.pending = undefined;
      // grpc-go checks the flag once the message is in: 0 plain, 1 compressed, nothing else
      if (flag === 0) out.push(body);
      else if (flag === 1) out.push(this.decompress(body));
      else throw new StatusError(Code.INTERNAL, `grpc: received unexpected payload format ${flag}`);
    }
    return out;
  }

  /** True when the client ended its half with a message cut short. */
  get partial(): boolean {
    return this.pending !== undefined || this.buffered > 0;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  private decompress(body: Buffer): Buffer {
    try {
      // Requests are small and compressed ones rare (no etcd client compresses by default).
      const opts = { maxOutputLength: this.maxLength };
      if (this.encoding === 'gzip') return zlib.gunzipSync(body, opts);
      if (this.encoding === 'deflate') return zlib.inflateSync(body, opts);
    } catch (err) {
      throw new StatusError(Code.INTERNAL, `grpc: failed to decompress the received message: ${(err as Error).message}`);
    }
    throw new StatusError(Code.INTERNAL, 'grpc: compressed flag set with identity or empty encoding');
  }
}

/** The grpc-encodings requests may use; a call with another is refused before it starts. */
export function knownEncoding(encoding: string): boolean {
  return encoding === 'identity' || encoding === 'gzip' || encoding === 'deflate';
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * grpc-timeout ("5000m", "30S", ...) in milliseconds, or undefined when malformed. As
 * grpc-go reads it: 2 to 9 characters, an integer Go's ParseInt takes (a sign is
 * allowed; a negative timeout has already passed) and a unit. Several values: the last.
 */
export function parseTimeout(value: string): number | undefined {
  const last = value.slice(value.lastIndexOf(',') + 1).trim();
  const m = /^([+-]?\d+)([HMSmun])$/.exec(last);
  if (m === null || last.length > 9) return undefined;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

/** grpc-message: UTF-8, with '%' and bytes outside printable ASCII percent-encoded. */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}
