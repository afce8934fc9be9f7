// Writes a bbolt 1.3 file in one streaming pass from buckets and keys that arrive in
// order: leaf pages as keys arrive, branch pages above them as nodes fill, small
// buckets inline in the root bucket as bbolt keeps them, then an empty freelist and
// the two meta pages. Memory holds one node per tree level, the batch of keys at hand
// and a MiB or two of pages on their way to the file, not the data.

import { open as openFile, rm } from 'node:fs/promises';
import {
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  encodeMeta,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  PAGE_HEADER_SIZE,
  PageFlag,
  writePageHeader,
} from './format.js';
import { fileOutput, PageSink } from './page-sink.js';
import { type BoltKey, compareKeys, keyHex, keyLength } from './key.js';
import { type Element, encodeInlineLeaf, nodeSize, TreeBuilder } from './tree-builder.js';

/** A key/value pair; a key may be a string of its hex digits (key.ts). */
export type Entry = readonly [key: BoltKey, value: Buffer];

export interface BucketSource {
  name: Buffer;
  /**
   * key/value pairs in strictly increasing key order, in batches: a batch is encoded in
   * one go, so the work per key costs no promise (a LevelDB iterator's nextv gives such
   * batches). The writer holds on to the buffers until their pages are laid out: they
   * must not change afterwards.
   */
  entries: AsyncIterable<readonly Entry[]>;
}

export interface WriteOptions {
  /** default 4096, what etcd gets on Linux */
  pageSize?: number;
  /** how full a split leaves a node; etcd's defrag copies with 0.9 */
  fillPercent?: number;
}

export interface WriteResult {
  /** bytes in the file: every page up to the high-water mark */
  size: number;
  /** keys written over all buckets */
  keys: number;
}

/** The transaction id both meta pages carry, as tx.WriteTo copies one meta into both. */
const TXID = 1n;

/**
 * Writes `buckets` (in strictly increasing name order) to a new bbolt file at `path`.
 * Bad input (unsorted or empty keys, oversized keys or values) throws an Error naming
 * the bucket and key; the partial file is removed then.
 */
export async function writeBolt(path: string, buckets: AsyncIterable<BucketSource>, opts: WriteOptions = {}): Promise<WriteResult> {
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  // bbolt clamps the fill percent to [0.1, 1.0].
  const fill = Math.min(1, Math.max(0.1, opts.fillPercent ?? 0.9));
  const fh = await openFile(path, 'wx');
  const sink = new PageSink(fileOutput(fh), pageSize);
  try {
    const root = new TreeBuilder(sink, fill);
    const keys = await writeBuckets(sink, buckets, fill, (name, value) => root.add(name, value, BUCKET_LEAF_FLAG));
    const rootId = root.finish();
    const freelist = sink.allocate(1);
    freelist.buf.fill(0, freelist.at + 8, freelist.at + pageSize);
    freelist.buf.writeUInt16LE(PageFlag.freelist, freelist.at + 8);
    await sink.flush();
    const highWater = sink.highWater;
    const metas = metaPages(pageSize, rootId, freelist.id, highWater);
    await fh.write(metas, 0, metas.length, 0);
    await fh.sync();
    await fh.close();
    return { size: Number(highWater) * pageSize, keys };
  } catch (err) {
    await sink.settle();
    await fh.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
}

/** bbolt's two meta pages, both naming the same root, freelist and high-water mark at writeBolt's transaction. */
export function metaPages(pageSize: number, root: bigint, freelist: bigint, pgid: bigint): Buffer {
  const metas = Buffer.alloc(2 * pageSize);
  for (const id of [0, 1]) {
    writePageHeader(metas, { id: BigInt(id), flags: PageFlag.meta, count: 0, overflow: 0 }, id * pageSize);
    encodeMeta({ pageSize, flags: 0, root, sequence: 0n, freelist, pgid, txid: TXID }, metas, id * pageSize + PAGE_HEADER_SIZE);
  }
  return metas;
}

/**
 * Writes each bucket's tree through `sink` and hands its name and value in the root
 * bucket to `addToRoot`, in order; returns the keys written.
 */
export async function writeBuckets(sink: PageSink, buckets: AsyncIterable<BucketSource>, fill: number, addToRoot: (name: Buffer, value: Buffer) => void): Promise<number> {
  let prevName: Buffer | undefined;
  let keys = 0;
  for await (const b of buckets) {
    checkKey(b.name, prevName, 'bucket name', 'the root bucket');
    prevName = b.name;
    const { value, count } = await writeBucket(sink, b, fill);
    keys += count;
    addToRoot(b.name, value);
  }
  return keys;
}

function checkKey(key: BoltKey, prev: BoltKey | undefined, what: string, where: string): void {
  const len = keyLength(key);
  if (len === 0) throw new Error(`bbolt: empty ${what} in ${where} (bbolt requires a key)`);
  if (len > MAX_KEY_SIZE) throw new Error(`bbolt: ${what} of ${len} bytes in ${where} exceeds bbolt's ${MAX_KEY_SIZE}`);
  if (prev !== undefined && compareKeys(prev, key) >= 0) {
    throw new Error(`bbolt: ${what} ${keyHex(key)} in ${where} does not sort after ${keyHex(prev)}`);
  }
}

/**
 * Writes one bucket's tree and returns its value in the root bucket: a header pointing
 * at its root page, or, while it stays small enough (bucket.inlineable: a quarter page),
 * the header followed by its single leaf page inline.
 */
async function writeBucket(sink: PageSink, b: BucketSource, fill: number): Promise<{ value: Buffer; count: number }> {
  const where = `bucket ${JSON.stringify(b.name.toString())}`;
  const maxInline = sink.pageSize / 4;
  let inline: Element[] | undefined = [];
  let tree: TreeBuilder | undefined;
  let prev: BoltKey | undefined;
  let count = 0;
  for await (const batch of b.entries) {
    for (const [key, value] of batch) {
      checkKey(key, prev, 'key', where);
      if (value.length > MAX_VALUE_SIZE) throw new Error(`bbolt: value of ${value.length} bytes for key ${keyHex(key)} in ${where} exceeds bbolt's ${MAX_VALUE_SIZE}`);
      prev = key;
      count++;
      if (inline !== undefined) {
        inline.push({ key, value, flagsOrChild: 0 });
        if (nodeSize(inline) <= maxInline) continue;
        tree = new TreeBuilder(sink, fill);
        for (const e of inline) tree.add(e.key, e.value);
        inline = undefined;
      } else tree!.add(key, value);
    }
    await sink.drain();
  }
  const header = Buffer.alloc(BUCKET_HEADER_SIZE);
  if (inline !== undefined) return { value: Buffer.concat([header, encodeInlineLeaf(inline)]), count };
  header.writeBigUInt64LE(tree!.finish(), 0);
  return { value: header, count };
}
