// Reading WAL segments back: frames, the rolling CRC, and the one hard question of
// recovery — is a bad frame a torn write at the tail (truncate it: it was never
// acknowledged) or damage to data that was already synced (refuse to start)?
//
// A frame that fails (length past the end of the file, undecodable record, CRC
// mismatch) is a torn write when all of these hold:
//  - it is in the last segment (earlier segments were synced in full before the
//    next one was created);
//  - its bytes do not begin with a complete, CRC-valid record (that would mean a
//    damaged length word, not a write that stopped half way);
//  - and it shows the shape of an interrupted write on a preallocated, zeroed file:
//    the frame runs past the end of the file; or a 512-byte sector's share of the
//    record is all zeros (etcd's rule: sectors reach the disk whole, in any order);
//    or the record ends in a zero byte and nothing but zeros follows it (the write
//    stopped at some byte and the rest of the file is still preallocated zeros).
// Everything else is corruption, reported with the file and offset.
//
// A zero length word ends the segment (the preallocated tail is zeros) unless
// record bytes follow it in the same sector, which no interrupted write can leave.
// Padding bytes and the record type are not covered by the CRC (as in etcd).

import { crc32cUpdate } from '../pkg/crc32c.js';
import { type DiskFile, readFully } from './disk.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES, lengthWordPadBytes, lengthWordRecBytes, padBytesFor } from './frame.js';
import { RecordType, type WalRecord, decodeRecord } from './walpb.js';

export const SECTOR_BYTES = 512;
const CHUNK_BYTES = 4 * 1024 * 1024;
/** room in front of a chunk for a frame cut by the chunk boundary */
const CARRY_BYTES = 64 * 1024;

/**
 * Sequential buffered reader over one segment file. While one chunk is decoded
 * the next is already being read, so decoding overlaps the disk. Two chunk
 * buffers take turns (nothing keeps views into a chunk once it is consumed: see
 * RecordSink), each with room in front for the unread tail of the previous chunk,
 * so moving on to the next chunk copies at most a partial frame.
 */
class SegmentBuffer {
  buf: Uint8Array = new Uint8Array(0);
  /** file offset of buf[0] */
  start = 0;
  /** the chunk right after buf, being read ahead into spare[CARRY_BYTES...] */
  private ahead: { readonly pos: number; readonly got: Promise<number> } | undefined;
  private spare = new Uint8Array(0);
  private current = new Uint8Array(0);

  /** a chunk no larger than the file: a short segment (a new one, a test's) needs no 4 MiB of zeroed buffers */
  private readonly chunkBytes: number;

  constructor(
    readonly file: DiskFile,
    readonly size: number,
  ) {
    this.chunkBytes = Math.min(CHUNK_BYTES, size);
  }

  /** Index in buf of file offset `pos` when [pos, pos+n) (clipped to the file) is buffered, else -1. */
  at(pos: number, n: number): number {
    const want = Math.min(n, this.size - pos);
    return pos >= this.start && pos + want <= this.start + this.buf.length ? pos - this.start : -1;
  }

  /** Reads so that [pos, pos+n) (clipped to the file) is buffered; returns the index of `pos` in buf. */
  async load(pos: number, n: number): Promise<number> {
    const want = Math.min(n, this.size - pos);
    const bufEnd = this.start + this.buf.length;
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead !== undefined) {
      const got = await ahead.got;
      const keep = bufEnd - pos;
      if (ahead.pos === bufEnd && pos >= this.start && keep <= CARRY_BYTES && keep + got >= want) {
        // the unread tail of this chunk goes right in front of the chunk read ahead
        const next = this.spare;
        next.set(this.buf.subarray(pos - this.start), CARRY_BYTES - keep);
        this.buf = next.subarray(CARRY_BYTES - keep, CARRY_BYTES + got);
        this.start = pos;
        this.spare = this.current;
        this.current = next;
        this.readAhead();
        return 0;
      }
    }
    if (want <= this.chunkBytes) {
      // start over at pos in our own buffers; a file that fits in one chunk needs no spare to read ahead into
      if (this.current.length === 0) {
        this.current = new Uint8Array(CARRY_BYTES + this.chunkBytes);
        if (this.chunkBytes < this.size) this.spare = new Uint8Array(CARRY_BYTES + this.chunkBytes);
      }
      const len = Math.min(this.chunkBytes, this.size - pos);
      const got = await readFully(this.file, this.current, CARRY_BYTES, len, pos);
      this.buf = this.current.subarray(CARRY_BYTES, CARRY_BYTES + got);
    } else {
      // a frame larger than a chunk: a one-off buffer of its size
      const big = new Uint8Array(want);
      const got = await readFully(this.file, big, 0, want, pos);
      this.buf = big.subarray(0, got);
    }
    this.start = pos;
    this.readAhead();
    return 0;
  }

  /** Waits for a read still in flight, so the file can be closed. */
  async settle(): Promise<void> {
    const ahead = this.ahead;
    this.ahead = undefined;
    await ahead?.got.catch(() => undefined);
  }

  private readAhead(): void {
    const pos = this.start + this.buf.length;
    if (pos >= this.size || this.spare.length === 0) return;
    const len = Math.min(this.chunkBytes, this.size - pos);
    const got = readFully(this.file, this.spare, CARRY_BYTES, len, pos);
    got.catch(() => undefined); // a failure surfaces when the chunk is needed
    this.ahead = { pos, got };
  }

  /** How many of the n bytes at file offset `pos` are buffered (after at() or load()). */
  avail(pos: number, n: number): number {
    return Math.max(0, Math.min(n, this.start + this.buf.length - pos));
  }

  /** True when every byte from `pos` to the end of the file is zero. */
  async zerosFrom(pos: number): Promise<boolean> {
    return (await nonZeroBytesFrom(this.file, pos, this.size)) === 0;
  }
}

/** Counts non-zero bytes in file [pos, end); reads in chunks. */
export async function nonZeroBytesFrom(file: DiskFile, pos: number, end: number): Promise<number> {
  const chunk = new Uint8Array(Math.min(CHUNK_BYTES, Math.max(0, end - pos)));
  let count = 0;
  while (pos < end) {
    const len = Math.min(chunk.length, end - pos);
    const got = await readFully(file, chunk, 0, len, pos);
    if (got === 0) break;
    const view = chunk.subarray(0, got);
    if (!isAllZero(view)) for (const b of view) if (b !== 0) count++;
    pos += got;
  }
  return count;
}

const ZEROS = new Uint8Array(64 * 1024);

export function isAllZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i += ZEROS.length) {
    const part = b.subarray(i, Math.min(b.length, i + ZEROS.length));
    if (Buffer.compare(part, ZEROS.subarray(0, part.length)) !== 0) return false;
  }
  return true;
}

export type SegmentEnd =
  /** end of file, or a zero length word, right after the last good record */
  | { readonly kind: 'clean' }
  /** a torn write at `offset`; the caller truncates there */
  | { readonly kind: 'torn'; readonly reason: string }
  /** damage that is not a torn tail */
  | { readonly kind: 'corrupt'; readonly reason: string };

export interface SegmentResult {
  readonly end: SegmentEnd;
  /** file offset just past the last good record (where appending resumes) */
  readonly validEnd: number;
  /** the rolling CRC after the last good record */
  readonly crc: number;
}

/**
 * Receives each good record of a segment: its type and its data as buf[start, end)
 * (empty for crc records). The bytes are only valid during the call.
 */
export type RecordSink = (type: RecordType, buf: Uint8Array, start: number, end: number, offset: number) => void;

/**
 * Decodes one segment, passing each good record to `onRecord` in order. `crcIn` is
 * the rolling CRC carried in from the previous segment (0 for the first one read).
 */
export async function readSegment(
  file: DiskFile,
  size: number,
  isLast: boolean,
  crcIn: number,
  onRecord: RecordSink,
): Promise<SegmentResult> {
  const sb = new SegmentBuffer(file, size);
  const st: ScanState = { pos: 0, crc: crcIn };
  try {
    for (;;) {
      scanBuffered(sb, st, onRecord);
      const end = await step(sb, st, isLast, onRecord);
      if (end !== undefined) return { end, validEnd: st.pos, crc: st.crc };
    }
  } finally {
    await sb.settle();
  }
}

interface ScanState {
  /** file offset of the next frame */
  pos: number;
  /** rolling CRC after the last good record */
  crc: number;
}

/**
 * The hot loop: consumes every frame that is fully buffered, in etcd's usual
 * layout and checks out, without allocating. It stops at the first frame that is
 * not in memory yet or looks in any way unusual, and leaves that one to step().
 */
function scanBuffered(sb: SegmentBuffer, st: ScanState, onRecord: RecordSink): void {
  const buf = sb.buf;
  const base = sb.start;
  const bufEnd = buf.length;
  let pos = st.pos;
  let crc = st.crc;
  for (;;) {
    const at = pos - base;
    if (at < 0 || at + FRAME_HEADER_BYTES > bufEnd) break;
    if ((buf[at + 4]! | buf[at + 5]! | buf[at + 6]!) !== 0) break;
    const recBytes = (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
    if (recBytes < 4 || recBytes > MAX_RECORD_BYTES) break;
    const pad = (8 - (recBytes & 7)) & 7;
    if (buf[at + 7] !== (pad === 0 ? 0 : 0x80 | pad)) break;
    const r = at + FRAME_HEADER_BYTES;
    const recEnd = r + recBytes;
    if (recEnd + pad > bufEnd) break;
    const type = buf[r + 1]!;
    if (buf[r] !== 0x08 || buf[r + 2] !== 0x10 || type < RecordType.Metadata || type > RecordType.Snapshot) break;
    // crc: a uint32 varint of at most 5 bytes (Go keeps the low 32 bits)
    let p = r + 3;
    let stored = -1;
    for (let shift = 0, v = 0; shift < 35 && p < recEnd; shift += 7) {
      const b = buf[p++]!;
      v |= (b & 0x7f) << shift;
      if (b < 0x80) {
        stored = v >>> 0;
        break;
      }
    }
    if (stored < 0) break;
    let dataStart = recEnd;
    if (p < recEnd) {
      if (buf[p++] !== 0x1a) break;
      // data length: below MAX_RECORD_BYTES, so at most 4 bytes
      let len = -1;
      for (let shift = 0, l = 0; shift < 28 && p < recEnd; shift += 7) {
        const b = buf[p++]!;
        l |= (b & 0x7f) << shift;
        if (b < 0x80) {
          len = l;
          break;
        }
      }
      if (len < 0 || p + len !== recEnd) break;
      dataStart = p;
    }
    if (type === RecordType.Crc) {
      if (dataStart !== recEnd || (crc !== 0 && stored !== crc)) break;
      crc = stored;
    } else {
      const next = crc32cUpdate(crc, buf, dataStart, recEnd);
      if (next !== stored) break;
      crc = next;
    }
    onRecord(type as RecordType, buf, dataStart, recEnd, pos);
    pos += FRAME_HEADER_BYTES + recBytes + pad;
  }
  st.pos = pos;
  st.crc = crc;
}

/**
 * Handles the frame at st.pos with every check spelled out: reads it in if
 * needed, and decides between a clean end, a torn tail, corruption, or a good
 * record (which it passes on, returning undefined so scanning continues).
 */
async function step(sb: SegmentBuffer, st: ScanState, isLast: boolean, onRecord: RecordSink): Promise<SegmentEnd | undefined> {
  const pos = st.pos;
  let at = sb.at(pos, FRAME_HEADER_BYTES);
  if (at < 0) at = await sb.load(pos, FRAME_HEADER_BYTES);
  const headAvail = sb.avail(pos, FRAME_HEADER_BYTES);
  if (headAvail === 0) return { kind: 'clean' };
  if (headAvail < FRAME_HEADER_BYTES) {
    // a partial length word can only be a write cut short at the end of the file
    return isLast ? { kind: 'torn', reason: 'partial length word at end of file' } : corrupt('partial length word');
  }
  const recBytes = lengthWordRecBytes(sb.buf, at);
  const padBytes = lengthWordPadBytes(sb.buf, at);
  if (isAllZero(sb.buf.subarray(at, at + FRAME_HEADER_BYTES))) {
    // the preallocated zeros after the last record, or a write whose first sector
    // never landed (then the rest of that sector is zero too); a zero length word
    // with record bytes right behind it is damage
    const restOfSector = SECTOR_BYTES - ((pos + FRAME_HEADER_BYTES) % SECTOR_BYTES);
    if (restOfSector === SECTOR_BYTES) return { kind: 'clean' };
    let r = sb.at(pos + FRAME_HEADER_BYTES, restOfSector);
    if (r < 0) r = await sb.load(pos + FRAME_HEADER_BYTES, restOfSector);
    const rest = sb.buf.subarray(r, r + sb.avail(pos + FRAME_HEADER_BYTES, restOfSector));
    return isAllZero(rest) ? { kind: 'clean' } : corrupt('zero length word in front of record data');
  }
  const frameBytes = recBytes + padBytes;
  if (recBytes > MAX_RECORD_BYTES || pos + FRAME_HEADER_BYTES + frameBytes > sb.size) {
    const why = recBytes > MAX_RECORD_BYTES ? `record length ${recBytes} over the limit` : 'frame runs past the end of the file';
    return classify(sb, pos, recBytes, isLast, st.crc, why);
  }
  let r = sb.at(pos + FRAME_HEADER_BYTES, frameBytes);
  if (r < 0) r = await sb.load(pos + FRAME_HEADER_BYTES, frameBytes);
  const buf = sb.buf;
  let rec: WalRecord;
  try {
    rec = decodeRecord(buf, r, r + recBytes);
  } catch (err) {
    return classify(sb, pos, recBytes, isLast, st.crc, `undecodable record (${(err as Error).message})`);
  }
  const dataStart = rec.data === undefined ? r + recBytes : rec.data.byteOffset - buf.byteOffset;
  const dataEnd = rec.data === undefined ? r + recBytes : dataStart + rec.data.length;
  if (rec.type === RecordType.Crc) {
    // the first record of each segment: the CRC carried over from the previous one
    if (st.crc !== 0 && rec.crc !== st.crc) {
      return corrupt(`crc record mismatch (have ${hex(st.crc)}, record says ${hex(rec.crc)})`);
    }
    st.crc = rec.crc;
  } else {
    const next = crc32cUpdate(st.crc, buf, dataStart, dataEnd);
    if (rec.crc !== next) return classify(sb, pos, recBytes, isLast, st.crc, 'crc mismatch');
    st.crc = next;
  }
  if (padBytes !== padBytesFor(recBytes)) {
    // a sound record behind a length word whose padding bits are wrong: a flipped
    // bit, not a torn write, and following it would misalign every later frame
    return corrupt(`length word has ${padBytes} padding bytes for a ${recBytes}-byte record`);
  }
  onRecord(rec.type, buf, dataStart, dataEnd, pos);
  st.pos = pos + FRAME_HEADER_BYTES + frameBytes;
  return undefined;
}

function corrupt(reason: string): SegmentEnd {
  return { kind: 'corrupt', reason };
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

/** Torn write or corruption? See the rules at the top of this file. */
async function classify(
  sb: SegmentBuffer,
  pos: number,
  recBytes: number,
  isLast: boolean,
  crc: number,
  why: string,
): Promise<SegmentEnd> {
  if (!isLast) return corrupt(why);
  const want = Math.min(sb.size - pos - FRAME_HEADER_BYTES, MAX_RECORD_BYTES + 16);
  let at = sb.at(pos + FRAME_HEADER_BYTES, want);
  if (at < 0) at = await sb.load(pos + FRAME_HEADER_BYTES, want);
  const n = sb.avail(pos + FRAME_HEADER_BYTES, want);
  const bytes = sb.buf.subarray(at, at + n);
  if (startsWithValidRecord(bytes, crc)) return corrupt(`${why}, but a complete record follows its length word`);
  if (recBytes > n) return { kind: 'torn', reason: why };
  const rec = bytes.subarray(0, recBytes);
  if (hasZeroSector(rec, pos + FRAME_HEADER_BYTES)) return { kind: 'torn', reason: `${why}, with an unwritten sector` };
  const frameEnd = pos + FRAME_HEADER_BYTES + recBytes;
  if (rec.length > 0 && rec[rec.length - 1] === 0 && (await sb.zerosFrom(frameEnd))) {
    return { kind: 'torn', reason: `${why}, in a write that stopped part way` };
  }
  return corrupt(why);
}

/** Whether any sector-aligned piece of `rec` (which starts at file offset `fileOff`) is all zeros. */
function hasZeroSector(rec: Uint8Array, fileOff: number): boolean {
  let i = 0;
  while (i < rec.length) {
    const len = Math.min(SECTOR_BYTES - ((fileOff + i) % SECTOR_BYTES), rec.length - i);
    if (isAllZero(rec.subarray(i, i + len))) return true;
    i += len;
  }
  return false;
}

/**
 * Whether `bytes` begins with a whole walpb.Record (type, crc, data) whose data
 * checks out against the rolling `crc` — proof the record was written in full.
 */
function startsWithValidRecord(bytes: Uint8Array, crc: number): boolean {
  // type (field 1) and crc (field 2) are varints, data (field 3) is length-delimited;
  // parse just those, in etcd's field order, without trusting the frame length
  let p = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (p >= bytes.length) return undefined;
      const b = bytes[p++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return undefined;
  };
  if (bytes[p++] !== 0x08) return false;
  const type = varint();
  if (type === undefined || type < RecordType.Metadata || type > RecordType.Snapshot || type === RecordType.Crc) return false;
  if (bytes[p++] !== 0x10) return false;
  const recCrc = varint();
  if (recCrc === undefined || bytes[p++] !== 0x1a) return false;
  const len = varint();
  if (len === undefined || p + len > bytes.length) return false;
  return crc32cUpdate(crc, bytes, p, p + len) === recCrc;
}
