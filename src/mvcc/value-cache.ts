// The latest values of recently written or read keys, bounded in bytes. The key index
// holds no values (as etcd's treeIndex), so without this every read of a key's value
// would be a LevelDB get; with it, hot keys are served from memory while the heap stays
// bounded however many bytes the store holds.
//
// Eviction is CLOCK (second chance) over a FIFO of entries: a hit only sets a flag,
// where a strict LRU would move the entry on every read. The FIFO is an array with a
// head, not the Map's insertion order: a Map keeps deleted slots at its front until it
// rehashes, so taking its oldest entry again and again scans ever more of them.

import type { KeyIndex } from './key-index.js';
import { retainedBytes } from './retained.js';

/**
 * 32 MiB: the whole working set of the common small-value loads (100 k keys of 256
 * bytes), and a hot set of ~30 k keys at 1 KiB values, while a store at etcd's 2 GiB
 * quota keeps its heap far below V8's default limit.
 */
export const DEFAULT_VALUE_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Heap bytes an entry costs besides the buffer its value keeps (retainedBytes): the Map
 * slot, the entry object and the value's Buffer view.
 */
const ENTRY_OVERHEAD = 160;

interface Entry {
  readonly ki: KeyIndex;
  /** the revision whose value this is: a lookup for any other revision misses */
  readonly main: number;
  readonly sub: number;
  /** emptied once the entry is replaced or deleted: its FIFO slot must not keep the buffer */
  value: Buffer;
  readonly bytes: number;
  /** read since the clock hand last passed */
  referenced: boolean;
}

const RELEASED = Buffer.alloc(0);

/** Dead FIFO slots (passed, replaced or deleted) tolerated beyond the live entries before the FIFO is rebuilt. */
const SLACK_SLOTS = 1024;

export class ValueCache {
  private readonly entries = new Map<KeyIndex, Entry>();
  /**
   * Entries in clock order from `head` on (slots before it are cleared). A replaced or
   * deleted entry keeps its slot until the hand reaches it or the FIFO is rebuilt.
   */
  private fifo: Array<Entry | undefined> = [];
  private head = 0;
  private bytes = 0;

  /** `maxBytes` 0 disables the cache (every read goes to LevelDB). */
  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`mvcc: value cache size must be a whole number of bytes >= 0, got ${maxBytes}`);
    }
  }

  /** Bytes the cached entries account for (never above maxBytes). */
  get size(): number {
    return this.bytes;
  }

  /** The value of `ki` at revision (main, sub), if cached. */
  get(ki: KeyIndex, main: number, sub: number): Buffer | undefined {
    const e = this.entries.get(ki);
    if (e === undefined || e.main !== main || e.sub !== sub) return undefined;
    e.referenced = true;
    return e.value;
  }

  /** Caches `value` as the key's value at (main, sub), replacing an older one. */
  set(ki: KeyIndex, main: number, sub: number, value: Buffer): void {
    // the value is a view into its record (which holds the key too), or a LevelDB read of its own
    const bytes = retainedBytes(value) + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes) {
      this.delete(ki);
      return;
    }
    const old = this.entries.get(ki);
    if (old !== undefined) this.release(old);
    const e: Entry = { ki, main, sub, value, bytes, referenced: false };
    // replaced in place: a V8 Map deleted and re-added in a loop slows down many times over
    this.entries.set(ki, e);
    this.fifo.push(e);
    this.bytes += bytes;
    this.evict();
    if (this.fifo.length > 2 * this.entries.size + SLACK_SLOTS) this.rebuild();
  }

  /** Forgets the key's value (it was deleted). */
  delete(ki: KeyIndex): void {
    const e = this.entries.get(ki);
    if (e === undefined) return;
    this.entries.delete(ki);
    this.release(e);
  }

  /** An entry leaves the cache; a FIFO slot may still point at it (a hot key's slots pile up). */
  private release(e: Entry): void {
    this.bytes -= e.bytes;
    e.value = RELEASED;
  }

  private evict(): void {
    while (this.bytes > this.maxBytes) {
      const e = this.fifo[this.head]!;
      this.fifo[this.head++] = undefined;
      if (this.entries.get(e.ki) !== e) continue; // replaced or deleted since
      if (e.referenced) {
        // second chance: to the back of the clock, unmarked
        e.referenced = false;
        this.fifo.push(e);
      } else {
        this.entries.delete(e.ki);
        this.release(e);
      }
    }
  }

  /**
   * Drops the cleared and dead slots. Amortized O(1) per set: it runs once the FIFO is
   * twice the live entries (plus slack), and leaves it at the live entries.
   */
  private rebuild(): void {
    const live: Entry[] = [];
    for (let i = this.head; i < this.fifo.length; i++) {
      const e = this.fifo[i]!;
      if (this.entries.get(e.ki) === e) live.push(e);
    }
    this.fifo = live;
    this.head = 0;
  }
}
