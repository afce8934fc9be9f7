import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../../src/mvcc/key-index.js';
import { KeyTable, keyHash } from '../../src/mvcc/key-table.js';
import { seededRandom } from '../../src/pkg/rng.js';

/** Applies random adds and deletes to the table and to a Map, and compares every key of the pool. */
function churn(pool: string[], seed: number, steps: number): void {
  const rand = seededRandom(seed);
  const table = new KeyTable();
  const model = new Map<string, KeyIndex>();
  for (let step = 0; step < steps; step++) {
    const key = pool[Math.floor(rand() * pool.length)]!;
    // grow for a while, then shrink, so that both resizes run
    const adding = step < steps / 2 ? rand() < 0.8 : rand() < 0.2;
    if (adding && !model.has(key)) {
      const ki = new KeyIndex(key);
      table.add(ki);
      model.set(key, ki);
    } else if (!adding) {
      expect(table.delete(key)).toBe(model.delete(key));
    }
    if (step % 499 === 0) {
      expect(table.size).toBe(model.size);
      for (const k of pool) expect(table.get(k)).toBe(model.get(k));
    }
  }
  for (const k of pool) expect(table.get(k)).toBe(model.get(k));
}

describe('KeyTable', () => {
  it('finds, adds and deletes like a Map through growth and shrinking', () => {
    const pool = Array.from({ length: 3000 }, (_, i) => `/registry/pods/ns-${i % 7}/pod-${i}`);
    churn(pool, 1, 20_000);
  });

  it('tells apart keys whose hashes collide (long keys that differ only in the middle)', () => {
    const head = 'h'.repeat(10_000);
    const tail = 't'.repeat(10_000);
    const pool = Array.from({ length: 300 }, (_, i) => `${head}${i.toString().padStart(4, '0')}${tail}`);
    expect(new Set(pool.map(keyHash)).size).toBe(1); // all collide: every probe run is one cluster
    churn(pool, 2, 3000);
  });

  it('handles keys with any byte, including the empty key and NUL bytes', () => {
    const pool = ['', '\0', '\0\0', '\xff', 'a\0b', 'a'];
    churn(pool, 3, 500);
  });
});
