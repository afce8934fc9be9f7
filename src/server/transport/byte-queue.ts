// The bytes of a peer stream that have arrived but not been decoded yet. Chunks are kept
// as they arrive and copied only when a read spans several of them, so many small
// messages in one chunk cost no copy; the first chunk is consumed by moving an offset,
// so reading a length prefix allocates nothing.

const TWO_32 = 0x1_0000_0000;
/** 2^53 / 2^32: a high word this large makes the uint64 unsafe as a number */
const UNSAFE_HIGH = 0x20_0000;

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** bytes of chunks[0] already taken */
  private head = 0;
  private buffered = 0;

  get length(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next `n` bytes (the caller checked `length >= n`). */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n - off);
      c.copy(out, off, this.head, this.head + k);
      off += k;
      this.skip(k);
    }
    return out;
  }

  /** The next byte (the caller checked `length >= 1`). */
  takeU8(): number {
    const b = this.chunks[0]![this.head]!;
    this.skip(1);
    return b;
  }

  /**
   * The next 8 bytes as a big-endian uint64 (the caller checked `length >= 8`); values
   * past Number.MAX_SAFE_INTEGER come back as Infinity so that every size check refuses them.
   */
  takeU64(): number {
    const first = this.chunks[0]!;
    let hi: number;
    let lo: number;
    if (first.length - this.head >= 8) {
      hi = first.readUInt32BE(this.head);
      lo = first.readUInt32BE(this.head + 4);
      this.skip(8);
    } else {
      const b = this.take(8);
      hi = b.readUInt32BE(0);
      lo = b.readUInt32BE(4);
    }
    return hi >= UNSAFE_HIGH ? Infinity : hi * TWO_32 + lo;
  }

  /** Consumes `n` bytes of chunks[0], which holds at least that many past head. */
  private skip(n: number): void {
    this.head += n;
    this.buffered -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
