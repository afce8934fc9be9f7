// MemoryStorage against a plain array of entries, under random appends (overlapping ones
// that truncate the log, as a follower's do), compactions and snapshots: entries of no
// bytes, small ones that share slabs and big ones with buffers of their own, interleaved,
// so that a buffer freed while an entry still lives in it shows as wrong bytes.

import { describe, expect, it } from 'vitest';
import { CompactedError, MemoryStorage, UnavailableError } from '../../src/raft/index.js';
import { type Entry, emptyConfState } from '../../src/raftpb/index.js';

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sizes = [0, 1, 290, 4000, 16 * 1024 + 1, 70_000];

function dataFor(index: number, term: number, size: number): Buffer {
  const b = Buffer.alloc(size, index & 0xff);
  for (let i = 0; i + 4 <= size; i += 8) b.writeUInt32LE((index * 31 + term + i) >>> 0, i);
  return b;
}

function expectSame(got: Entry[], want: Entry[]): void {
  expect(got.map((e) => [e.index, e.term, e.type, e.data.length])).toEqual(want.map((e) => [e.index, e.term, e.type, e.data.length]));
  for (let i = 0; i < want.length; i++) expect(Buffer.from(got[i]!.data).equals(Buffer.from(want[i]!.data))).toBe(true);
}

describe('MemoryStorage, against a model', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`matches an array of entries through appends, truncations, compactions and snapshots (seed ${seed})`, () => {
      const r = rng(seed);
      const s = new MemoryStorage();
      let model: Entry[] = []; // entries after the snapshot point
      let snapIndex = 0;
      let snapTerm = 0;
      let term = 1;
      const last = () => snapIndex + model.length;
      for (let step = 0; step < 3000; step++) {
        const op = r();
        if (op < 0.6) {
          // append a run, sometimes from inside the log (a conflicting suffix replaced)
          const from = model.length > 0 && r() < 0.15 ? snapIndex + 1 + Math.floor(r() * model.length) : last() + 1;
          if (r() < 0.1) term++;
          const run: Entry[] = [];
          for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) {
            const index = from + i;
            const size = sizes[Math.floor(r() * sizes.length)]!;
            // data as a view into a bigger buffer, as entries arrive
            const data = Buffer.concat([Buffer.alloc(7), dataFor(index, term, size)]).subarray(7);
            run.push({ index, term, type: r() < 0.1 ? 1 : 0, data });
          }
          s.append(run);
          model = model.slice(0, from - snapIndex - 1).concat(run.map((e) => ({ ...e, data: Buffer.from(e.data) })));
        } else if (op < 0.75 && model.length > 0) {
          const to = snapIndex + 1 + Math.floor(r() * model.length);
          const keptTerm = model[to - snapIndex - 1]!.term;
          s.compact(to);
          model = model.slice(to - snapIndex);
          snapIndex = to;
          snapTerm = keptTerm;
        } else if (op < 0.77) {
          const index = last() + 1 + Math.floor(r() * 5);
          s.applySnapshot({ data: new Uint8Array(0), metadata: { index, term, confState: emptyConfState } });
          model = [];
          snapIndex = index;
          snapTerm = term;
        }
        expect([s.firstIndex(), s.lastIndex()]).toEqual([snapIndex + 1, last()]);
        expect(s.term(snapIndex)).toBe(snapTerm);
        if (model.length > 0) {
          const lo = snapIndex + 1 + Math.floor(r() * model.length);
          const hi = lo + 1 + Math.floor(r() * (last() - lo + 1));
          expectSame(s.entries(lo, hi, Infinity), model.slice(lo - snapIndex - 1, hi - snapIndex - 1));
          // a size budget stops before the entry that passes it, and always gives one
          const budget = Math.floor(r() * 40_000);
          const got = s.entries(lo, hi, budget);
          expect(got.length).toBeGreaterThanOrEqual(1);
          let size = 0;
          for (const e of got.slice(0, -1)) size += e.data.length + 16;
          expect(size).toBeLessThanOrEqual(budget);
          expect(s.term(hi - 1)).toBe(model[hi - snapIndex - 2]!.term);
        }
      }
      // every entry still held reads back whole at the end
      if (model.length > 0) expectSame(s.entries(snapIndex + 1, last() + 1, Infinity), model);
      expect(() => s.entries(snapIndex, last() + 1, Infinity)).toThrow(CompactedError);
      expect(() => s.term(last() + 1)).toThrow(UnavailableError);
    });
  }
});
