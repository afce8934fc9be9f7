// The in-memory key index (etcd's treeIndex): every key's KeyIndex, in key order.
// A hash table answers point lookups; ordered iteration uses a two-level sorted list
// of chunks (a flat B+tree), which keeps inserts O(sqrt n) with tiny constants.

import { KeyIndex } from './key-index.js';
import { KeyTable } from './key-table.js';

const MAX_CHUNK = 1024;

/** Where a range ends: `undefined` = the single key `from`, `null` = no upper bound. */
export type RangeEnd = string | null | undefined;

/** etcd's key/range_end convention, as latin1 strings for the index. */
export function toRangeBounds(key: Buffer, rangeEnd: Buffer | undefined): { from: string; to: RangeEnd } {
  const from = key.toString('latin1');
  if (!rangeEnd || rangeEnd.length === 0) return { from, to: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { from, to: null };
  return { from, to: rangeEnd.toString('latin1') };
}

export function inRange(k: string, from: string, to: RangeEnd): boolean {
  if (to === undefined) return k === from;
  return k >= from && (to === null || k < to);
}

export class TreeIndex {
  private readonly byKey = new KeyTable();
  private chunks: KeyIndex[][] = [[]];
  /** first key of each chunk (chunk 0 may be empty only when the index is) */
  private firsts: string[] = [''];

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): KeyIndex | undefined {
    return this.byKey.get(key);
  }

  /** Returns the KeyIndex for key, creating an empty one in order when missing. */
  getOrCreate(key: string): KeyIndex {
    return this.byKey.get(key) ?? this.insert(key);
  }

  /** Adds an empty KeyIndex for a key the caller knows is absent (one hash lookup saved per new key). */
  insert(key: string): KeyIndex {
    const ki = new KeyIndex(key);
    this.byKey.add(ki);
    // appending past the last key is common (sequential keys, restores): skip the search
    const lastChunk = this.chunks[this.chunks.length - 1]!;
    const last = lastChunk[lastChunk.length - 1];
    const c = last && last.key < key ? this.chunks.length - 1 : this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const pos = lowerBound(chunk, key);
    chunk.splice(pos, 0, ki);
    if (pos === 0) this.firsts[c] = key;
    if (chunk.length > MAX_CHUNK) {
      // a key past every other one starts a chunk of its own: halving would leave every
      // chunk of an ascending load (goload's keys, a restore) half empty for good
      const appended = c === this.chunks.length - 1 && pos === MAX_CHUNK;
      const tail = chunk.splice(appended ? MAX_CHUNK : MAX_CHUNK >> 1);
      this.chunks.splice(c + 1, 0, tail);
      this.firsts.splice(c + 1, 0, tail[0]!.key);
    }
    return ki;
  }

  delete(key: string): void {
    if (!this.byKey.delete(key)) return;
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const pos = lowerBound(chunk, key);
    chunk.splice(pos, 1);
    if (chunk.length === 0 && this.chunks.length > 1) {
      this.chunks.splice(c, 1);
      this.firsts.splice(c, 1);
    } else if (pos === 0) {
      this.firsts[c] = chunk.length > 0 ? chunk[0]!.key : '';
    }
  }

  /**
   * Calls fn for each KeyIndex with key in [from, to) in key order (see RangeEnd);
   * fn returns false to stop early.
   */
  forEach(from: string, to: RangeEnd, fn: (ki: KeyIndex) => boolean | void): void {
    if (to === undefined) {
      const ki = this.byKey.get(from);
      if (ki) fn(ki);
      return;
    }
    if (to !== null && to <= from) return;
    let c = this.chunkFor(from);
    let i = lowerBound(this.chunks[c]!, from);
    for (; c < this.chunks.length; c++, i = 0) {
      const chunk = this.chunks[c]!;
      for (; i < chunk.length; i++) {
        const ki = chunk[i]!;
        if (to !== null && ki.key >= to) return;
        if (fn(ki) === false) return;
      }
    }
  }

  /** Every KeyIndex in key order. */
  all(fn: (ki: KeyIndex) => void): void {
    for (const chunk of this.chunks) for (const ki of chunk) fn(ki);
  }

  /** Every KeyIndex in key order, for a caller that awaits between keys while the index does not change. */
  *entries(): Generator<KeyIndex> {
    for (const chunk of this.chunks) yield* chunk;
  }

  private chunkFor(key: string): number {
    const f = this.firsts;
    let lo = 0;
    let hi = f.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f[mid]! <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function lowerBound(chunk: KeyIndex[], key: string): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (chunk[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
