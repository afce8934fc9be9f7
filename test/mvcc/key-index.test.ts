import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../../src/mvcc/key-index.js';
import { TreeIndex } from '../../src/mvcc/tree-index.js';

/** Three generations: {2, 4, 6(t)} {8, 10, 12(t)} {14.0, 14.1, 16}, the last one live. */
function example(): KeyIndex {
  const ki = new KeyIndex('foo');
  ki.put(2, 0, 0n);
  ki.put(4, 0, 0n);
  ki.tombstone(6, 0);
  ki.put(8, 0, 0n);
  ki.put(10, 0, 0n);
  ki.tombstone(12, 0);
  ki.put(14, 0, 0n);
  ki.put(14, 1, 0n);
  ki.put(16, 0, 0n);
  return ki;
}

const gens = (ki: KeyIndex) => ki.generations();

describe('KeyIndex', () => {
  it('finds the revision visible at any revision', () => {
    const ki = example();
    expect(ki.get(1)).toBeUndefined();
    expect(ki.get(2)).toEqual({ main: 2, sub: 0, createRevision: 2, version: 1 });
    expect(ki.get(5)).toEqual({ main: 4, sub: 0, createRevision: 2, version: 2 });
    expect(ki.get(6)).toBeUndefined(); // deleted at 6
    expect(ki.get(7)).toBeUndefined();
    expect(ki.get(9)).toEqual({ main: 8, sub: 0, createRevision: 8, version: 1 });
    expect(ki.get(14)).toEqual({ main: 14, sub: 1, createRevision: 14, version: 2 });
    expect(ki.get(100)).toEqual({ main: 16, sub: 0, createRevision: 14, version: 3 });
  });

  it('compacts as etcd does (drops revisions up to atRev but the visible one, and tombstoned generations)', () => {
    const cases: Array<[number, object[], { main: number; sub: number } | undefined]> = [
      [1, [{ created: 2, ver: 3, revs: [2, 0, 4, 0, 6, 0] }, { created: 8, ver: 3, revs: [8, 0, 10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], undefined],
      [2, [{ created: 2, ver: 3, revs: [2, 0, 4, 0, 6, 0] }, { created: 8, ver: 3, revs: [8, 0, 10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], { main: 2, sub: 0 }],
      [5, [{ created: 2, ver: 3, revs: [4, 0, 6, 0] }, { created: 8, ver: 3, revs: [8, 0, 10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], { main: 4, sub: 0 }],
      // the tombstone at 6 goes, and its generation with it
      [6, [{ created: 8, ver: 3, revs: [8, 0, 10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], undefined],
      [7, [{ created: 8, ver: 3, revs: [8, 0, 10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], undefined],
      [11, [{ created: 8, ver: 3, revs: [10, 0, 12, 0] }, { created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], { main: 10, sub: 0 }],
      [13, [{ created: 14, ver: 3, revs: [14, 0, 14, 1, 16, 0] }], undefined],
      [15, [{ created: 14, ver: 3, revs: [14, 1, 16, 0] }], { main: 14, sub: 1 }],
      [17, [{ created: 14, ver: 3, revs: [16, 0] }], { main: 16, sub: 0 }],
    ];
    for (const [at, want, kept] of cases) {
      const ki = example();
      expect(ki.keep(at), `keep ${at}`).toEqual(kept);
      expect(ki.compact(at)).toBe(false);
      expect(gens(ki), `compact ${at}`).toEqual(want);
    }
    // compacting step by step ends where compacting at once does
    const stepwise = example();
    for (const [at] of cases) stepwise.compact(at);
    const once = example();
    once.compact(17);
    expect(gens(stepwise)).toEqual(gens(once));
  });

  it('empties when the last revision left is a tombstone', () => {
    const ki = new KeyIndex('k');
    ki.put(2, 0, 0n);
    ki.tombstone(3, 0);
    expect(ki.isLive()).toBe(false);
    expect(ki.compact(3)).toBe(true);
  });
});

describe('TreeIndex', () => {
  it('keeps keys in byte order through inserts, deletes and chunk splits', () => {
    const t = new TreeIndex();
    const keys: string[] = [];
    let seed = 3;
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const k = String.fromCharCode(seed % 256, (seed >> 8) % 256, (seed >> 16) % 256);
      keys.push(k);
      t.getOrCreate(k);
    }
    const uniq = [...new Set(keys)].sort();
    const seen: string[] = [];
    t.all((ki) => seen.push(ki.key));
    expect(seen).toEqual(uniq);
    for (const k of uniq.filter((_, i) => i % 3 === 0)) t.delete(k);
    const left = uniq.filter((_, i) => i % 3 !== 0);
    const inRange: string[] = [];
    t.forEach('\x40', '\xa0', (ki) => void inRange.push(ki.key));
    expect(inRange).toEqual(left.filter((k) => k >= '\x40' && k < '\xa0'));
    const fromKey: string[] = [];
    t.forEach('\xf0', null, (ki) => void fromKey.push(ki.key));
    expect(fromKey).toEqual(left.filter((k) => k >= '\xf0'));
    expect(t.size).toBe(left.length);
  });
});
