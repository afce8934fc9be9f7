// Point lookups of the key index: an open-addressing hash table (linear probing,
// backward-shift deletion) whose slots hold the KeyIndex objects themselves.
//
// Why not a Map: a random Get over a million keys is bound by cache and TLB misses,
// not by instructions. A Map reaches a value through its bucket, its entry and the
// stored key string (three misses) before the KeyIndex itself; here a slot leads
// straight to the KeyIndex, whose stored hash rules out other keys before their key
// strings are read. Measured on a restarted 1M-key store, random Gets of fresh key
// buffers: 551–618k/s through a Map, 777–836k/s through this table.

import { randomBytes } from 'node:crypto';
import type { KeyIndex } from './key-index.js';

/**
 * Keys up to this many chars are hashed whole (V8 hashes strings whole up to 16383);
 * longer ones, up to 1.5 MB, by their length, head and tail.
 */
const HASH_SPAN = 16_384;

/**
 * A per-process seed: a client must not be able to choose keys that all land in one
 * probe run (V8 seeds its own string hashes for the same reason).
 */
const SEED = randomBytes(4).readUInt32LE(0);

/** FNV-1a from a random basis over the key's chars (latin1: one char per byte); 31 bits, so it stays a small integer. */
export function keyHash(key: string): number {
  let h = SEED;
  const n = key.length;
  if (n <= HASH_SPAN) {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  } else {
    const half = HASH_SPAN >> 1;
    for (let i = 0; i < half; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    for (let i = n - half; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ n, 0x01000193);
  }
  return h & 0x7fff_ffff;
}

const MIN_CAPACITY = 1024;

export class KeyTable {
  private slots: Array<KeyIndex | undefined> = new Array<KeyIndex | undefined>(MIN_CAPACITY).fill(undefined);
  private mask = MIN_CAPACITY - 1;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): KeyIndex | undefined {
    const h = keyHash(key);
    const slots = this.slots;
    const mask = this.mask;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const ki = slots[p];
      if (ki === undefined) return undefined;
      if (ki.hash === h && ki.key === key) return ki;
    }
  }

  /** Adds a KeyIndex whose key the caller knows is absent. */
  add(ki: KeyIndex): void {
    if ((this.count + 1) * 2 > this.slots.length) this.resize(this.slots.length * 2);
    this.place(ki);
    this.count++;
  }

  /** Removes the key's KeyIndex; false when it was absent. */
  delete(key: string): boolean {
    const h = keyHash(key);
    const slots = this.slots;
    const mask = this.mask;
    let p = h & mask;
    for (; ; p = (p + 1) & mask) {
      const ki = slots[p];
      if (ki === undefined) return false;
      if (ki.hash === h && ki.key === key) break;
    }
    // backward-shift: pull later members of the probe run into the hole, so that no
    // lookup ever stops early at it (no tombstones to sweep later)
    let hole = p;
    for (let q = (p + 1) & mask; ; q = (q + 1) & mask) {
      const ki = slots[q];
      if (ki === undefined) break;
      const home = ki.hash & mask;
      // ki may move into the hole only if its home is not cyclically in (hole, q]
      if (((q - home) & mask) >= ((q - hole) & mask)) {
        slots[hole] = ki;
        hole = q;
      }
    }
    slots[hole] = undefined;
    this.count--;
    if (this.slots.length > MIN_CAPACITY && this.count * 8 < this.slots.length) this.resize(this.slots.length / 2);
    return true;
  }

  private place(ki: KeyIndex): void {
    const slots = this.slots;
    const mask = this.mask;
    let p = ki.hash & mask;
    while (slots[p] !== undefined) p = (p + 1) & mask;
    slots[p] = ki;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = new Array<KeyIndex | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    for (const ki of old) if (ki !== undefined) this.place(ki);
  }
}
