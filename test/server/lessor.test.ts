import { describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import { Lessor, encodeLeaseRecord, restoreLessor } from '../../src/server/lessor.js';
import { Harness, b } from '../mvcc/helpers.js';

function lessor(): Lessor {
  return new Lessor({ minTtl: 5, now: () => 1_000 });
}

describe('Lessor memory', () => {
  it('a lease without keys holds no key set (each lease costs its record alone)', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.restore(2n, 60, 0);
    expect(l.lookup(1n)!.keys).toBeUndefined();
    expect(l.lookup(2n)!.keys).toBeUndefined();
    expect(l.attached(1n)).toEqual([]);
  });

  it('keeps attached keys until they are detached, then drops the set', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.attach(1n, Buffer.from('a'));
    l.attach(1n, Buffer.from('b'));
    l.attach(1n, Buffer.from('a'));
    expect(l.attached(1n).sort()).toEqual(['a', 'b']);
    l.detach(1n, 'a');
    expect(l.attached(1n)).toEqual(['b']);
    l.detach(1n, 'b');
    expect(l.lookup(1n)!.keys).toBeUndefined();
    // detaching from an unknown lease or an absent key changes nothing
    l.detach(1n, 'b');
    l.detach(9n, 'a');
    expect(l.ids()).toEqual([1n]);
  });

  it('a revoked lease leaves nothing behind and hands back its keys', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.grant(2n, 60);
    l.attach(1n, Buffer.from('k1'));
    expect(l.revoke(1n)).toEqual(['k1']);
    expect(l.revoke(2n)).toEqual([]);
    expect(l.lookup(1n)).toBeUndefined();
    expect(l.ids()).toEqual([]);
    expect(l.attached(1n)).toEqual([]);
    // an attach racing the revoke does not bring the lease back
    l.attach(1n, Buffer.from('late'));
    expect(l.lookup(1n)).toBeUndefined();
    expect(l.remaining(1n)).toBe(-1);
  });
});

describe('Lessor checkpoints', () => {
  it('walks the leases a batch at a time, so a pass never holds every lease at once', () => {
    let now = 1_000;
    const l = new Lessor({ minTtl: 5, now: () => now });
    for (let id = 1n; id <= 5n; id++) l.grant(id, 60);
    // a follower runs no lease clocks: nothing to checkpoint
    expect([...l.remainingBatches(2)]).toEqual([]);
    l.promote(0);
    now += 10_000;
    const walk = l.remainingBatches(2);
    expect(walk.next().value).toEqual([
      { id: 1n, remaining: 50 },
      { id: 2n, remaining: 50 },
    ]);
    // the walk reads the leases as it goes: a grant and a revoke between batches are seen
    l.grant(6n, 30);
    l.revoke(4n);
    const rest = [...walk];
    expect(rest.map((batch) => batch.map((c) => c.id))).toEqual([[3n, 5n], [6n]]);
    expect(rest[1]).toEqual([{ id: 6n, remaining: 30 }]);
  });
});

describe('restoreLessor', () => {
  it('restores leases and their keys from the key index, reading no value', async () => {
    const h = await Harness.open();
    try {
      h.store.putLeaseRecord(7n, encodeLeaseRecord({ id: 7n, ttl: 600, remainingTtl: 120 }));
      h.store.putLeaseRecord(8n, encodeLeaseRecord({ id: 8n, ttl: 60, remainingTtl: 0 }));
      await h.put('a', 'x'.repeat(1000), { lease: 7n });
      await h.put('b', 'y', { lease: 7n });
      await h.put('c', 'z');
      await h.put('d', 'w', { lease: 8n });
      await h.put('d', 'w2'); // re-put without the lease: detached
      await h.put('e', 'v', { lease: 7n });
      await h.del('e'); // deleted: detached
      await h.reopen();
      // the store as restoreLessor sees it: lease records and the key index, no range
      // (restoring must read no value, nor build a KeyValue for every key)
      const store = h.store;
      const keysOnly: Pick<MvccStore, 'leaseRecords' | 'forEachLeasedKey'> = {
        leaseRecords: () => store.leaseRecords(),
        forEachLeasedKey: (fn) => store.forEachLeasedKey(fn),
      };
      const l = new Lessor({ minTtl: 5, now: () => 1_000 });
      await restoreLessor(l, keysOnly);
      expect(l.ids().sort()).toEqual([7n, 8n]);
      expect(l.remaining(7n)).toBe(120);
      expect(l.remaining(8n)).toBe(60);
      expect(l.attached(7n).sort()).toEqual(['a', 'b']);
      expect(l.attached(8n)).toEqual([]);
      expect((await h.range('a')).kvs[0]!.value).toEqual(b('x'.repeat(1000)));
    } finally {
      await h.close();
    }
  });
});
