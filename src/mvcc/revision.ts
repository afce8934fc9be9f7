// Revision keys as etcd lays them out in its `key` bucket: 8-byte big-endian main
// revision, '_', 8-byte big-endian sub revision, and a trailing 't' on tombstones.
// Big-endian makes LevelDB's byte order equal to revision order.

import { writeUint64BE } from '../pkg/uint64be.js';

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

export const REV_BYTES_LEN = 17;
export const MARKED_REV_BYTES_LEN = 18;
const SEP = 0x5f; // '_'
const TOMBSTONE = 0x74; // 't'
const TWO_32 = 0x1_0000_0000;

/** Writes the 17-byte revision (plus 't' when `tombstone`) into `out` at `offset`. */
export function writeRevision(out: Uint8Array, offset: number, main: number, sub: number, tombstone: boolean): void {
  writeUint64BE(out, offset, main);
  out[offset + 8] = SEP;
  writeUint64BE(out, offset + 9, sub);
  if (tombstone) out[offset + 17] = TOMBSTONE;
}

export function revisionBytes(main: number, sub: number, tombstone = false): Buffer {
  const b = Buffer.allocUnsafe(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeRevision(b, 0, main, sub, tombstone);
  return b;
}

/** Parses a (possibly tombstone-marked) revision key; undefined when malformed. */
export function parseRevision(
  b: Uint8Array,
  offset = 0,
): { main: number; sub: number; tombstone: boolean } | undefined {
  const len = b.length - offset;
  if (len !== REV_BYTES_LEN && len !== MARKED_REV_BYTES_LEN) return undefined;
  if (b[offset + 8] !== SEP) return undefined;
  if (len === MARKED_REV_BYTES_LEN && b[offset + 17] !== TOMBSTONE) return undefined;
  const main = readUint64BE(b, offset);
  const sub = readUint64BE(b, offset + 9);
  if (main === undefined || sub === undefined) return undefined;
  return { main, sub, tombstone: len === MARKED_REV_BYTES_LEN };
}

export { writeUint64BE };

/** Reads an unsigned 64-bit big-endian integer; undefined above 2^53. */
export function readUint64BE(b: Uint8Array, offset: number): number | undefined {
  const hi = ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0;
  const lo = ((b[offset + 4]! << 24) | (b[offset + 5]! << 16) | (b[offset + 6]! << 8) | b[offset + 7]!) >>> 0;
  if (hi >= 0x20_0000) return undefined;
  return hi * TWO_32 + lo;
}
