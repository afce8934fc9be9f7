// The simulator must be able to fail: its checker trips on each violated invariant,
// and deliberately broken drivers are caught.

import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raftpb/index.js';
import { Checker, InvariantViolation, type SimProfile, runSeed } from '../../src/raft/sim/index.js';

const e = (index: number, term: number, data: string): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(data),
});

describe('Checker', () => {
  it('trips on two leaders in one term', () => {
    const c = new Checker();
    c.leader(1n, 3);
    c.leader(1n, 3);
    expect(() => c.leader(2n, 3)).toThrow(/election safety/);
  });

  it('trips when entries with the same index and term differ or follow different terms', () => {
    const c = new Checker();
    c.persisted(1n, e(5, 2, 'a'), 1);
    c.persisted(2n, e(5, 2, 'a'), 1);
    expect(() => c.persisted(3n, e(5, 2, 'b'), 1)).toThrow(/log matching/);
    expect(() => c.persisted(3n, e(5, 2, 'a'), 2)).toThrow(/log matching/);
  });

  it('trips when a committed index changes', () => {
    const c = new Checker();
    c.committedEntry(1n, e(1, 1, 'a'));
    expect(() => c.committedEntry(2n, e(1, 2, 'b'))).toThrow(/commit durability/);
  });

  it('trips when a new leader lacks committed entries', () => {
    const c = new Checker();
    c.committedEntry(1n, e(1, 1, 'a'));
    c.committedEntry(1n, e(2, 1, 'b'));
    expect(() => c.leaderCompleteness(2n, 2, 1, 1, () => 1)).toThrow(/leader completeness/);
    expect(() => c.leaderCompleteness(2n, 2, 1, 3, (i) => (i === 2 ? 2 : 1))).toThrow(/leader completeness/);
    c.leaderCompleteness(3n, 2, 1, 3, () => 1);
  });

  it('trips on out-of-order, uncommitted or divergent applies', () => {
    const c = new Checker();
    c.committedEntry(1n, e(1, 1, 'a'));
    c.committedEntry(1n, e(2, 1, 'b'));
    const h1 = c.applied(1n, e(1, 1, 'a'), 0, 0);
    expect(() => c.applied(2n, e(2, 1, 'b'), 0, 0)).toThrow(/state machine safety/);
    expect(() => c.applied(2n, e(3, 1, 'c'), 2, 0)).toThrow(/never seen committed/);
    expect(() => c.restoredSnapshot(3n, 1, h1 + 1)).toThrow(/different applied state/);
  });

  it('trips on a read that misses an earlier commit', () => {
    const c = new Checker();
    c.committedEntry(1n, e(1, 1, 'a'));
    c.committedEntry(1n, e(2, 1, 'b'));
    c.readStarted('r1', 1n);
    c.readStarted('r2', 1n);
    c.readServed('r1', 1n, 2);
    expect(() => c.readServed('r2', 1n, 1)).toThrow(InvariantViolation);
  });
});

describe('simulator catches broken drivers', () => {
  it('serving reads from the local commit index breaks linearizability', async () => {
    const failed: string[] = [];
    for (let seed = 1; seed <= 20 && failed.length === 0; seed++) {
      const res = await runSeed({ seed, steps: 1500, persistence: 'local-reads' });
      if (!res.ok) failed.push(res.error!);
    }
    expect(failed[0]).toMatch(/linearizability/);
  });

  // Many short elections, lossy network, voters crashing right after voting.
  const voteChaos: Partial<SimProfile> = {
    nodes: 3,
    electionTick: 4,
    heartbeatTick: 1,
    crashRate: 0.01,
    restartDelay: [1, 6],
    crashAfterVoteRate: 0.5,
    crashMidReadyRate: 0,
    preVote: false,
    checkQuorum: false,
    memberChangeRate: 0,
    transferRate: 0,
    faults: { drop: 0.2, duplicate: 0.2, maxDelay: 8, longDelayRate: 0.2, longDelay: 20 },
  };

  // Members run the real WAL on a MemDisk: a power cut keeps only what was synced.
  const powerCuts: Partial<SimProfile> = { nodes: 3, crashRate: 0.01, restartDelay: [1, 20], crashMidReadyRate: 0, memberChangeRate: 0 };

  it('a WAL that never fsyncs loses acknowledged entries in a power cut: the cluster cannot recover them', async () => {
    let caught: { seed: number; error: string } | undefined;
    for (let seed = 1; seed <= 20 && caught === undefined; seed++) {
      const res = await runSeed({ seed, steps: 1500, persistence: 'no-fsync', profile: powerCuts });
      if (!res.ok) caught = { seed, error: res.error! };
    }
    // a member that lost entries it acknowledged: raft refuses the leader's commit index
    // beyond its log (etcd panics there), or a lost entry breaks a safety property
    expect(caught?.error).toMatch(/liveness|durability|completeness|election safety|log matching/);
    const ok = await runSeed({ seed: caught!.seed, steps: 1500, profile: powerCuts });
    expect(ok.error).toBeUndefined();
  });

  it('not persisting the vote lets a member vote twice in a term: two leaders', async () => {
    let caught: { seed: number; error: string } | undefined;
    for (let seed = 1; seed <= 300 && caught === undefined; seed++) {
      const res = await runSeed({ seed, steps: 1500, persistence: 'forget-vote', profile: voteChaos });
      if (!res.ok) caught = { seed, error: res.error! };
    }
    expect(caught?.error).toMatch(/election safety/);
    // The same world with a correct driver is fine.
    const ok = await runSeed({ seed: caught!.seed, steps: 1500, profile: voteChaos });
    expect(ok.error).toBeUndefined();
  });
});
