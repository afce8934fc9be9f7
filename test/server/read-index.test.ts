import { describe, expect, it } from 'vitest';
import { ReadIndexQueue } from '../../src/server/read-index.js';

function queue() {
  const asked: Buffer[] = [];
  let applied = 0;
  let leader = true;
  let id = 0n;
  const timeouts: number[] = [];
  const q = new ReadIndexQueue({
    requestReadIndex: (ctx) => asked.push(Buffer.from(ctx)),
    nextId: () => ++id,
    hasLeader: () => leader,
    appliedIndex: () => applied,
    timeoutMs: () => 7000,
    timedOut: (ms) => timeouts.push(ms),
  });
  return {
    q,
    asked,
    timeouts,
    setApplied: (n: number) => {
      applied = n;
      q.onApplied(n);
    },
    setLeader: (l: boolean) => (leader = l),
  };
}

describe('ReadIndexQueue', () => {
  it('batches reads that arrive while a round is in flight into one next round', async () => {
    const { q, asked, setApplied } = queue();
    const done: string[] = [];
    const a = q.read().then(() => done.push('a'));
    const b = q.read().then(() => done.push('b'));
    const c = q.read().then(() => done.push('c'));
    expect(asked).toHaveLength(1); // a alone went out; b and c wait for the next round
    q.onReadState(10, asked[0]!);
    expect(asked).toHaveLength(2);
    setApplied(10);
    await a;
    expect(done).toEqual(['a']);
    q.onReadState(12, asked[1]!);
    setApplied(11);
    await Promise.resolve();
    expect(done).toEqual(['a']); // index 12 not applied yet
    setApplied(12);
    await Promise.all([b, c]);
    expect(done.sort()).toEqual(['a', 'b', 'c']);
  });

  it('ignores answers to other contexts, re-asks a silent round, fails it on timeout', async () => {
    const { q, asked, setLeader, timeouts } = queue();
    const r = q.read();
    q.onReadState(5, Buffer.alloc(8, 9));
    const t0 = Date.now();
    q.tick(t0 + 600);
    expect(asked).toHaveLength(2);
    expect(asked[1]).toEqual(asked[0]);
    setLeader(false);
    q.tick(t0 + 1200);
    expect(asked).toHaveLength(2); // no leader to ask
    expect(timeouts).toEqual([]);
    q.tick(t0 + 8000);
    await expect(r).rejects.toThrow('etcdserver: request timed out');
    expect(timeouts).toEqual([7000]); // reported once (etcd_server_slow_read_indexes_total)
    const u = q.read();
    q.failAll(new Error('stopped'));
    await expect(u).rejects.toThrow('stopped');
  });

  it('keeps a round through a leader change and asks the new leader at once', async () => {
    const { q, asked, setLeader, setApplied } = queue();
    const r = q.read();
    expect(asked).toHaveLength(1);
    setLeader(false);
    const t0 = Date.now();
    q.tick(t0 + 600);
    expect(asked).toHaveLength(1); // nobody to ask during the election
    setLeader(true);
    q.leaderFound();
    expect(asked).toHaveLength(2);
    expect(asked[1]).toEqual(asked[0]);
    q.onReadState(3, asked[1]!);
    setApplied(3);
    await expect(r).resolves.toBeUndefined();
  });
});
