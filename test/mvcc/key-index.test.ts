import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

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

  it('answers for a key written once, then twice, compacted back to one revision, then deleted', () => {
    const ki = new KeyIndex('k');
    ki.put(5, 2, 7n);
    expect([ki.isLive(), ki.modRevision, ki.modSub, ki.createRevision, ki.version, ki.lease]).toEqual([true, 5, 2, 5, 1, 7n]);
    expect(ki.get(4)).toBeUndefined();
    expect(ki.get(5)).toEqual({ main: 5, sub: 2, createRevision: 5, version: 1 });
    expect([ki.keep(4), ki.keep(9)]).toEqual([undefined, { main: 5, sub: 2 }]);
    expect([ki.isOldest(5, 2), ki.isOldest(5, 0), ki.oldestMain()]).toEqual([true, false, 5]);
    expect(ki.compact(9)).toBe(false); // a lone revision stays whatever the compaction
    expect(gens(ki)).toEqual([{ created: 5, ver: 1, revs: [5, 2] }]);

    ki.put(8, 0, 0n);
    expect(ki.get(7)).toEqual({ main: 5, sub: 2, createRevision: 5, version: 1 });
    expect(ki.get(8)).toEqual({ main: 8, sub: 0, createRevision: 5, version: 2 });
    expect(gens(ki)).toEqual([{ created: 5, ver: 2, revs: [5, 2, 8, 0] }]);
    expect(ki.compact(8)).toBe(false);
    expect(gens(ki)).toEqual([{ created: 5, ver: 2, revs: [8, 0] }]);
    expect([ki.isOldest(8, 0), ki.oldestMain(), ki.get(8)?.version, ki.lease]).toEqual([true, 8, 2, 0n]);

    ki.put(9, 0, 0n);
    ki.tombstone(10, 0);
    expect([ki.isLive(), ki.modRevision, ki.get(9)?.version, ki.get(10)]).toEqual([false, 0, 3, undefined]);
    expect(gens(ki)).toEqual([{ created: 5, ver: 4, revs: [8, 0, 9, 0, 10, 0] }, { created: 0, ver: 0, revs: [] }]);
    expect(ki.compact(10)).toBe(true);
  });

  it('holds a key written once in its object and key string alone (no arrays, no lease of its own)', () => {
    const n = 200_000;
    const zero = Number(process.env.NO_SUCH_VARIABLE ?? 0);
    gc();
    const before = process.memoryUsage().heapUsed;
    const t = new TreeIndex();
    for (let i = 0; i < n; i++) {
      // a 32-byte key, as goload's; the lease a fresh 0n, as a decoded request's
      t.insert(`acked/1234abcd-${i.toString(16).padStart(16, '0')}`).put(i + 2, 0, BigInt(zero));
    }
    gc();
    const perKey = (process.memoryUsage().heapUsed - before) / n;
    expect(t.size).toBe(n);
    // ~171 bytes: the KeyIndex (96), its key string (48), hash-table slots and ordered
    // chunks; a revision array and a 0n per key made it ~252
    expect(perKey).toBeLessThan(200);
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

  it('keeps ascending inserts (each past every key so far) in order, with keys inserted between them later', () => {
    const t = new TreeIndex();
    const key = (i: number) => `k${String(i).padStart(6, '0')}`;
    for (let i = 0; i < 5000; i += 2) t.insert(key(i));
    for (let i = 1; i < 5000; i += 4) t.insert(key(i));
    const want = Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 2 === 0 || i % 4 === 1).map(key);
    const seen: string[] = [];
    t.all((ki) => void seen.push(ki.key));
    expect(seen).toEqual(want);
    const from: string[] = [];
    t.forEach(key(2047), key(3001), (ki) => void from.push(ki.key));
    expect(from).toEqual(want.filter((k) => k >= key(2047) && k < key(3001)));
  });
});
