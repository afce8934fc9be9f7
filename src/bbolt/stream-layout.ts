// A bbolt file laid out so that it can be sent while it is written. bbolt's meta pages
// come first and name the root bucket's page, the freelist's and the high-water mark,
// which a file written front to back learns only at its end; a stream to a client also
// says up front how many bytes will follow. So the layout is fixed before the first
// key is read, from the buckets' sizes, to an upper bound the trees cannot outgrow:
//
//   meta 0, meta 1 | the buckets' pages, as they are built | free pages | root | freelist
//
// The root bucket's page and the freelist sit at the end at ids known in advance; the
// pages the trees did not need between them are free (the freelist lists them), so bbolt
// sees a database with some free space, as every live bbolt file has.
//
// The bound: nodes are cut as TreeBuilder cuts them with a fill of 1.0 (bbolt's
// splitTwo at a threshold of one page). While no element exceeds a quarter page every
// node fits one page, and each node cut at the threshold is fuller than a page less one
// element, so a level of elements totalling E bytes takes fewer than
// (E + 2 headers) / (page − header − the largest element) + 2 nodes; its parent level
// has one element (the node's first key) per node. Buckets with larger elements are not
// laid out this way.

import { BUCKET_HEADER_SIZE, ELEMENT_SIZE, PAGE_HEADER_SIZE } from './format.js';

/** One bucket's size, as its store counted it; upper bounds are fine, less is not. */
export interface BucketSize {
  /** the bucket's name in the root bucket */
  readonly name: Buffer;
  /** key/value pairs */
  readonly records: number;
  /** key and value bytes of every pair */
  readonly dataBytes: number;
  /** the largest pair's key and value bytes (any bound above it) */
  readonly maxPairBytes: number;
  /** the longest key's bytes (any bound above it): a branch element holds one */
  readonly maxKeyBytes: number;
}

export interface StreamLayout {
  readonly pageSize: number;
  /** ids below this hold the buckets' trees; the ones they leave unused are free */
  readonly rootId: number;
  readonly rootPages: number;
  readonly freelistId: number;
  readonly freelistPages: number;
  /** the high-water mark: every page of the file */
  readonly pages: number;
  /** bytes in the file */
  readonly size: number;
}

/** The pages one bucket's tree takes at most (0: it stays inline in the root bucket), or undefined past the bound's reach. */
export function bucketPagesBound(b: BucketSize, pageSize: number): number | undefined {
  const elements = b.dataBytes + b.records * ELEMENT_SIZE;
  // writeBolt keeps a bucket inline while its page is at most a quarter page
  if (PAGE_HEADER_SIZE + elements <= pageSize / 4) return 0;
  let maxElement = ELEMENT_SIZE + b.maxPairBytes;
  if (maxElement > (pageSize - PAGE_HEADER_SIZE) / 4) return undefined;
  let total = 0;
  for (let bytes = elements; ; ) {
    const nodes = PAGE_HEADER_SIZE + bytes < pageSize ? 1 : Math.floor((bytes + 2 * PAGE_HEADER_SIZE) / (pageSize - PAGE_HEADER_SIZE - maxElement)) + 2;
    total += nodes;
    if (nodes === 1) return total;
    // the level above: an element per node, holding the node's first key
    maxElement = ELEMENT_SIZE + b.maxKeyBytes;
    bytes = nodes * maxElement;
  }
}

/** The layout for `buckets`, or undefined when one of them has elements too large for the bound. */
export function planStreamLayout(buckets: readonly BucketSize[], pageSize: number): StreamLayout | undefined {
  let treePages = 0;
  // the root bucket's one node: per bucket its name and header, and an inline bucket's page
  let rootBytes = PAGE_HEADER_SIZE;
  for (const b of buckets) {
    const pages = bucketPagesBound(b, pageSize);
    if (pages === undefined) return undefined;
    treePages += pages;
    const inlinePage = Math.min(PAGE_HEADER_SIZE + b.dataBytes + b.records * ELEMENT_SIZE, pageSize / 4);
    rootBytes += ELEMENT_SIZE + b.name.length + BUCKET_HEADER_SIZE + inlinePage;
  }
  const rootId = 2 + treePages;
  const rootPages = Math.ceil(rootBytes / pageSize);
  const freelistId = rootId + rootPages;
  // every tree page might go unused: ids 2..rootId-1, plus the count bbolt puts first past 0xFFFF
  const freelistPages = Math.ceil((PAGE_HEADER_SIZE + 8 * (rootId - 2 + 1)) / pageSize);
  const pages = freelistId + freelistPages;
  return { pageSize, rootId, rootPages, freelistId, freelistPages, pages, size: pages * pageSize };
}
