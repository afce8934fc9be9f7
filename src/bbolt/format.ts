// The on-disk layout of go.etcd.io/bbolt 1.3 (page.go, db.go, bucket.go, freelist.go),
// little-endian as bbolt writes it on every platform etcd runs on.
//
// A file is a sequence of fixed-size pages; page N starts at N * pageSize. Every page
// starts with a 16-byte header; a page whose content does not fit spills into
// `overflow` further pages that follow it contiguously and carry no header of their own.

/** Page header: id u64, flags u16, count u16, overflow u32. */
export const PAGE_HEADER_SIZE = 16;
/** branchPageElement (pos u32, ksize u32, pgid u64) and leafPageElement (flags, pos, ksize, vsize u32) are both 16 bytes. */
export const ELEMENT_SIZE = 16;
/** A bucket value starts with its root page id (u64) and sequence (u64); 0 as root means inline. */
export const BUCKET_HEADER_SIZE = 16;
/** magic .. checksum: bbolt's `meta` struct, which sits right after the meta page's header. */
export const META_SIZE = 64;
/** The checksum covers the meta struct up to (not including) the checksum field. */
const META_CHECKSUMMED = 56;

export const PageFlag = {
  branch: 0x01,
  leaf: 0x02,
  meta: 0x04,
  freelist: 0x10,
} as const;

/** A leaf element with this flag is a nested bucket: its value is a bucket header. */
export const BUCKET_LEAF_FLAG = 0x01;

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** meta.freelist when the freelist is not persisted (NoFreelistSync); etcd 3.4 always persists it. */
export const NO_FREELIST = 0xffffffffffffffffn;
/** The page count field cannot hold 0xFFFF or more freelist ids: the real count moves to the first u64. */
export const FREELIST_COUNT_OVERFLOW = 0xffff;

/** bbolt's Put limits (bucket.go MaxKeySize, MaxValueSize). */
export const MAX_KEY_SIZE = 32768;
export const MAX_VALUE_SIZE = 2 ** 31 - 2;

/** Page size etcd gets on Linux (os.Getpagesize); bbolt reads it back from the meta. */
export const DEFAULT_PAGE_SIZE = 4096;
/** bbolt's minimum read to find the page size: the first 4 KiB hold meta page 0. */
export const FIRST_READ = 0x1000;

export interface PageHeader {
  id: bigint;
  flags: number;
  count: number;
  overflow: number;
}

export function readPageHeader(buf: Buffer, at = 0): PageHeader {
  return {
    id: buf.readBigUInt64LE(at),
    flags: buf.readUInt16LE(at + 8),
    count: buf.readUInt16LE(at + 10),
    overflow: buf.readUInt32LE(at + 12),
  };
}

export function writePageHeader(buf: Buffer, h: PageHeader, at = 0): void {
  buf.writeBigUInt64LE(h.id, at);
  buf.writeUInt16LE(h.flags, at + 8);
  buf.writeUInt16LE(h.count, at + 10);
  buf.writeUInt32LE(h.overflow, at + 12);
}

/** bbolt's `meta`: where the tree of buckets, the freelist and the end of the file are. */
export interface Meta {
  pageSize: number;
  flags: number;
  /** the root bucket's root page */
  root: bigint;
  sequence: bigint;
  freelist: bigint;
  /** the high-water mark: pages [0, pgid) are in use or free */
  pgid: bigint;
  txid: bigint;
}

/** FNV-1a 64 (Go's hash/fnv New64a), the meta checksum. */
export function fnv1a64(data: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of data) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

/** Decodes the meta struct at `at`; a string says why bbolt would refuse it. */
export function decodeMeta(buf: Buffer, at: number): Meta | string {
  const magic = buf.readUInt32LE(at);
  if (magic !== MAGIC) return `bad magic 0x${magic.toString(16)} (bbolt's is 0x${MAGIC.toString(16)})`;
  const version = buf.readUInt32LE(at + 4);
  if (version !== VERSION) return `version ${version}, bbolt 1.3 writes ${VERSION}`;
  const checksum = buf.readBigUInt64LE(at + META_CHECKSUMMED);
  // bbolt accepts a zero checksum (files from before checksums existed).
  if (checksum !== 0n && checksum !== fnv1a64(buf.subarray(at, at + META_CHECKSUMMED))) return 'checksum mismatch';
  const meta: Meta = {
    pageSize: buf.readUInt32LE(at + 8),
    flags: buf.readUInt32LE(at + 12),
    root: buf.readBigUInt64LE(at + 16),
    sequence: buf.readBigUInt64LE(at + 24),
    freelist: buf.readBigUInt64LE(at + 32),
    pgid: buf.readBigUInt64LE(at + 40),
    txid: buf.readBigUInt64LE(at + 48),
  };
  // A valid checksum over nonsense is still nonsense: refuse what no bbolt writes.
  if (meta.pageSize < 512 || meta.pageSize > 65536 || (meta.pageSize & (meta.pageSize - 1)) !== 0) return `page size ${meta.pageSize}`;
  if (meta.pgid < 4n) return `high-water mark ${meta.pgid} below the 4 pages of an empty database`;
  if (meta.root < 2n || meta.root >= meta.pgid) return `root bucket page ${meta.root} outside [2, ${meta.pgid})`;
  if (meta.freelist !== NO_FREELIST && (meta.freelist < 2n || meta.freelist >= meta.pgid)) return `freelist page ${meta.freelist} outside [2, ${meta.pgid})`;
  return meta;
}

/** Encodes `meta` with its checksum, as bbolt's meta.write does. */
export function encodeMeta(meta: Meta, buf: Buffer, at: number): void {
  buf.writeUInt32LE(MAGIC, at);
  buf.writeUInt32LE(VERSION, at + 4);
  buf.writeUInt32LE(meta.pageSize, at + 8);
  buf.writeUInt32LE(meta.flags, at + 12);
  buf.writeBigUInt64LE(meta.root, at + 16);
  buf.writeBigUInt64LE(meta.sequence, at + 24);
  buf.writeBigUInt64LE(meta.freelist, at + 32);
  buf.writeBigUInt64LE(meta.pgid, at + 40);
  buf.writeBigUInt64LE(meta.txid, at + 48);
  buf.writeBigUInt64LE(fnv1a64(buf.subarray(at, at + META_CHECKSUMMED)), at + META_CHECKSUMMED);
}

export function flagName(flags: number): string {
  switch (flags) {
    case PageFlag.branch:
      return 'branch';
    case PageFlag.leaf:
      return 'leaf';
    case PageFlag.meta:
      return 'meta';
    case PageFlag.freelist:
      return 'freelist';
    default:
      return `unknown<0x${flags.toString(16)}>`;
  }
}
