// Reads a bbolt 1.3 file (etcd's member/snap/db, or a `snapshot save` file) without
// loading it: the root bucket's directory is read at open, then each bucket's B+tree
// is walked page by page as its entries are consumed.

import { open as openFile, type FileHandle } from 'node:fs/promises';
import { branchElement, checkElementTable, type Fail, type LeafElement, leafElement, leafFlags, leafPair } from './elements.js';
import { BoltFormatError } from './errors.js';
import {
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  decodeMeta,
  FIRST_READ,
  flagName,
  FREELIST_COUNT_OVERFLOW,
  type Meta,
  META_SIZE,
  NO_FREELIST,
  PAGE_HEADER_SIZE,
  PageFlag,
  readPageHeader,
} from './format.js';
import { PageReader } from './page-reader.js';

/** Where a bucket's tree starts: a page of its own, or a leaf page inside its parent's value. */
type BucketRoot =
  | { kind: 'page'; id: bigint }
  /** `holder` is the page of the parent leaf that carries the inline page, for error messages */
  | { kind: 'inline'; page: Buffer; holder: bigint };

interface BucketEntry {
  name: Buffer;
  root: BucketRoot;
}

/** A leaf page of a bucket's tree, its element table checked. */
interface LeafPage {
  /** its id; for an inline bucket, the page of the parent leaf that carries it */
  id: bigint;
  page: Buffer;
  count: number;
}

/** One bucket's key/value pairs as one leaf page holds them. */
export interface BucketBatch {
  readonly bucket: Buffer;
  readonly entries: Array<[key: Buffer, value: Buffer]>;
}

export class BoltFile {
  private constructor(
    private readonly fh: FileHandle,
    private readonly pages: PageReader,
    private readonly meta: Meta,
    private readonly buckets: readonly BucketEntry[],
  ) {}

  get pageSize(): number {
    return this.meta.pageSize;
  }

  /** The transaction id of the meta page in use (the newer valid one). */
  get txid(): bigint {
    return this.meta.txid;
  }

  static async open(path: string): Promise<BoltFile> {
    const fh = await openFile(path, 'r');
    try {
      const size = (await fh.stat()).size;
      const meta = await readMeta(fh, path, size);
      const needed = meta.pgid * BigInt(meta.pageSize);
      if (BigInt(size) < needed) {
        throw new BoltFormatError(path, meta.pgid - 1n, `the file is ${size} bytes but its ${meta.pgid} pages need ${needed} (truncated)`);
      }
      const pages = new PageReader(fh, path, size, meta.pageSize, meta.pgid);
      if (meta.freelist !== NO_FREELIST) await checkFreelist(pages, meta.freelist);
      const buckets: BucketEntry[] = [];
      for await (const leaf of walk(pages, { kind: 'page', id: meta.root }, 'root bucket')) {
        const fail = failAt(path, leaf.id);
        for (let i = 0; i < leaf.count; i++) {
          const elem = leafElement(leaf.page, i, fail);
          if ((elem.flags & BUCKET_LEAF_FLAG) === 0) fail(`the root bucket holds a plain key ${hex(elem.key)}; bbolt keeps only buckets there`);
          buckets.push({ name: Buffer.from(elem.key), root: bucketRoot(elem, leaf.id, fail) });
        }
      }
      checkOrder(buckets.map((b) => b.name), path, meta.root);
      return new BoltFile(fh, pages, meta, buckets);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Top-level bucket names, in bbolt's (byte) order. */
  bucketNames(): Buffer[] {
    return this.buckets.map((b) => b.name);
  }

  /**
   * Every key/value of `bucket` in key order, read page by page. Throws BoltFormatError
   * at the first damaged page, never yields a silently short or reordered sequence.
   */
  async *entries(bucket: Buffer | string): AsyncIterable<[key: Buffer, value: Buffer]> {
    const name = typeof bucket === 'string' ? Buffer.from(bucket) : bucket;
    const b = this.buckets.find((x) => x.name.equals(name));
    if (b === undefined) throw new Error(`${this.pages.file}: no bucket ${JSON.stringify(name.toString())}`);
    const order = { prev: undefined as Buffer | undefined };
    for await (const leaf of walk(this.pages, b.root, `bucket ${JSON.stringify(name.toString())}`)) yield* this.leafEntries(leaf, order);
  }

  /**
   * Every bucket's key/value pairs, bucket by bucket in key order, a leaf page at a time,
   * while checking the whole file as check() does: the iteration throws BoltFormatError
   * at the first damaged page, and at its end if a page is neither reachable nor free.
   * Nothing read is to be trusted before the iteration has ended without an error.
   */
  async *scan(): AsyncIterable<BucketBatch> {
    const tally = new PageTally(this.pages.file, this.meta.pgid);
    const buckets = [{ name: 'root bucket', root: { kind: 'page', id: this.meta.root } as BucketRoot, bucket: undefined as Buffer | undefined }].concat(
      this.buckets.map((b) => ({ name: `bucket ${JSON.stringify(b.name.toString())}`, root: b.root, bucket: b.name })),
    );
    for (const b of buckets) {
      const order = { prev: undefined as Buffer | undefined };
      for await (const leaf of walk(this.pages, b.root, b.name, (id, overflow) => tally.mark(id, overflow, b.name))) {
        // the root bucket's leaves were read at open: walked again here only to be counted
        if (b.bucket !== undefined) yield { bucket: b.bucket, entries: this.leafEntries(leaf, order) };
      }
    }
    if (this.meta.freelist === NO_FREELIST) return; // free pages are not recorded: nothing to compare
    const freelist = await this.pages.page(this.meta.freelist, PageFlag.freelist, 'freelist');
    tally.mark(this.meta.freelist, readPageHeader(freelist).overflow, 'the freelist');
    for (const id of freeIds(freelist, failAt(this.pages.file, this.meta.freelist))) tally.mark(id, 0, 'free');
    tally.checkAll();
  }

  /**
   * bbolt's tx.Check for what a reader can see: every page below the high-water mark is
   * a meta page, the freelist, free, or reached exactly once from the root. A damaged
   * count or child pointer can hide a subtree from entries() without breaking any page
   * on the way; this full walk finds it. Reads every page once.
   */
  async check(): Promise<void> {
    for await (const _ of this.scan());
  }

  /** A leaf page's pairs, checked: plain keys only, each after the one before (`order.prev`). */
  private leafEntries(leaf: LeafPage, order: { prev: Buffer | undefined }): Array<[Buffer, Buffer]> {
    const fail = failAt(this.pages.file, leaf.id);
    const out: Array<[Buffer, Buffer]> = new Array(leaf.count);
    let prev = order.prev;
    for (let i = 0; i < leaf.count; i++) {
      // one pair per element of every page read: leafPair makes no element object
      const [key, value] = leafPair(leaf.page, i, fail);
      if ((leafFlags(leaf.page, i) & BUCKET_LEAF_FLAG) !== 0) fail(`nested bucket ${hex(key)}: etcd's databases have none and this reader does not read them`);
      if (prev !== undefined && Buffer.compare(prev, key) >= 0) fail(`key ${hex(key)} does not sort after ${hex(prev)}`);
      prev = key;
      out[i] = [key, value];
    }
    order.prev = prev;
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function hex(b: Buffer): string {
  return b.length > 40 ? `${b.subarray(0, 40).toString('hex')}…` : b.toString('hex');
}

function failAt(file: string, page: bigint | undefined): Fail {
  return (detail) => {
    throw new BoltFormatError(file, page, detail);
  };
}

function checkOrder(keys: Buffer[], file: string, page: bigint): void {
  for (let i = 1; i < keys.length; i++) {
    if (Buffer.compare(keys[i - 1]!, keys[i]!) >= 0) failAt(file, page)(`bucket names out of order at ${hex(keys[i]!)}`);
  }
}

/** Reads both meta pages and picks the valid one with the higher txid, as bbolt does. */
async function readMeta(fh: FileHandle, path: string, size: number): Promise<Meta> {
  if (size < FIRST_READ) throw new BoltFormatError(path, undefined, `the file is ${size} bytes, too small for a bbolt meta page (${FIRST_READ})`);
  const first = Buffer.alloc(FIRST_READ);
  await fh.read(first, 0, FIRST_READ, 0);
  const m0 = decodeMeta(first, PAGE_HEADER_SIZE);
  // Without a valid meta 0 the page size is unknown; bbolt then assumes the OS page size.
  const pageSize = typeof m0 === 'string' ? DEFAULT_PAGE_SIZE : m0.pageSize;
  let m1: Meta | string = `the file (${size} bytes) ends before it`;
  if (size >= 2 * pageSize) {
    const second = Buffer.alloc(PAGE_HEADER_SIZE + META_SIZE);
    await fh.read(second, 0, second.length, pageSize);
    m1 = decodeMeta(second, PAGE_HEADER_SIZE);
    if (typeof m1 !== 'string' && m1.pageSize !== pageSize) m1 = `page size ${m1.pageSize} differs from meta 0's ${pageSize}`;
  }
  const valid = [m0, m1].filter((m): m is Meta => typeof m !== 'string');
  if (valid.length === 0) throw new BoltFormatError(path, undefined, `no valid meta page (page 0: ${m0 as string}; page 1: ${m1 as string}); not a bbolt database or both metas are damaged`);
  return valid.reduce((a, b) => (b.txid > a.txid ? b : a));
}

/** The freelist page must be one, with its ids inside the page and below the high-water mark. */
async function checkFreelist(pages: PageReader, id: bigint): Promise<void> {
  const page = await pages.page(id, PageFlag.freelist, 'freelist');
  const fail = failAt(pages.file, id);
  for (const free of freeIds(page, fail)) if (free < 2n || free >= pages.highWater) fail(`free page id ${free} outside [2, ${pages.highWater})`);
}

/** The page ids a freelist page lists (its count moves to the first u64 at 0xFFFF). */
function freeIds(page: Buffer, fail: Fail): bigint[] {
  let count = readPageHeader(page).count;
  let at = PAGE_HEADER_SIZE;
  if (count === FREELIST_COUNT_OVERFLOW) {
    const n = page.readBigUInt64LE(at);
    if (n > BigInt(page.length)) fail(`freelist claims ${n} ids, more than the page holds`);
    count = Number(n);
    at += 8;
  }
  if (at + count * 8 > page.length) fail(`freelist of ${count} ids runs past its ${page.length} bytes`);
  return Array.from({ length: count }, (_, i) => page.readBigUInt64LE(at + i * 8));
}

function bucketRoot(elem: LeafElement, page: bigint, fail: Fail): BucketRoot {
  if (elem.value.length < BUCKET_HEADER_SIZE) fail(`bucket ${hex(elem.key)} has a ${elem.value.length}-byte header, bbolt's is ${BUCKET_HEADER_SIZE}`);
  const root = elem.value.readBigUInt64LE(0);
  if (root !== 0n) return { kind: 'page', id: root };
  const inline = Buffer.from(elem.value.subarray(BUCKET_HEADER_SIZE));
  if (inline.length < PAGE_HEADER_SIZE) fail(`inline bucket ${hex(elem.key)} is ${inline.length} bytes, too short for a page`);
  return { kind: 'inline', page: inline, holder: page };
}

/**
 * Which pages a check has reached, and as what: each must be reached exactly once. One
 * slot per page below the high-water mark (the file holds them all, see open()), with
 * numbers rather than bigint keys: it is marked for every page of the file.
 */
class PageTally {
  /** per page: 0 unseen, else the number `labels` gave what reached it */
  private readonly seen: Uint32Array;
  private readonly labels = new Map<string, number>();
  private readonly names: string[] = [];

  constructor(
    private readonly file: string,
    highWater: bigint,
  ) {
    this.seen = new Uint32Array(Number(highWater));
  }

  mark(id: bigint, overflow: number, what: string): void {
    let label = this.labels.get(what);
    if (label === undefined) {
      label = this.names.push(what);
      this.labels.set(what, label);
    }
    const first = Number(id);
    for (let p = first; p <= first + overflow; p++) {
      const prior = this.seen[p]!;
      if (prior !== 0) failAt(this.file, BigInt(p))(`is both ${this.names[prior - 1]!} and ${what}`);
      this.seen[p] = label;
    }
  }

  /** Every page from 2 up to the high-water mark was reached. */
  checkAll(): void {
    const unseen = this.seen.indexOf(0, 2);
    if (unseen >= 0) failAt(this.file, BigInt(unseen))('is neither reachable nor free (a lost subtree?)');
  }
}

/**
 * A bucket's leaf pages in tree order: depth first over branch pages, each page read
 * when reached. A page reached twice (a cycle, or two parents) is an error, so a damaged
 * file cannot make this loop forever.
 */
async function* walk(pages: PageReader, root: BucketRoot, what: string, onPage?: (id: bigint, overflow: number) => void): AsyncGenerator<LeafPage> {
  if (root.kind === 'inline') {
    const fail = failAt(pages.file, root.holder);
    const h = readPageHeader(root.page);
    if (h.flags !== PageFlag.leaf) fail(`inline page of ${what} is ${flagName(h.flags)}, expected leaf`);
    checkElementTable(root.page, h.count, fail);
    yield { id: root.holder, page: root.page, count: h.count };
    return;
  }
  const visited = new Set<bigint>();
  const stack: { id: bigint; page: Buffer; next: number; count: number }[] = [];
  /** Reads page `id`: a branch goes on the stack, a leaf is returned. */
  const enter = async (id: bigint, from: string): Promise<LeafPage | undefined> => {
    if (visited.has(id)) failAt(pages.file, id)(`${from} reaches this page a second time (a cycle or a shared page)`);
    visited.add(id);
    const page = await pages.node(id, `${what} ${from}`);
    const h = readPageHeader(page);
    onPage?.(id, h.overflow);
    const fail = failAt(pages.file, id);
    checkElementTable(page, h.count, fail);
    if (h.flags !== PageFlag.branch) return { id, page, count: h.count };
    if (h.count === 0) fail(`empty branch page in ${what}`);
    stack.push({ id, page, next: 0, count: h.count });
    return undefined;
  };
  const rootLeaf = await enter(root.id, 'root');
  if (rootLeaf !== undefined) yield rootLeaf;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === top.count) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    const leaf = await enter(branchElement(top.page, i, failAt(pages.file, top.id)).child, `child ${i} of branch page ${top.id}`);
    if (leaf !== undefined) yield leaf;
  }
}
