// The member's current MvccStore. A snapshot from the leader replaces it (the applier
// swaps it); everyone else reads through here, so nobody keeps a store that was closed.

import type { MvccStore } from '../mvcc/index.js';

export class LiveStore {
  private store: MvccStore;
  /** set while a leader's snapshot replaces the store: reads wait for it (see read()) */
  private swapping: Promise<void> | undefined;

  constructor(store: MvccStore) {
    this.store = store;
  }

  get current(): MvccStore {
    return this.store;
  }

  /** Closes the current store and puts the one `open` returns in its place; reads wait meanwhile. */
  async swap(open: (old: MvccStore) => Promise<MvccStore>): Promise<void> {
    const swap = (async () => {
      const old = this.store;
      await old.close();
      this.store = await open(old);
    })();
    this.swapping = swap;
    try {
      await swap;
    } finally {
      this.swapping = undefined;
    }
  }

  /**
   * Runs a client read on the store. While a leader's snapshot is being swapped in, the
   * read waits for the new store instead of failing on the closed one; a read the swap
   * cut short is run again there (the new store is only newer, so a read that was
   * linearizable stays so). Outside a swap, the read itself, without an async frame of
   * its own (every client read comes through here).
   */
  read<T>(fn: (store: MvccStore) => Promise<T>): Promise<T> {
    if (this.swapping !== undefined) return this.readAcrossSwap(fn);
    const store = this.store;
    let read: Promise<T>;
    try {
      read = fn(store);
    } catch (err) {
      read = Promise.reject(err as Error);
    }
    return read.catch((err: unknown) => {
      if (store === this.store && this.swapping === undefined) throw err;
      return this.readAcrossSwap(fn);
    });
  }

  private async readAcrossSwap<T>(fn: (store: MvccStore) => Promise<T>): Promise<T> {
    for (;;) {
      if (this.swapping) await this.swapping;
      const store = this.store;
      try {
        return await fn(store);
      } catch (err) {
        if (store === this.store && this.swapping === undefined) throw err;
      }
    }
  }
}
