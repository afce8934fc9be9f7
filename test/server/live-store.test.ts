// LiveStore: client reads through the member's current store while a leader's snapshot
// swaps it for another. Real stores on real LevelDB directories; the swap is the one the
// applier makes (close the old store, open the new one).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { LiveStore } from '../../src/server/live-store.js';

const dirs: string[] = [];
const stores: MvccStore[] = [];

async function storeWith(value: string): Promise<MvccStore> {
  const dir = mkdtempSync(path.join(tmpdir(), 'live-store-'));
  dirs.push(dir);
  const store = await MvccStore.open({ dir });
  stores.push(store);
  await store.put({ key: Buffer.from('k'), value: Buffer.from(value), lease: 0n }, 1);
  return store;
}

const valueOf = async (store: MvccStore): Promise<string> => (await store.range({ key: Buffer.from('k') })).kvs[0]!.value.toString();

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('a client read through the live store', () => {
  it('reads the current store', async () => {
    const live = new LiveStore(await storeWith('old'));
    expect(await live.read(valueOf)).toBe('old');
  });

  it('started during a swap, waits for the new store and reads it', async () => {
    const live = new LiveStore(await storeWith('old'));
    const next = await storeWith('new');
    let opened!: () => void;
    const swapped = live.swap(() => new Promise<MvccStore>((resolve) => (opened = () => resolve(next))));
    const read = live.read(valueOf);
    await new Promise((r) => setTimeout(r, 20));
    opened();
    await swapped;
    expect(await read).toBe('new');
  });

  it('cut short by a swap (its store closed under it), runs again on the new store', async () => {
    const old = await storeWith('old');
    const live = new LiveStore(old);
    const next = await storeWith('new');
    let reads = 0;
    let swapped: Promise<void> | undefined;
    const read = live.read(async (store) => {
      reads++;
      // the first attempt: a swap begins and closes this store before the read gets to it
      if (reads === 1) swapped = live.swap(async () => next);
      await new Promise((r) => setTimeout(r, 20));
      return valueOf(store);
    });
    expect(await read).toBe('new');
    expect(reads).toBe(2);
    await swapped;
  });

  it('fails with the read\'s own error when no swap came, whether the read rejects or throws at once', async () => {
    const live = new LiveStore(await storeWith('old'));
    await expect(live.read(() => Promise.reject(new Error('rejected')))).rejects.toThrow('rejected');
    await expect(
      live.read(() => {
        throw new Error('thrown');
      }),
    ).rejects.toThrow('thrown');
  });
});
