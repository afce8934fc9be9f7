// A RangeResponse encoded by hand, a slice of kvs at a time, as MvccStore.rangeInSlices
// reads them: the gRPC answer to a range over millions of keys is built between turns
// of the event loop and held once, as its bytes, where protobufjs held it as KeyValues,
// then plain objects, then its writer's list of operations (several per field), then
// the bytes, then the framed bytes — all in one turn.
//
// etcdserverpb.RangeResponse: header = 1, kvs = 2 (repeated mvccpb.KeyValue), more = 3,
// count = 4. mvccpb.KeyValue: key = 1, create_revision = 2, mod_revision = 3,
// version = 4, value = 5, lease = 6. Fields at their default are left out, as Go's
// encoder leaves them.

import type { KeyValue, RangeSink } from '../../mvcc/index.js';
import { EncodedMessage } from '../grpc/framing.js';
import { varintSize } from '../../raftpb/wire.js';
import { type } from '../pb.js';

const ResponseHeader = type('etcdserverpb.ResponseHeader');

/** The first piece's size; each next one doubles, up to MAX_PIECE_BYTES (a small range stays small). */
const FIRST_PIECE_BYTES = 4096;
const MAX_PIECE_BYTES = 1 << 20;

// field tags: (field number << 3) | wire type (0 varint, 2 length-delimited)
const RESPONSE_HEADER = 0x0a;
const RESPONSE_KV = 0x12;
const RESPONSE_MORE = 0x18;
const RESPONSE_COUNT = 0x20;
const KV_KEY = 0x0a;
const KV_CREATE = 0x10;
const KV_MOD = 0x18;
const KV_VERSION = 0x20;
const KV_VALUE = 0x2a;
const KV_LEASE = 0x30;

export class RangeResponseEncoder implements RangeSink {
  private pieces: Buffer[] = [];
  private piecesBytes = 0;
  private piece: Buffer = Buffer.alloc(0);
  private pos = 0;

  add(kvs: readonly KeyValue[]): void {
    for (const kv of kvs) this.addKv(kv);
  }

  reset(): void {
    this.pieces = [];
    this.piecesBytes = 0;
    this.piece = Buffer.alloc(0);
    this.pos = 0;
  }

  /** The whole message, the header first (as etcd sends it), then the kvs, `more` and `count`. */
  finish(header: object, more: boolean, count: number): EncodedMessage {
    this.seal();
    const head = ResponseHeader.encode(header).finish();
    const headPiece = Buffer.allocUnsafe(1 + varintSize(head.length) + head.length);
    let p = varint(headPiece, writeTag(headPiece, 0, RESPONSE_HEADER), head.length);
    headPiece.set(head, p);
    const tail = Buffer.allocUnsafe(2 + 1 + varintSize(count));
    p = 0;
    if (more) p = varint(tail, writeTag(tail, p, RESPONSE_MORE), 1);
    if (count > 0) p = varint(tail, writeTag(tail, p, RESPONSE_COUNT), count);
    const tailPiece = tail.subarray(0, p);
    return new EncodedMessage([headPiece, ...this.pieces, tailPiece], headPiece.length + this.piecesBytes + tailPiece.length);
  }

  private addKv(kv: KeyValue): void {
    const keyLen = kv.key.length;
    const valueLen = kv.value.length;
    const lease = kv.lease === 0n ? undefined : BigInt.asUintN(64, kv.lease);
    const size =
      (keyLen > 0 ? 1 + varintSize(keyLen) + keyLen : 0) +
      (kv.createRevision > 0 ? 1 + varintSize(kv.createRevision) : 0) +
      (kv.modRevision > 0 ? 1 + varintSize(kv.modRevision) : 0) +
      (kv.version > 0 ? 1 + varintSize(kv.version) : 0) +
      (valueLen > 0 ? 1 + varintSize(valueLen) + valueLen : 0) +
      (lease === undefined ? 0 : 1 + bigVarintSize(lease));
    const b = this.room(1 + varintSize(size) + size);
    let p = varint(b, writeTag(b, this.pos, RESPONSE_KV), size);
    if (keyLen > 0) {
      p = varint(b, writeTag(b, p, KV_KEY), keyLen);
      p += kv.key.copy(b, p);
    }
    if (kv.createRevision > 0) p = varint(b, writeTag(b, p, KV_CREATE), kv.createRevision);
    if (kv.modRevision > 0) p = varint(b, writeTag(b, p, KV_MOD), kv.modRevision);
    if (kv.version > 0) p = varint(b, writeTag(b, p, KV_VERSION), kv.version);
    if (valueLen > 0) {
      p = varint(b, writeTag(b, p, KV_VALUE), valueLen);
      p += kv.value.copy(b, p);
    }
    if (lease !== undefined) p = bigVarint(b, writeTag(b, p, KV_LEASE), lease);
    this.pos = p;
  }

  /** The current piece, with `n` bytes free at this.pos (a new piece when it has not). */
  private room(n: number): Buffer {
    if (this.pos + n <= this.piece.length) return this.piece;
    const grown = Math.min(MAX_PIECE_BYTES, Math.max(FIRST_PIECE_BYTES, this.piece.length * 2));
    this.seal();
    // its own buffer, not a slice of Node's pool: the answer may live a while in the send queue
    this.piece = Buffer.allocUnsafeSlow(Math.max(grown, n));
    this.pos = 0;
    return this.piece;
  }

  private seal(): void {
    if (this.pos === 0) return;
    this.pieces.push(this.piece.subarray(0, this.pos));
    this.piecesBytes += this.pos;
    this.piece = this.piece.subarray(this.pos);
    this.pos = 0;
  }
}

function writeTag(b: Buffer, p: number, tag: number): number {
  b[p] = tag;
  return p + 1;
}

/** A non-negative integer below 2^53 as a varint at `p`; returns the position after it. */
function varint(b: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    b[p++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  b[p++] = n;
  return p;
}

/** An int64 (as its two's complement, a uint64) as a varint. */
function bigVarint(b: Buffer, p: number, n: bigint): number {
  while (n >= 0x80n) {
    b[p++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  b[p++] = Number(n);
  return p;
}

function bigVarintSize(n: bigint): number {
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}
