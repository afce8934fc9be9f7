// The idle GC (src/pkg/idle-gc.ts) in this very process: once a load has grown V8's
// young generation and the process goes idle, one GC gives it back.

import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { startIdleGc } from '../../src/pkg/idle-gc.js';

const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

/** Objects that live a little while (through a scavenge or two), as a member's requests do: V8 grows new space for them. */
function load(ms: number): number {
  const ring: Array<{ a: number; b: string; c: number[] }> = new Array(200_000);
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 10_000; i++, n++) ring[n % ring.length] = { a: n, b: `k${n}`, c: [n, n + 1] };
  }
  return ring.length;
}

describe('idle GC', () => {
  it('gives the young generation back once the process is idle, and only then', async () => {
    for (let tries = 0; young() < 8 << 20 && tries < 10; tries++) load(1000);
    const grown = young();
    expect(grown).toBeGreaterThanOrEqual(8 << 20);
    const collections: Array<[number, number]> = [];
    const stop = startIdleGc({ intervalMs: 1000, idleShare: 0.3, idleIntervals: 6, minYoungBytes: 4 << 20, onCollect: (b, a) => collections.push([b, a]) });
    try {
      // busy: no GC from the idle watcher
      const busyUntil = Date.now() + 3000;
      while (Date.now() < busyUntil) load(100);
      expect(collections).toEqual([]);
      // idle: GCs until one shrinks new space, three at most (at load 30 an interval may
      // still look busy, and V8 may not shrink after a GC that came while it still found
      // allocation fast; another follows an interval later): wait generously
      const shrank = ([before, after]: [number, number]) => after < before / 2;
      const deadline = Date.now() + 60_000;
      while (!collections.some(shrank) && collections.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(collections.length).toBeGreaterThanOrEqual(1);
      const [before, after] = collections.at(-1)!;
      expect(before).toBeGreaterThanOrEqual(4 << 20);
      expect(after).toBeLessThan(before / 2);
      // still idle and shrunk: no further GC
      const count = collections.length;
      await new Promise((r) => setTimeout(r, 8000));
      expect(collections).toHaveLength(count);
    } finally {
      stop();
    }
  }, 120_000);
});
