import { describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import { FOREVER_TTL, type LeaseCheckpoint, Lessor, encodeLeaseRecord, restoreLessor } from '../../src/server/lessor.js';
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
  const INTERVAL = 300_000;

  /**
   * A primary lessor and a follower's, on one clock. The checkpointer applies each batch to
   * both, as raft would; `proposed` is what reached raft.
   */
  function pair(checkpoints: boolean) {
    const clock = { now: 1_000 };
    const opts = { minTtl: 5, now: () => clock.now, checkpoints: checkpoints ? { intervalMs: INTERVAL, persist: false } : undefined };
    const leader = new Lessor(opts);
    const follower = new Lessor(opts);
    const proposed: LeaseCheckpoint[][] = [];
    leader.setCheckpointer(async (batch) => {
      proposed.push(batch);
      for (const c of batch) {
        leader.checkpoint(c.id, c.remainingTtl);
        follower.checkpoint(c.id, c.remainingTtl);
      }
    });
    leader.promote(0);
    const grant = (id: bigint, ttl: number) => {
      leader.grant(id, ttl);
      follower.grant(id, ttl);
    };
    return { clock, leader, follower, proposed, grant };
  }

  it('off (etcd 3.4 without --experimental-enable-lease-checkpoint): nothing reaches raft, a new leader starts every lease over', async () => {
    const { clock, leader, follower, proposed, grant } = pair(false);
    grant(1n, 900);
    clock.now += 2 * INTERVAL;
    await leader.checkpointScheduledLeases();
    expect(await leader.renew(1n)).toBe(900);
    clock.now += 100_000;
    await leader.checkpointScheduledLeases();
    expect(proposed).toEqual([]);
    follower.promote(0);
    expect(follower.remaining(1n)).toBe(900);
  });

  it('on: a lease is checkpointed once per interval, and a new leader resumes it from there', async () => {
    const { clock, leader, follower, proposed, grant } = pair(true);
    grant(1n, 900);
    grant(2n, 300); // not longer than the interval: never scheduled (etcd's rule)
    clock.now += INTERVAL - 1;
    await leader.checkpointScheduledLeases();
    expect(proposed).toEqual([]);
    clock.now += 1;
    await leader.checkpointScheduledLeases();
    expect(proposed).toEqual([[{ id: 1n, remainingTtl: 600 }]]);
    // the applied checkpoint (600 s, still longer than the interval) schedules the next one
    clock.now += INTERVAL + 500;
    await leader.checkpointScheduledLeases();
    expect(proposed[1]).toEqual([{ id: 1n, remainingTtl: 300 }]); // 299.5 s left, rounded up
    clock.now += INTERVAL;
    await leader.checkpointScheduledLeases();
    expect(proposed).toHaveLength(2);
    leader.demote();
    follower.promote(1_000);
    expect(follower.remaining(1n)).toBe(301);
    expect(follower.remaining(2n)).toBe(301); // its whole TTL again
  });

  it('proposes at most 1000 checkpoints per raft entry, every due one in one pass', async () => {
    const { clock, leader, proposed, grant } = pair(true);
    for (let id = 1n; id <= 2500n; id++) grant(id, 3600);
    clock.now += INTERVAL;
    await leader.checkpointScheduledLeases();
    expect(proposed.map((b) => b.length)).toEqual([1000, 1000, 500]);
  });

  it('a renewal clears the checkpoint through raft first, so a later leader does not resume from before it', async () => {
    const { clock, leader, follower, proposed, grant } = pair(true);
    grant(1n, 900);
    clock.now += INTERVAL;
    await leader.checkpointScheduledLeases();
    expect(follower.lookup(1n)!.remainingTtl).toBe(600);
    expect(await leader.renew(1n)).toBe(900);
    expect(proposed[1]).toEqual([{ id: 1n, remainingTtl: 0 }]);
    expect(follower.lookup(1n)!.remainingTtl).toBe(0);
    // nothing set any more: the next renewal costs no raft entry
    expect(await leader.renew(1n)).toBe(900);
    expect(proposed).toHaveLength(2);
    follower.promote(0);
    expect(follower.remaining(1n)).toBe(900);
  });

  it('a lease renewed since it was scheduled, revoked or expired is skipped; a demoted lessor proposes nothing', async () => {
    const { clock, leader, proposed, grant } = pair(true);
    grant(1n, 900);
    grant(2n, 900);
    grant(3n, 301);
    clock.now += INTERVAL - 500;
    expect(await leader.renew(1n)).toBe(900); // 900 s left when due: nothing to record
    leader.revoke(2n);
    clock.now += 500;
    await leader.checkpointScheduledLeases();
    expect(proposed).toEqual([[{ id: 3n, remainingTtl: 1 }]]);
    grant(4n, 900);
    leader.demote();
    clock.now += INTERVAL;
    await leader.checkpointScheduledLeases();
    expect(proposed).toHaveLength(1);
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
      // not primary: every lease expires "forever", as etcd's lessor reports it
      expect(l.remaining(7n)).toBe(FOREVER_TTL);
      // once primary, each resumes from its checkpoint, else its whole TTL
      l.promote(0);
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
