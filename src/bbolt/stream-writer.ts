// Writes a bbolt file front to back in the layout planStreamLayout fixed beforehand, for
// a reader that takes the bytes in order as they come (a client's snapshot stream): the
// meta pages first, then each bucket's pages as TreeBuilder cuts them, then the unused
// pages as free ones, the root bucket's node and the freelist.

import { BUCKET_LEAF_FLAG, FREELIST_COUNT_OVERFLOW, PAGE_HEADER_SIZE, PageFlag, writePageHeader } from './format.js';
import { PageSink } from './page-sink.js';
import type { StreamLayout } from './stream-layout.js';
import { type Element, encodeNodeInto } from './tree-builder.js';
import { type BucketSource, metaPages, type WriteResult, writeBuckets } from './writer.js';

export interface StreamResult extends WriteResult {
  /** pages the layout set aside that the trees did not need */
  freePages: number;
}

/** Takes the file's bytes in order; resolves when it can take more. */
export type SequentialOutput = (bufs: Buffer[]) => Promise<void>;

/** Free pages go out in pieces of this many bytes of zeros. */
const ZEROS = Buffer.alloc(1 << 20);

/**
 * Writes `buckets` (in strictly increasing name order) to `out` as a bbolt file of exactly
 * `layout.size` bytes. Throws when the trees outgrow the layout (its sizes were not an
 * upper bound), having sent part of the file: the reader must then drop what it got.
 */
export async function streamBolt(layout: StreamLayout, buckets: AsyncIterable<BucketSource>, out: SequentialOutput): Promise<StreamResult> {
  const { pageSize } = layout;
  let sent = 0;
  const send = async (bufs: Buffer[], position = sent): Promise<void> => {
    if (position !== sent) throw new Error(`bbolt: page bytes at ${position} sent at ${sent}`);
    sent += bufs.reduce((n, b) => n + b.length, 0);
    await out(bufs);
  };
  await send([metaPages(pageSize, BigInt(layout.rootId), BigInt(layout.freelistId), BigInt(layout.pages))]);
  const sink = new PageSink(send, pageSize);
  const root: Element[] = [];
  // fill 1.0: the bound's cut (stream-layout.ts)
  const keys = await writeBuckets(sink, buckets, 1, (key, value) => root.push({ key, value, flagsOrChild: BUCKET_LEAF_FLAG }));
  await sink.flush();
  const used = Number(sink.highWater);
  if (used > layout.rootId) throw new Error(`bbolt: the buckets took ${used - 2} pages, past the ${layout.rootId - 2} their sizes allowed`);
  for (let at = used * pageSize; at < layout.rootId * pageSize; ) {
    const n = Math.min(ZEROS.length, layout.rootId * pageSize - at);
    await send([ZEROS.subarray(0, n)]);
    at += n;
  }
  const tail = Buffer.alloc((layout.rootPages + layout.freelistPages) * pageSize);
  tail.writeBigUInt64LE(BigInt(layout.rootId), 0);
  encodeNodeInto(tail, 0, layout.rootPages * pageSize, root, false, layout.rootPages);
  encodeFreelist(tail, layout.rootPages * pageSize, layout, used);
  await send([tail]);
  if (sent !== layout.size) throw new Error(`bbolt: sent ${sent} bytes of a ${layout.size}-byte layout`);
  return { size: layout.size, keys, freePages: layout.rootId - used };
}

/** The freelist page at `at` of `buf`: the pages from `used` up to the root's are free. */
function encodeFreelist(buf: Buffer, at: number, layout: StreamLayout, used: number): void {
  const count = layout.rootId - used;
  const overflowCount = count >= FREELIST_COUNT_OVERFLOW;
  writePageHeader(buf, { id: BigInt(layout.freelistId), flags: PageFlag.freelist, count: overflowCount ? FREELIST_COUNT_OVERFLOW : count, overflow: layout.freelistPages - 1 }, at);
  let off = at + PAGE_HEADER_SIZE;
  if (overflowCount) {
    buf.writeBigUInt64LE(BigInt(count), off);
    off += 8;
  }
  for (let id = used; id < layout.rootId; id++, off += 8) buf.writeBigUInt64LE(BigInt(id), off);
}
