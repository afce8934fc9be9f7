// Revision keys as etcd lays them out in its `key` bucket: 8-byte big-endian main
// revision, '_', 8-byte big-endian sub revision, and a trailing 't' on tombstones.
// Big-endian makes their byte order revision order; the store's LevelDB keys spell them
// in hex digits (below), which keep that order.

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

// ---- a revision record's LevelDB key

/**
 * The `key` bucket's prefix byte in LevelDB. A record's key is this byte and then etcd's
 * revision key written as hex digits: ASCII, which classic-level hands back as a string
 * (a Buffer per key cost a full scan a third of its time), in the same order as the bytes.
 * Stores written before kept the revision key's bytes as they are (LEGACY lengths).
 */
export const KEY_BUCKET_PREFIX = 0x6b;
export const REVISION_DB_KEY_LEN = 1 + 2 * REV_BYTES_LEN;
export const MARKED_REVISION_DB_KEY_LEN = 1 + 2 * MARKED_REV_BYTES_LEN;
/** the lengths of a record key of the old layout: the prefix and the revision key's bytes */
export const LEGACY_REVISION_DB_KEY_LENS: readonly number[] = [1 + REV_BYTES_LEN, 1 + MARKED_REV_BYTES_LEN];

const HEX = '0123456789abcdef';

/** The LevelDB key of a revision record. */
export function revisionDbKey(main: number, sub: number, tombstone: boolean): Buffer {
  const b = Buffer.allocUnsafe(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeRevision(b, 0, main, sub, tombstone);
  return revisionDbKeyOf(b);
}

/** The LevelDB key of the record whose etcd revision key is `revKey`. */
export function revisionDbKeyOf(revKey: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + 2 * revKey.length);
  out[0] = KEY_BUCKET_PREFIX;
  for (let i = 0; i < revKey.length; i++) {
    out[1 + 2 * i] = HEX.charCodeAt(revKey[i]! >> 4);
    out[2 + 2 * i] = HEX.charCodeAt(revKey[i]! & 15);
  }
  return out;
}

/** The smallest LevelDB key of any record at revision `main` or later. */
export function revisionDbKeyFloor(main: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeUint64BE(b, 0, main);
  return revisionDbKeyOf(b);
}

/** The bytes of etcd's revision key that a record's LevelDB key spells in hex (its length in bytes). */
export function revisionKeyLength(dbKeyLength: number): number {
  return (dbKeyLength - 1) >> 1;
}

/** etcd's revision key bytes of a record's LevelDB key. */
export function revisionKeyOf(dbKey: Uint8Array): Buffer {
  return Buffer.from(Buffer.from(dbKey.buffer, dbKey.byteOffset + 1, dbKey.length - 1).toString('latin1'), 'hex');
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The unsigned 64-bit number in the 16 hex digits at `at`; undefined when not hex or above 2^53. */
function readHex64(c: Uint8Array, at: number): number | undefined {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 8; i++) {
    const h = hexDigit(c[at + i]!);
    const l = hexDigit(c[at + 8 + i]!);
    if (h < 0 || l < 0) return undefined;
    hi = hi * 16 + h;
    lo = lo * 16 + l;
  }
  if (hi >= 0x20_0000) return undefined;
  return hi * TWO_32 + lo;
}

/** A key in the key bucket that is no revision record's: the store is corrupt. */
export function malformedRevisionKey(dbKey: Uint8Array): Error {
  return new Error(`mvcc: malformed revision key ${Buffer.from(dbKey).toString('hex')} in the key bucket`);
}

/** parseRevisionDbKey for a key read from the key bucket, which must be well formed. */
export function revisionOfDbKey(dbKey: Uint8Array): { main: number; sub: number; tombstone: boolean } {
  const r = parseRevisionDbKey(dbKey);
  if (!r) throw malformedRevisionKey(dbKey);
  return r;
}

/** Parses a revision record's LevelDB key (prefix included); undefined when malformed. */
export function parseRevisionDbKey(c: Uint8Array): { main: number; sub: number; tombstone: boolean } | undefined {
  const len = c.length;
  if (len !== REVISION_DB_KEY_LEN && len !== MARKED_REVISION_DB_KEY_LEN) return undefined;
  // '_' is 5f, 't' is 74
  if (c[17] !== 0x35 || c[18] !== 0x66) return undefined;
  if (len === MARKED_REVISION_DB_KEY_LEN && (c[35] !== 0x37 || c[36] !== 0x34)) return undefined;
  const main = readHex64(c, 1);
  const sub = readHex64(c, 19);
  if (main === undefined || sub === undefined) return undefined;
  return { main, sub, tombstone: len === MARKED_REVISION_DB_KEY_LEN };
}
