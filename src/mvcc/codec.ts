// mvccpb.KeyValue marshaled byte-for-byte as etcd's gogoproto code does it: fields in
// number order, zero values omitted. HashKV equality with etcd depends on this.

import { ProtoDecodeError, Reader, WireType, varintSize } from '../raftpb/wire.js';
import type { KeyValue } from './types.js';

const EMPTY = Buffer.alloc(0);
const TWO_32 = 0x1_0000_0000;

function bigVarintSize(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  let n = 1;
  while (u > 0x7fn) {
    u >>= 7n;
    n++;
  }
  return n;
}

function putVarint(out: Buffer, pos: number, v: number): number {
  while (v >= TWO_32) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  v >>>= 0;
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

function putBigVarint(out: Buffer, pos: number, v: bigint): number {
  let u = BigInt.asUintN(64, v);
  while (u > 0x7fn) {
    out[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  out[pos++] = Number(u);
  return pos;
}

/** Marshals a KeyValue; a tombstone record is `{ key }` alone. */
export function encodeKeyValue(kv: KeyValue): Buffer {
  const { key, createRevision, modRevision, version, value, lease } = kv;
  let size = 0;
  if (key.length > 0) size += 1 + varintSize(key.length) + key.length;
  if (createRevision !== 0) size += 1 + varintSize(createRevision);
  if (modRevision !== 0) size += 1 + varintSize(modRevision);
  if (version !== 0) size += 1 + varintSize(version);
  if (value.length > 0) size += 1 + varintSize(value.length) + value.length;
  if (lease !== 0n) size += 1 + bigVarintSize(lease);
  // a buffer of its own, not a slice of Node's shared 8 KB pool: the value cache, the
  // watch history and prev_kv keep records (views into them) for a while, and a pooled
  // one would keep its whole slab alive, with whatever else was cut from it (raft
  // entries, kept until a snapshot): records then lived as long as the raft log did
  const out = Buffer.allocUnsafeSlow(size);
  let p = 0;
  if (key.length > 0) {
    out[p++] = (1 << 3) | WireType.Bytes;
    p = putVarint(out, p, key.length);
    p += key.copy(out, p);
  }
  if (createRevision !== 0) {
    out[p++] = 2 << 3;
    p = putVarint(out, p, createRevision);
  }
  if (modRevision !== 0) {
    out[p++] = 3 << 3;
    p = putVarint(out, p, modRevision);
  }
  if (version !== 0) {
    out[p++] = 4 << 3;
    p = putVarint(out, p, version);
  }
  if (value.length > 0) {
    out[p++] = (5 << 3) | WireType.Bytes;
    p = putVarint(out, p, value.length);
    p += value.copy(out, p);
  }
  if (lease !== 0n) {
    out[p++] = 6 << 3;
    putBigVarint(out, p, lease);
  }
  return out;
}

/** The key inside a record encodeKeyValue made of `kv`: its first field. */
export function keyViewOf(record: Buffer, kv: KeyValue): Buffer {
  const start = kv.key.length > 0 ? 1 + varintSize(kv.key.length) : 0;
  return record.subarray(start, start + kv.key.length);
}

/**
 * The value inside a record encodeKeyValue made of `kv`, so a caller that keeps both
 * holds one allocation instead of two. The value is the last field but the lease.
 */
export function valueViewOf(record: Buffer, kv: KeyValue): Buffer {
  const end = record.length - (kv.lease !== 0n ? 1 + bigVarintSize(kv.lease) : 0);
  return record.subarray(end - kv.value.length, end);
}

/** `b` as a Buffer over the same bytes (a Buffer sent to another thread arrives as a Uint8Array). */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

// Decoder state, module-level so decoding allocates nothing but its result.
let dbuf: Buffer = EMPTY;
let dpos = 0;
let dend = 0;

/** Unsigned varint below 2^53 at dpos. */
function dvarint(): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (dpos >= dend) throw new ProtoDecodeError('KeyValue: truncated varint');
    const b = dbuf[dpos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new ProtoDecodeError('KeyValue: integer above 2^53');
}

/** A length-delimited field at dpos: returns its start, leaves dpos after it. */
function dbytes(): number {
  const len = dvarint();
  if (dpos + len > dend) throw new ProtoDecodeError(`KeyValue: length ${len} runs past the end`);
  const start = dpos;
  dpos += len;
  return start;
}

/** Where the fields of the record scan() last read are: offsets into dbuf, and the integers. */
let keyStart = 0;
let keyEnd = 0;
let valueStart = 0;
let valueEnd = 0;
let createRevision = 0;
let modRevision = 0;
let version = 0;
let lease = 0n;

/** Reads a marshaled KeyValue into the fields above; throws ProtoDecodeError on malformed input. */
function scan(data: Uint8Array): void {
  dbuf = asBuffer(data);
  dpos = 0;
  dend = dbuf.length;
  keyStart = keyEnd = valueStart = valueEnd = 0;
  createRevision = modRevision = version = 0;
  lease = 0n;
  while (dpos < dend) {
    const tag = dvarint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    switch (field) {
      case 1:
        expect(wt, WireType.Bytes);
        keyStart = dbytes();
        keyEnd = dpos;
        break;
      case 2:
        expect(wt, WireType.Varint);
        createRevision = dvarint();
        break;
      case 3:
        expect(wt, WireType.Varint);
        modRevision = dvarint();
        break;
      case 4:
        expect(wt, WireType.Varint);
        version = dvarint();
        break;
      case 5:
        expect(wt, WireType.Bytes);
        valueStart = dbytes();
        valueEnd = dpos;
        break;
      default: {
        // lease (field 6, a full 64-bit varint) and unknown fields go through the generic reader
        if (field === 0) throw new ProtoDecodeError('KeyValue: field number 0');
        const r = new Reader(dbuf, dpos, dend);
        if (field === 6) {
          expect(wt, WireType.Varint);
          lease = BigInt.asIntN(64, r.uint64());
        } else {
          r.skip(wt);
        }
        dpos = r.pos;
      }
    }
  }
}

/**
 * Unmarshals a KeyValue; `key` and `value` are views into `data`. Throws
 * ProtoDecodeError on malformed input. Hand-rolled, without per-field allocation.
 */
export function decodeKeyValue(data: Uint8Array): KeyValue {
  try {
    scan(data);
    const buf = dbuf;
    return {
      key: keyEnd > keyStart ? buf.subarray(keyStart, keyEnd) : EMPTY,
      createRevision,
      modRevision,
      version,
      value: valueEnd > valueStart ? buf.subarray(valueStart, valueEnd) : EMPTY,
      lease,
    };
  } finally {
    dbuf = EMPTY;
  }
}

/** What the key index takes from a stored record (restore.ts), read in place. */
export interface IndexFields {
  /** the key, as the index keys it: its bytes as a latin1 string */
  key: string;
  createRevision: number;
  version: number;
  lease: bigint;
}

/**
 * Reads the fields the key index needs from a marshaled KeyValue into `out` (the
 * caller's, reused record after record): a store's open reads every record, and a
 * KeyValue with two buffer views for each was most of the garbage it made.
 */
export function readIndexFields(data: Uint8Array, out: IndexFields): void {
  try {
    scan(data);
    out.key = dbuf.toString('latin1', keyStart, keyEnd);
    out.createRevision = createRevision;
    out.version = version;
    out.lease = lease;
  } finally {
    dbuf = EMPTY;
  }
}

function expect(got: number, want: number): void {
  if (got !== want) throw new ProtoDecodeError(`KeyValue: wire type ${got}, expected ${want}`);
}
