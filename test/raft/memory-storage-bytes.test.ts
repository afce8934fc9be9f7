// The raft log in memory keeps its entries' bytes, not the buffers they arrived in: a
// proposal's data is a slice of Node's shared 8 KB pool (as protobufjs's writer cuts
// it), and the log holds up to --snapshot-count entries, so views would keep every pool
// slab a proposal was ever cut from, with whatever short-lived garbage filled the rest.
// Nor does it keep an object per entry: ~160 bytes of JS heap each, every one copied
// through the young generation and marked by every full GC.

import { describe, expect, it } from 'vitest';
import { liveArrayBuffers } from '../live-array-buffers.js';
import { MemoryStorage } from '../../src/raft/index.js';
import type { Entry } from '../../src/raftpb/index.js';

const ENTRIES = 20_000;
const DATA_BYTES = 290; // a put of a 256-byte value, as goload sends it
const dataOf = (i: number) => Buffer.from(`put ${i};`.padEnd(DATA_BYTES, '.'));

describe('MemoryStorage', () => {
  it('holds about its entries\' bytes, however big the buffers their data came in', async () => {
    const s = new MemoryStorage();
    const before = await liveArrayBuffers();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 1; i <= ENTRIES; i++) {
      // the proposal, then a request's worth of garbage cut from the same pool
      const entry: Entry = { term: 1, index: i, type: 0, data: dataOf(i) };
      Buffer.from('response frame'.padEnd(700, '.'));
      s.append([entry]);
    }
    // 5.8 MB of entry bytes; kept as pool views they held ~2,500 slabs of 8 KB: 20 MB
    const held = (await liveArrayBuffers()) - before;
    const heldHeap = process.memoryUsage().heapUsed - heapBefore;
    expect(held).toBeGreaterThanOrEqual(ENTRIES * DATA_BYTES);
    // the bytes, plus a slab being filled and the entries' columns (21 bytes a slot, up to two slots an entry)
    expect(held).toBeLessThan(ENTRIES * (DATA_BYTES + 42) + 64 * 1024);
    // and little on the JS heap: entry objects held ~3.3 MB here
    expect(heldHeap).toBeLessThan(ENTRIES * 64);
    expect(s.entries(1, 3, Infinity).map((e) => Buffer.from(e.data).toString())).toEqual([dataOf(1).toString(), dataOf(2).toString()]);
    expect(Buffer.from(s.entries(ENTRIES, ENTRIES + 1, Infinity)[0]!.data).equals(dataOf(ENTRIES))).toBe(true);

    // compacted from the front, the log gives the bytes back, slab by slab
    const kept = 100;
    s.compact(ENTRIES - kept);
    expect((await liveArrayBuffers()) - before).toBeLessThan(kept * DATA_BYTES + 2 * 64 * 1024);
    expect(s.firstIndex()).toBe(ENTRIES - kept + 1);
    expect(Buffer.from(s.entries(ENTRIES, ENTRIES + 1, Infinity)[0]!.data).equals(dataOf(ENTRIES))).toBe(true);
  });

  it('keeps a big entry in a buffer of its own', () => {
    const s = new MemoryStorage();
    const big = Buffer.alloc(1024 * 1024, 7);
    s.append([{ term: 1, index: 1, type: 0, data: big.subarray(0, 100_000) }]);
    const data = s.entries(1, 2, Infinity)[0]!.data;
    expect(data.buffer.byteLength).toBe(100_000);
    expect(Buffer.from(data).equals(Buffer.alloc(100_000, 7))).toBe(true);
  });
});
