// walpb and snappb, the two tiny protobuf messages of etcd's disk formats
// (wal/walpb/record.proto, etcdserver/api/snap/snappb/snap.proto at v3.4).
// Encoding matches gogoproto's: non-nullable scalars are always written, `data`
// only when present (etcd's crc records carry no data field at all).

import { ProtoDecodeError, Reader, WireType, Writer, varintSize } from '../raftpb/index.js';

function expectWireType(got: number, want: number): void {
  if (got !== want) throw new ProtoDecodeError(`wire type ${got}, expected ${want}`);
}

/** walpb record types (wal/wal.go: metadataType = iota + 1 ...). */
export const RecordType = {
  Metadata: 1,
  Entry: 2,
  State: 3,
  Crc: 4,
  Snapshot: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export function isRecordType(t: number): t is RecordType {
  return t >= RecordType.Metadata && t <= RecordType.Snapshot;
}

export interface WalRecord {
  readonly type: RecordType;
  /** rolling CRC-32C of the data of every record so far, this one included */
  readonly crc: number;
  /** absent only on crc records */
  readonly data: Uint8Array | undefined;
}

/** walpb.Snapshot: the raft position a snapshot marker record points at. */
export interface WalSnapshot {
  readonly index: number;
  readonly term: number;
}

/**
 * Encodes walpb.Record{type, crc, data} into buf at `pos` (which must have
 * recordSize() bytes of room) and returns the position after it. Written straight
 * into the frame buffer: the WAL's hot path builds no intermediate objects.
 */
export function writeRecordAt(
  buf: Uint8Array,
  pos: number,
  type: RecordType,
  crc: number,
  data: Uint8Array | undefined,
): number {
  buf[pos++] = 0x08; // field 1, varint
  pos = putVarint(buf, pos, type);
  buf[pos++] = 0x10; // field 2, varint
  pos = putVarint(buf, pos, crc >>> 0);
  if (data !== undefined) {
    buf[pos++] = 0x1a; // field 3, bytes
    pos = putVarint(buf, pos, data.length);
    buf.set(data, pos);
    pos += data.length;
  }
  return pos;
}

function putVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Byte length of walpb.Record{type, crc, data} without building it. */
export function recordSize(type: RecordType, crc: number, data: Uint8Array | undefined): number {
  let n = 1 + varintSize(type) + 1 + varintSize(crc);
  if (data !== undefined) n += 1 + varintSize(data.length) + data.length;
  return n;
}

/**
 * Decodes walpb.Record from buf[start, end); `data` is a view into `buf`. Unknown
 * fields are skipped (as gogoproto keeps them in XXX_unrecognized). The segment
 * reader parses etcd's usual layout in place and only falls back to this.
 */
export function decodeRecord(buf: Uint8Array, start: number, end: number): WalRecord {
  const r = new Reader(buf, start, end);
  let type = 0;
  let crc = 0;
  let data: Uint8Array | undefined;
  while (!r.done()) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        expectWireType(wt, WireType.Varint);
        // int64 on the wire; only 1..5 are meaningful (a negative value fails here,
        // anything else out of range is rejected below)
        type = r.uint53('walpb.Record.type');
        break;
      case 2:
        expectWireType(wt, WireType.Varint);
        crc = r.uint32();
        break;
      case 3:
        expectWireType(wt, WireType.Bytes);
        data = r.bytes();
        break;
      default:
        r.skip(wt);
    }
  }
  if (!isRecordType(type)) throw new ProtoDecodeError(`unknown WAL record type ${type}`);
  return { type, crc, data };
}

export function encodeWalSnapshot(s: WalSnapshot): Uint8Array {
  const w = new Writer(24);
  w.tag(1, WireType.Varint).uint53(s.index);
  w.tag(2, WireType.Varint).uint53(s.term);
  return w.finish();
}

/** Decodes walpb.Snapshot; etcd 3.5's conf_state (field 3) is skipped. */
export function decodeWalSnapshot(buf: Uint8Array): WalSnapshot {
  const r = new Reader(buf);
  let index = 0;
  let term = 0;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.Varint);
      index = r.uint53('walpb.Snapshot.index');
    } else if (f === 2) {
      expectWireType(wt, WireType.Varint);
      term = r.uint53('walpb.Snapshot.term');
    } else r.skip(wt);
  }
  return { index, term };
}

/** snappb.snapshot{crc, data}: the envelope of a `.snap` file. */
export interface SnapEnvelope {
  readonly crc: number;
  readonly data: Uint8Array | undefined;
}

export function encodeSnapEnvelope(e: SnapEnvelope): Uint8Array {
  const w = new Writer((e.data?.length ?? 0) + 16);
  w.tag(1, WireType.Varint).uint32(e.crc);
  if (e.data !== undefined) w.tag(2, WireType.Bytes).bytes(e.data);
  return w.finish();
}

export function decodeSnapEnvelope(buf: Uint8Array): SnapEnvelope {
  const r = new Reader(buf);
  let crc = 0;
  let data: Uint8Array | undefined;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.Varint);
      crc = r.uint32();
    } else if (f === 2) {
      expectWireType(wt, WireType.Bytes);
      data = r.bytes();
    } else r.skip(wt);
  }
  return { crc, data };
}

/**
 * Checks that `data` is a well-formed message using no field above `maxField`.
 * The record type is not covered by the WAL's CRC, so a flipped type bit would
 * otherwise let an entry decode "successfully" as a HardState or a snapshot
 * marker (their fields are a subset of an entry's); this catches those cases.
 */
export function checkFields(data: Uint8Array, maxField: number): void {
  const r = new Reader(data);
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f > maxField) throw new ProtoDecodeError(`unexpected field ${f}`);
    r.skip(wt);
  }
}
