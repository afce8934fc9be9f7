// The bytes of a peer stream that have arrived but not been decoded yet. Chunks are kept
// as they arrive and copied only when a read spans several of them, so many small
// messages in one chunk cost no copy.

export class ByteQueue {
  private chunks: Buffer[] = [];
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
    if (first.length >= n) {
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

  /**
   * The next 8 bytes as a big-endian uint64 (the caller checked `length >= 8`); values
   * past Number.MAX_SAFE_INTEGER come back as Infinity so that every size check refuses them.
   */
  takeU64(): number {
    const v = this.take(8).readBigUInt64BE(0);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  }
}
