// Builds one bucket's B+tree bottom-up from keys that arrive in order, splitting nodes
// exactly where bbolt's node.splitTwo would split the same sorted sequence (so a file
// written here is laid out like one etcd's defrag wrote with the same fill percent).
// Each level keeps only the elements of the node it is still filling; a finished node
// is written at once and becomes one element (first key, page id) of the level above.

import { ELEMENT_SIZE, PAGE_HEADER_SIZE, PageFlag } from './format.js';
import { type BoltKey, keyLength, writeKey } from './key.js';
import type { PageSink } from './page-sink.js';

/** bbolt's minKeysPerPage: a split leaves at least this many elements on each side. */
const MIN_KEYS_PER_PAGE = 2;

export interface Element {
  key: BoltKey;
  /** a leaf's value; empty for a branch element */
  value: Buffer;
  /** a leaf element's flags (BUCKET_LEAF_FLAG for a bucket); a branch element's child page id */
  flagsOrChild: number | bigint;
}

const elementSize = (e: Element): number => ELEMENT_SIZE + keyLength(e.key) + e.value.length;

const EMPTY = Buffer.alloc(0);

/**
 * Serializes a node as node.write does into `buf` from `at` up to `end` (its pages, or
 * for an inline bucket's page exactly nodeSize bytes), zeroing what follows the data.
 */
export function encodeNodeInto(buf: Buffer, at: number, end: number, elements: readonly Element[], branch: boolean, pages: number): void {
  // the id (first 8 bytes) is the sink's to write; 0 for an inline page
  buf.writeUInt16LE(branch ? PageFlag.branch : PageFlag.leaf, at + 8);
  buf.writeUInt16LE(elements.length, at + 10);
  buf.writeUInt32LE(pages - 1, at + 12);
  let off = PAGE_HEADER_SIZE + elements.length * ELEMENT_SIZE;
  for (let i = 0; i < elements.length; i++) {
    const e = elements[i]!;
    const elem = at + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    const pos = off - (elem - at);
    if (branch) {
      u32(buf, elem, pos);
      u32(buf, elem + 4, keyLength(e.key));
      buf.writeBigUInt64LE(e.flagsOrChild as bigint, elem + 8);
    } else {
      u32(buf, elem, e.flagsOrChild as number);
      u32(buf, elem + 4, pos);
      u32(buf, elem + 8, keyLength(e.key));
      u32(buf, elem + 12, e.value.length);
    }
    off += writeKey(buf, at + off, e.key);
    buf.set(e.value, at + off);
    off += e.value.length;
  }
  buf.fill(0, at + off, end);
}

/** A little-endian uint32 at `at` (the writer's values are in range: no checks). */
function u32(buf: Buffer, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

/** An inline bucket's page (a leaf): exactly its size, page id 0. */
export function encodeInlineLeaf(elements: readonly Element[]): Buffer {
  const buf = Buffer.alloc(nodeSize(elements));
  encodeNodeInto(buf, 0, buf.length, elements, false, 1);
  return buf;
}

/** The size an inline bucket's page would take (node.size()). */
export function nodeSize(elements: readonly Element[]): number {
  return PAGE_HEADER_SIZE + elements.reduce((n, e) => n + elementSize(e), 0);
}

/** One level of the tree under construction. */
class Level {
  private pending: Element[] = [];
  private pendingSize = PAGE_HEADER_SIZE;
  private parent: Level | undefined;
  /** nodes of this level written so far: a level that ends with one node is the root */
  private written = 0;

  constructor(
    private readonly sink: PageSink,
    private readonly branch: boolean,
    private readonly threshold: number,
  ) {}

  add(e: Element): void {
    this.pending.push(e);
    this.pendingSize += elementSize(e);
    // Cut a node as soon as bbolt's split point is decided (found by the fill threshold,
    // not by running out of elements): later elements cannot move it.
    for (;;) {
      const cut = this.splitPoint();
      if (cut === undefined || !cut.byThreshold) return;
      this.emit(this.pending.splice(0, cut.index));
      this.pendingSize = nodeSize(this.pending);
    }
  }

  /** Writes what is left, then the levels above; returns the root page id. */
  finish(): bigint {
    const nodes: Element[][] = [];
    for (;;) {
      const cut = this.splitPoint();
      if (cut === undefined) break;
      nodes.push(this.pending.splice(0, cut.index));
      this.pendingSize = nodeSize(this.pending);
    }
    nodes.push(this.pending);
    if (this.written === 0 && nodes.length === 1) return this.write(nodes[0]!);
    for (const n of nodes) this.emit(n);
    return this.parent!.finish();
  }

  /**
   * splitTwo's split index for the pending elements, or undefined when bbolt would not
   * split them (they fit in a page, or there are too few to split).
   */
  private splitPoint(): { index: number; byThreshold: boolean } | undefined {
    const n = this.pending.length;
    if (n <= MIN_KEYS_PER_PAGE * 2 || this.pendingSize < this.sink.pageSize) return undefined;
    let size = PAGE_HEADER_SIZE;
    for (let i = 0; i < n - MIN_KEYS_PER_PAGE; i++) {
      const es = elementSize(this.pending[i]!);
      if (i >= MIN_KEYS_PER_PAGE && size + es > this.threshold) return { index: i, byThreshold: true };
      size += es;
    }
    // bbolt's loop ends on its last index: all but the last MIN_KEYS_PER_PAGE + 1 elements.
    return { index: n - MIN_KEYS_PER_PAGE - 1, byThreshold: false };
  }

  private emit(node: Element[]): void {
    const id = this.write(node);
    this.parent ??= new Level(this.sink, true, this.threshold);
    this.parent.add({ key: node[0]!.key, value: EMPTY, flagsOrChild: id });
  }

  private write(node: Element[]): bigint {
    this.written++;
    const pages = Math.ceil(nodeSize(node) / this.sink.pageSize);
    const { id, buf, at } = this.sink.allocate(pages);
    encodeNodeInto(buf, at, at + pages * this.sink.pageSize, node, this.branch, pages);
    return id;
  }
}

/** A bucket's tree: add leaf elements in key order, then finish() for the root page id. */
export class TreeBuilder {
  private readonly leaves: Level;

  constructor(sink: PageSink, fillPercent: number) {
    this.leaves = new Level(sink, false, Math.floor(sink.pageSize * fillPercent));
  }

  add(key: BoltKey, value: Buffer, flags = 0): void {
    this.leaves.add({ key, value, flagsOrChild: flags });
  }

  finish(): bigint {
    return this.leaves.finish();
  }
}
