// The latest values of recently written or read keys, bounded in bytes. The key index
// holds no values (as etcd's treeIndex), so without this every read of a key's value
// would be a LevelDB get; with it, hot keys are served from memory while the heap stays
// bounded however many bytes the store holds.
//
// Eviction is CLOCK (second chance) over the Map's insertion order: a hit only sets a
// flag, where a strict LRU would move the entry on every read.

import type { KeyIndex } from './key-index.js';

/**
 * 32 MiB: the size of LevelDB's block cache and of its write buffer (backend.ts), so
 * the value cache adds as much again as LevelDB already keeps warm. It holds the whole
 * working set of the common small-value loads (100 k keys of 256 bytes), and a hot set
 * of ~30 k keys at 1 KiB values, while a store at etcd's 2 GiB quota keeps its heap far
 * below V8's default limit.
 */
export const DEFAULT_VALUE_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Heap bytes an entry costs besides the key and value bytes: the Map slot, the entry
 * object and the value's Buffer view.
 */
const ENTRY_OVERHEAD = 160;

interface Entry {
  /** the revision whose value this is: a lookup for any other revision misses */
  readonly main: number;
  readonly sub: number;
  readonly value: Buffer;
  readonly bytes: number;
  /** read since the clock hand last passed */
  referenced: boolean;
}

export class ValueCache {
  private readonly entries = new Map<KeyIndex, Entry>();
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
    this.delete(ki);
    const bytes = ki.key.length + value.length + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes) return;
    this.entries.set(ki, { main, sub, value, bytes, referenced: false });
    this.bytes += bytes;
    this.evict();
  }

  /** Forgets the key's value (it was deleted). */
  delete(ki: KeyIndex): void {
    const e = this.entries.get(ki);
    if (e === undefined) return;
    this.entries.delete(ki);
    this.bytes -= e.bytes;
  }

  private evict(): void {
    while (this.bytes > this.maxBytes) {
      const [ki, e] = this.entries.entries().next().value as [KeyIndex, Entry];
      this.entries.delete(ki);
      if (e.referenced) {
        // second chance: to the back of the clock, unmarked
        e.referenced = false;
        this.entries.set(ki, e);
      } else {
        this.bytes -= e.bytes;
      }
    }
  }
}
