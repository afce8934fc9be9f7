// The proposals' waits: a waiter gets what its `map` makes of the applied value (a
// proposal's typed result, without a `then` per write), and a map that throws rejects it.

import { describe, expect, it } from 'vitest';
import { WaitRegistry } from '../../src/server/wait.js';

describe('WaitRegistry', () => {
  it("hands a waiter its map's result, or rejects it with what the map threw", async () => {
    const wait = new WaitRegistry<{ kind: string; n: number }>();
    const never = Number.MAX_SAFE_INTEGER;
    const plain = wait.register(1n, 0, never, () => new Error('timed out'));
    const mapped = wait.register(2n, 0, never, () => new Error('timed out'), (v) => v.n * 2);
    const refused = wait.register(3n, 0, never, () => new Error('timed out'), (v) => {
      throw new Error(`a ${v.kind} answered`);
    });
    wait.trigger(1n, { kind: 'put', n: 1 });
    wait.trigger(2n, { kind: 'put', n: 21 });
    wait.trigger(3n, { kind: 'txn', n: 0 });
    expect(await plain).toEqual({ kind: 'put', n: 1 });
    expect(await mapped).toBe(42);
    await expect(refused).rejects.toThrow('a txn answered');
    expect(wait.size).toBe(0);
  });

  it('rejects a mapped waiter past its deadline with its own error, the map unused', async () => {
    const wait = new WaitRegistry<number>();
    let mapped = 0;
    const w = wait.register(1n, 0, 10, () => new Error('request timed out'), (v) => (mapped = v));
    wait.sweep(11);
    await expect(w).rejects.toThrow('request timed out');
    wait.trigger(1n, 5);
    expect(mapped).toBe(0);
  });
});
