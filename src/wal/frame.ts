// WAL framing (etcd wal/encoder.go, wal/decoder.go): every record is an 8-byte
// little-endian length word followed by the marshaled walpb.Record, padded with
// zeros to a multiple of 8 bytes so the next length word never straddles a sector.
// The low 56 bits of the length word hold the record length; when there is
// padding, the top byte is 0x80 | padBytes.

import { type Entry, Writer, writeEntry } from '../raftpb/index.js';
import { crc32cUpdate } from '../pkg/crc32c.js';
import { type RecordType, RecordType as RT, recordSize, writeRecordAt } from './walpb.js';

export const FRAME_HEADER_BYTES = 8;

/** Records longer than this are refused (etcd's maxWALEntrySizeLimit, 10 MiB). */
export const MAX_RECORD_BYTES = 10 * 1024 * 1024;

export function padBytesFor(recBytes: number): number {
  return (8 - (recBytes % 8)) % 8;
}

/** Writes the length word for a record of `recBytes` at buf[pos]. */
export function writeLengthWord(buf: Uint8Array, pos: number, recBytes: number): void {
  const pad = padBytesFor(recBytes);
  // recBytes < 2^32 always (MAX_RECORD_BYTES), so bytes 4..6 are zero
  buf[pos] = recBytes & 0xff;
  buf[pos + 1] = (recBytes >>> 8) & 0xff;
  buf[pos + 2] = (recBytes >>> 16) & 0xff;
  buf[pos + 3] = (recBytes >>> 24) & 0xff;
  buf[pos + 4] = 0;
  buf[pos + 5] = 0;
  buf[pos + 6] = 0;
  buf[pos + 7] = pad === 0 ? 0 : 0x80 | pad;
}

/** The record length in the length word at buf[pos]: its low 56 bits (Infinity beyond 2^53, only in garbage). */
export function lengthWordRecBytes(buf: Uint8Array, pos: number): number {
  const lo = (buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 24)) >>> 0;
  const hi = buf[pos + 4]! | (buf[pos + 5]! << 8) | (buf[pos + 6]! << 16);
  return hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + lo;
}

/** The padding in the length word at buf[pos]: like etcd, a set top bit (a negative int64) means padding, in the top byte's low 3 bits. */
export function lengthWordPadBytes(buf: Uint8Array, pos: number): number {
  const top = buf[pos + 7]!;
  return top & 0x80 ? top & 0x7 : 0;
}

/**
 * Builds frames for a batch of records into one buffer, carrying the rolling CRC.
 * The WAL writes the whole batch with one pwrite.
 */
export class FrameEncoder {
  private buf: Uint8Array;
  private len = 0;

  constructor(
    /** rolling CRC-32C so far: the CRC of every earlier record's data */
    public crc: number,
    initialSize = 64 * 1024,
  ) {
    this.buf = new Uint8Array(initialSize);
  }

  get length(): number {
    return this.len;
  }

  /** Appends one framed record; crc records take no data and carry the current CRC. */
  append(type: RecordType, data: Uint8Array | undefined): void {
    if (data !== undefined) this.crc = crc32cUpdate(this.crc, data);
    const recBytes = recordSize(type, this.crc, data);
    if (recBytes > MAX_RECORD_BYTES) {
      throw new RangeError(`WAL record of ${recBytes} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit`);
    }
    const frameBytes = FRAME_HEADER_BYTES + recBytes + padBytesFor(recBytes);
    this.ensure(frameBytes);
    writeLengthWord(this.buf, this.len, recBytes);
    const end = writeRecordAt(this.buf, this.len + FRAME_HEADER_BYTES, type, this.crc, data);
    // padding must be zeros even when the buffer is reused
    this.buf.fill(0, end, this.len + frameBytes);
    this.len += frameBytes;
  }

  /**
   * Appends one entry record per entry. The entries are encoded back to back
   * into one scratch buffer with raftpb's writeEntry (one allocation per batch
   * rather than per entry), then framed.
   */
  appendEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    let estimate = 0;
    for (const e of entries) estimate += e.data.length + 32;
    const w = new Writer(estimate);
    const ends = new Array<number>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      writeEntry(w, entries[i]!);
      ends[i] = w.finish().length;
    }
    const all = w.finish();
    let start = 0;
    for (const end of ends) {
      this.append(RT.Entry, all.subarray(start, end));
      start = end;
    }
  }

  appendCrc(): void {
    this.append(RT.Crc, undefined);
  }

  /** The framed bytes so far; a view, valid until the next append or reset. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): void {
    this.len = 0;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}
