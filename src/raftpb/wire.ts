// Minimal protobuf wire encoder/decoder for the hand-written raftpb/walpb codecs.
// Term and index values are JS numbers (exact below 2^53, which a raft log never
// reaches); member IDs are full uint64 and travel as bigint.

export class ProtoDecodeError extends Error {
  constructor(message: string) {
    super(`protobuf decode: ${message}`);
    this.name = 'ProtoDecodeError';
  }
}

const TWO_32 = 0x1_0000_0000;

export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;

/** Growable byte buffer with protobuf primitives. */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initialSize = 64) {
    this.buf = new Uint8Array(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  tag(field: number, wireType: number): this {
    return this.uint32((field << 3) | wireType);
  }

  uint32(v: number): this {
    this.ensure(5);
    v >>>= 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    return this;
  }

  /** Unsigned varint of a non-negative safe integer. */
  uint53(v: number): this {
    if (v < TWO_32) return this.uint32(v);
    this.ensure(10);
    let lo = v % TWO_32 >>> 0;
    let hi = Math.floor(v / TWO_32) >>> 0;
    while (hi > 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
    return this;
  }

  /** Unsigned 64-bit varint. */
  uint64(v: bigint): this {
    this.ensure(10);
    v = BigInt.asUintN(64, v);
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.uint32(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  fixed32(v: number): this {
    this.ensure(4);
    this.buf[this.pos++] = v & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 24) & 0xff;
    return this;
  }

  /** Writes a nested message produced by `inner` as a length-delimited field. */
  message(field: number, inner: (w: Writer) => void): this {
    const sub = new Writer();
    inner(sub);
    this.tag(field, WireType.Bytes);
    return this.bytes(sub.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bounds-checked reader: any malformed input raises ProtoDecodeError. */
export class Reader {
  pos: number;
  readonly end: number;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Returns [field, wireType] of the next key. */
  tag(): [number, number] {
    const key = this.uint32();
    const field = key >>> 3;
    if (field === 0) throw new ProtoDecodeError(`field number 0 at offset ${this.pos}`);
    return [field, key & 7];
  }

  private byte(): number {
    if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint');
    return this.buf[this.pos++]!;
  }

  uint32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  uint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  /** Unsigned varint that must fit a safe integer (terms, indexes, sizes). */
  uint53(): number {
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (; i < 4; i++) {
      const b = this.byte();
      lo |= (b & 0x7f) << (i * 7);
      if (b < 0x80) return lo >>> 0;
    }
    // byte 4 carries bits 28..34
    let b = this.byte();
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >>> 4;
    if (b >= 0x80) {
      for (i = 0; i < 5; i++) {
        b = this.byte();
        hi |= (b & 0x7f) << (i * 7 + 3);
        if (b < 0x80) break;
        if (i === 4) throw new ProtoDecodeError('varint longer than 10 bytes');
      }
    }
    hi >>>= 0;
    if (hi >= 0x20_0000) throw new ProtoDecodeError('integer above 2^53');
    return hi * TWO_32 + (lo >>> 0);
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  fixed32(): number {
    if (this.pos + 4 > this.end) throw new ProtoDecodeError('truncated fixed32');
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /** A length-delimited field, as a view into the input (no copy). */
  bytes(): Uint8Array {
    const len = this.uint32();
    if (this.pos + len > this.end) throw new ProtoDecodeError(`length ${len} runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** A sub-reader over a nested message. */
  sub(): Reader {
    const len = this.uint32();
    if (this.pos + len > this.end) throw new ProtoDecodeError(`length ${len} runs past the end`);
    const r = new Reader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WireType.Varint:
        this.uint64();
        return;
      case WireType.Fixed64:
        this.advance(8);
        return;
      case WireType.Bytes:
        this.advance(this.uint32());
        return;
      case WireType.Fixed32:
        this.advance(4);
        return;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new ProtoDecodeError('truncated field');
    this.pos += n;
  }

  /** Reads a repeated uint64 that may arrive packed or unpacked. */
  repeatedUint64(wireType: number, into: bigint[]): void {
    if (wireType === WireType.Bytes) {
      const r = this.sub();
      while (!r.done()) into.push(r.uint64());
    } else {
      expectWireType(wireType, WireType.Varint);
      into.push(this.uint64());
    }
  }
}

export function expectWireType(got: number, want: number): void {
  if (got !== want) throw new ProtoDecodeError(`wire type ${got}, expected ${want}`);
}
