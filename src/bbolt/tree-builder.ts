// Builds one bucket's B+tree bottom-up from keys that arrive in order, splitting nodes
// exactly where bbolt's node.splitTwo would split the same sorted sequence (so a file
// written here is laid out like one etcd's defrag wrote with the same fill percent).
// Each level keeps only the elements of the node it is still filling; a finished node
// is written at once and becomes one element (first key, page id) of the level above.

import { ELEMENT_SIZE, PAGE_HEADER_SIZE, PageFlag, writePageHeader } from './format.js';
import type { PageSink } from './page-sink.js';

/** bbolt's minKeysPerPage: a split leaves at least this many elements on each side. */
const MIN_KEYS_PER_PAGE = 2;

export interface Element {
  key: Buffer;
  /** a leaf's value; empty for a branch element */
  value: Buffer;
  /** a leaf element's flags (BUCKET_LEAF_FLAG for a bucket); a branch element's child page id */
  flagsOrChild: number | bigint;
}

const elementSize = (e: Element): number => ELEMENT_SIZE + e.key.length + e.value.length;

/**
 * Serializes a node as node.write does, padded to whole pages of `pageSize`; without a
 * page size it is an inline bucket's page: exactly its size, page id 0.
 */
export function encodeNode(elements: readonly Element[], branch: boolean, pageSize?: number): Buffer {
  const size = nodeSize(elements);
  const pages = pageSize === undefined ? 1 : Math.ceil(size / pageSize);
  const buf = Buffer.alloc(pageSize === undefined ? size : pages * pageSize);
  writePageHeader(buf, { id: 0n, flags: branch ? PageFlag.branch : PageFlag.leaf, count: elements.length, overflow: pages - 1 });
  let off = PAGE_HEADER_SIZE + elements.length * ELEMENT_SIZE;
  elements.forEach((e, i) => {
    const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (branch) {
      buf.writeUInt32LE(off - at, at);
      buf.writeUInt32LE(e.key.length, at + 4);
      buf.writeBigUInt64LE(e.flagsOrChild as bigint, at + 8);
    } else {
      buf.writeUInt32LE(e.flagsOrChild as number, at);
      buf.writeUInt32LE(off - at, at + 4);
      buf.writeUInt32LE(e.key.length, at + 8);
      buf.writeUInt32LE(e.value.length, at + 12);
    }
    off += e.key.copy(buf, off);
    off += e.value.copy(buf, off);
  });
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

  async add(e: Element): Promise<void> {
    this.pending.push(e);
    this.pendingSize += elementSize(e);
    // Cut a node as soon as bbolt's split point is decided (found by the fill threshold,
    // not by running out of elements): later elements cannot move it.
    for (;;) {
      const cut = this.splitPoint();
      if (cut === undefined || !cut.byThreshold) return;
      await this.emit(this.pending.splice(0, cut.index));
      this.pendingSize = nodeSize(this.pending);
    }
  }

  /** Writes what is left, then the levels above; returns the root page id. */
  async finish(): Promise<bigint> {
    const nodes: Element[][] = [];
    for (;;) {
      const cut = this.splitPoint();
      if (cut === undefined) break;
      nodes.push(this.pending.splice(0, cut.index));
      this.pendingSize = nodeSize(this.pending);
    }
    nodes.push(this.pending);
    if (this.written === 0 && nodes.length === 1) return this.write(nodes[0]!);
    for (const n of nodes) await this.emit(n);
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

  private async emit(node: Element[]): Promise<void> {
    const id = await this.write(node);
    this.parent ??= new Level(this.sink, true, this.threshold);
    await this.parent.add({ key: node[0]!.key, value: Buffer.alloc(0), flagsOrChild: id });
  }

  private async write(node: Element[]): Promise<bigint> {
    this.written++;
    return this.sink.append(encodeNode(node, this.branch, this.sink.pageSize));
  }
}

/** A bucket's tree: add leaf elements in key order, then finish() for the root page id. */
export class TreeBuilder {
  private readonly leaves: Level;

  constructor(sink: PageSink, fillPercent: number) {
    this.leaves = new Level(sink, false, Math.floor(sink.pageSize * fillPercent));
  }

  add(key: Buffer, value: Buffer, flags = 0): Promise<void> {
    return this.leaves.add({ key, value, flagsOrChild: flags });
  }

  finish(): Promise<bigint> {
    return this.leaves.finish();
  }
}
