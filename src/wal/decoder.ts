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

import { crc32cUpdate } from './crc32c.js';
import { type DiskFile, readFully } from './disk.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES, padBytesFor, readLengthWord } from './frame.js';
import { RecordType, type WalRecord, decodeRecord } from './walpb.js';

export const SECTOR_BYTES = 512;
const CHUNK_BYTES = 4 * 1024 * 1024;

/** Sequential buffered reader over one segment file. */
class SegmentBuffer {
  buf = new Uint8Array(0);
  /** file offset of buf[0] */
  start = 0;

  constructor(
    readonly file: DiskFile,
    readonly size: number,
  ) {}

  /**
   * Makes file bytes [pos, pos+n) available in buf, or as many of them as the file
   * holds; returns the index of `pos` in buf and how many bytes are available.
   */
  async ensure(pos: number, n: number): Promise<{ at: number; avail: number }> {
    const want = Math.min(n, this.size - pos);
    if (pos >= this.start && pos + want <= this.start + this.buf.length) {
      return { at: pos - this.start, avail: want };
    }
    const len = Math.min(Math.max(want, CHUNK_BYTES), this.size - pos);
    const next = new Uint8Array(len);
    const got = await readFully(this.file, next, 0, len, pos);
    this.buf = next.subarray(0, got);
    this.start = pos;
    return { at: 0, avail: Math.min(want, got) };
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
 * Decodes one segment, calling `onRecord` for each good record in order. `data`
 * of the record passed to onRecord is a view that is only valid during the call.
 * `crc` is the rolling CRC carried in from the previous segment (0 for the first
 * segment read).
 */
export async function readSegment(
  file: DiskFile,
  size: number,
  isLast: boolean,
  crcIn: number,
  onRecord: (rec: WalRecord, offset: number) => void,
): Promise<SegmentResult> {
  const sb = new SegmentBuffer(file, size);
  let crc = crcIn;
  let pos = 0;
  const result = (end: SegmentEnd): SegmentResult => ({ end, validEnd: pos, crc });

  for (;;) {
    const head = await sb.ensure(pos, FRAME_HEADER_BYTES);
    if (head.avail === 0) return result({ kind: 'clean' });
    if (head.avail < FRAME_HEADER_BYTES) {
      // a partial length word can only be a write cut short at the end of the file
      return result(isLast ? { kind: 'torn', reason: 'partial length word at end of file' } : corrupt('partial length word'));
    }
    const { recBytes, padBytes } = readLengthWord(sb.buf, head.at);
    if (recBytes === 0 && padBytes === 0 && isAllZero(sb.buf.subarray(head.at, head.at + 8))) {
      // the preallocated zeros after the last record, or a write whose first sector
      // never landed (then the rest of that sector is zero too); a zero length word
      // with record bytes right behind it is damage
      const restOfSector = SECTOR_BYTES - ((pos + FRAME_HEADER_BYTES) % SECTOR_BYTES);
      if (restOfSector === SECTOR_BYTES) return result({ kind: 'clean' });
      const rest = await sb.ensure(pos + FRAME_HEADER_BYTES, restOfSector);
      if (isAllZero(sb.buf.subarray(rest.at, rest.at + rest.avail))) return result({ kind: 'clean' });
      return result(corrupt('zero length word in front of record data'));
    }
    const frameBytes = recBytes + padBytes;
    if (recBytes > MAX_RECORD_BYTES || pos + FRAME_HEADER_BYTES + frameBytes > size) {
      const why = recBytes > MAX_RECORD_BYTES ? `record length ${recBytes} over the limit` : 'frame runs past the end of the file';
      return result(await classify(sb, pos, recBytes, isLast, crc, why));
    }
    const body = await sb.ensure(pos + FRAME_HEADER_BYTES, frameBytes);
    const recStart = body.at;
    const recEnd = body.at + recBytes;
    let rec: WalRecord;
    try {
      rec = decodeRecord(sb.buf, recStart, recEnd);
    } catch (err) {
      return result(await classify(sb, pos, recBytes, isLast, crc, `undecodable record (${(err as Error).message})`));
    }
    if (rec.type === RecordType.Crc) {
      // the first record of each segment: the CRC carried over from the previous one
      if (crc !== 0 && rec.crc !== crc) return result(corrupt(`crc record mismatch (have ${hex(crc)}, record says ${hex(rec.crc)})`));
      crc = rec.crc;
    } else {
      const next = rec.data === undefined ? crc : crc32cUpdate(crc, rec.data);
      if (rec.crc !== next) {
        return result(await classify(sb, pos, recBytes, isLast, crc, 'crc mismatch'));
      }
      crc = next;
    }
    if (padBytes !== padBytesFor(recBytes)) {
      // a sound record behind a length word whose padding bits are wrong: a flipped
      // bit, not a torn write, and following it would misalign every later frame
      return result(corrupt(`length word has ${padBytes} padding bytes for a ${recBytes}-byte record`));
    }
    onRecord(rec, pos);
    pos += FRAME_HEADER_BYTES + frameBytes;
  }
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
  const avail = sb.size - pos - FRAME_HEADER_BYTES;
  const { at, avail: n } = await sb.ensure(pos + FRAME_HEADER_BYTES, Math.min(avail, MAX_RECORD_BYTES + 16));
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
