// Minimal protobuf wire encoder/decoder for the hand-written raftpb/walpb codecs.
// Term and index values are JS numbers, checked on decode to be exact (below 2^53,
// which a raft log never reaches; raft/limits.ts keeps terms and indexes well below
// it); member IDs are full uint64 and travel as bigint. Decoding is total: every
// value is read exactly or refused with ProtoDecodeError, never truncated or wrapped.

import { writeUint64BE } from '../pkg/uint64be.js';

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
    this.buf = allocate(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = allocate(size);
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
    return this.varint64(v % TWO_32 >>> 0, Math.floor(v / TWO_32) >>> 0);
  }

  /** Unsigned 64-bit varint. */
  uint64(v: bigint): this {
    v = BigInt.asUintN(64, v);
    // two conversions, then number arithmetic: member IDs are random 64-bit values
    return this.varint64(Number(v & 0xffff_ffffn), Number(v >> 32n));
  }

  /** The varint of the uint64 hi * 2^32 + lo. */
  private varint64(lo: number, hi: number): this {
    this.ensure(10);
    while (hi > 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
    return this;
  }

  /** One raw byte. */
  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
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

  /**
   * Writes a nested message produced by `inner` as a length-delimited field, in place:
   * its length's varint is guessed to be one byte and the bytes moved up when it is
   * longer (no writer per nested message: a raft message nests one per entry).
   */
  message(field: number, inner: (w: Writer) => void): this {
    this.tag(field, WireType.Bytes);
    this.ensure(1);
    const lengthAt = this.pos++;
    inner(this);
    const len = this.pos - lengthAt - 1;
    if (len < 0x80) {
      this.buf[lengthAt] = len;
      return this;
    }
    const extra = varintSize(len) - 1;
    this.ensure(extra);
    this.buf.copyWithin(lengthAt + 1 + extra, lengthAt + 1, this.pos);
    const end = this.pos + extra;
    this.pos = lengthAt;
    this.uint32(len);
    this.pos = end;
    return this;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /**
   * A big-endian uint64 of a safe integer: not protobuf, but how etcd's peer streams
   * frame protobuf messages (rafthttp's length prefixes).
   */
  uint64BE(v: number): this {
    this.ensure(8);
    this.setUint64BE(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** Overwrites the uint64BE written at `at` (a length known only once what follows is written). */
  setUint64BE(at: number, v: number): void {
    writeUint64BE(this.buf, at, v);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Room for `n` bytes. A large one is not zero-filled (a peer stream's flush buffer is a
 * megabyte): a Writer only ever exposes bytes it wrote.
 */
function allocate(n: number): Uint8Array {
  if (n < 4096) return new Uint8Array(n);
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Bytes of the varint of a non-negative integer up to 2^53 (lengths, revisions, sizes). */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x20_0000) return 3;
  if (v < 0x1000_0000) return 4;
  let n = 4;
  v = Math.floor(v / 0x1000_0000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Bounds-checked reader: any malformed input raises ProtoDecodeError. */
export class Reader {
  pos: number;
  readonly end: number;
  /** the low and high 32 bits of the varint varint() read last */
  private lo = 0;
  private hi = 0;

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

  /**
   * An unsigned varint that must fit 32 bits (tags, lengths, enums, CRCs). A larger
   * value is an error, not truncated: a length or field number cut to 32 bits would
   * silently misread everything after it.
   */
  uint32(): number {
    const b = this.byte();
    if (b < 0x80) return b;
    this.pos--;
    const at = this.pos;
    this.varint();
    if (this.hi !== 0) throw this.outOfRange(at, 'varint', '2^32-1');
    return this.lo;
  }

  uint64(): bigint {
    this.varint();
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /**
   * An unsigned varint that must fit a safe integer (terms, indexes, sizes): a uint64
   * above 2^53-1 has no exact JS number, so it is an error rather than a wrong value.
   * `what` names the field in the error.
   */
  uint53(what = 'integer'): number {
    const b = this.byte();
    if (b < 0x80) return b;
    this.pos--;
    const at = this.pos;
    this.varint();
    if (this.hi >= 0x20_0000) throw this.outOfRange(at, what, '2^53-1');
    return this.hi * TWO_32 + this.lo;
  }

  /**
   * Reads one varint into `lo`/`hi` (its low and high 32 bits). A varint is at most
   * 10 bytes and its 10th byte holds only bit 63: more would not be a uint64 (Go's
   * protowire refuses it too), so that is an error rather than a wrapped value.
   */
  private varint(): void {
    let lo = 0;
    let b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byte();
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    b = this.byte(); // bits 28..34 straddle the halves
    lo |= (b & 0x0f) << 28;
    let hi = (b & 0x7f) >>> 4;
    for (let shift = 3; b >= 0x80; shift += 7) {
      b = this.byte();
      if (shift === 31 && b > 1) {
        throw new ProtoDecodeError(b >= 0x80 ? 'varint longer than 10 bytes' : 'varint overflows 64 bits');
      }
      hi |= (b & 0x7f) << shift;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** The error for the varint at `at`, naming its exact value. */
  private outOfRange(at: number, what: string, max: string): ProtoDecodeError {
    this.pos = at;
    this.varint();
    const value = (BigInt(this.hi) << 32n) | BigInt(this.lo);
    return new ProtoDecodeError(`${what} ${value} is above ${max}`);
  }

  /** Any uint64: zero is false, anything else true (as Go's decoder reads it). */
  bool(): boolean {
    this.varint();
    return (this.lo | this.hi) !== 0;
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
