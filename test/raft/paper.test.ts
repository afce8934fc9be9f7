// Unit tests mapped to the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm"): §5.2 leader election, §5.3 log replication,
// §5.4 safety including the figure 8 scenario.

import { describe, expect, it } from 'vitest';
import { type Message, MessageType, decodeConfChange } from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';
import { Cluster, enc, prng } from './harness.js';

/** A full message with defaults, for stepping crafted input. */
function msg(p: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...p };
}

/** One node of a 3-voter cluster, bootstrapped and persisted, nobody else running. */
function lone(seed = 1, id = 1n): { rn: RawNode; storage: MemoryStorage; drain: () => Message[] } {
  const storage = new MemoryStorage();
  const rn = new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, random: prng(seed) });
  rn.bootstrap([{ id: 1n }, { id: 2n }, { id: 3n }]);
  const drain = (): Message[] => {
    const out: Message[] = [];
    while (rn.hasReady()) {
      const rd = rn.ready();
      if (rd.snapshot) storage.applySnapshot(rd.snapshot);
      storage.append(rd.entries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      out.push(...rd.messages);
      for (const e of rd.committedEntries) {
        if (e.type === 1) rn.applyConfChange(decodeConfChange(e.data));
      }
      rn.advance(rd);
    }
    return out;
  };
  drain();
  return { rn, storage, drain };
}

/** Campaign (repeatedly: a first try may only catch up on the term) until leader. */
function campaignUntilLeader(c: Cluster, id: bigint): void {
  for (let i = 0; i < 3 && c.state(id) !== 'leader'; i++) {
    c.node(id).rn.campaign();
    c.stabilize();
  }
}

function ticksUntilCampaign(rn: RawNode, max = 100): number {
  for (let t = 1; t <= max; t++) {
    rn.tick();
    if (rn.status().softState.raftState !== 'follower') return t;
  }
  return -1;
}

describe('§5.2 leader election', () => {
  it('a follower that hears nothing for an election timeout campaigns: votes for itself, asks every voter', () => {
    const { rn, drain } = lone();
    const t = ticksUntilCampaign(rn);
    expect(t).toBeGreaterThanOrEqual(10);
    expect(t).toBeLessThan(20);
    const st = rn.status();
    expect(st.softState.raftState).toBe('candidate');
    expect(st.hardState).toMatchObject({ term: 2, vote: 1n });
    const votes = drain().filter((m) => m.type === MessageType.MsgVote);
    expect(votes.map((m) => m.to).sort()).toEqual([2n, 3n]);
    for (const m of votes) expect(m).toMatchObject({ term: 2, index: 3, logTerm: 1 });
  });

  it('election timeouts are randomized over [electionTick, 2×electionTick)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) seen.add(ticksUntilCampaign(lone(seed).rn));
    expect(Math.min(...seen)).toBe(10);
    expect(Math.max(...seen)).toBe(19);
    expect(seen.size).toBe(10);
  });

  it('a candidate that wins a majority becomes leader and the others follow it', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(2n);
    expect(c.state(2n)).toBe('leader');
    for (const id of [1n, 3n]) {
      expect(c.state(id)).toBe('follower');
      expect(c.node(id).rn.status().softState.lead).toBe(2n);
      expect(c.term(id)).toBe(2);
    }
  });

  it('each server grants at most one vote per term, first come first served', () => {
    const { rn, drain } = lone();
    rn.step(msg({ type: MessageType.MsgVote, from: 2n, to: 1n, term: 5, index: 3, logTerm: 1 }));
    rn.step(msg({ type: MessageType.MsgVote, from: 3n, to: 1n, term: 5, index: 3, logTerm: 1 }));
    // Asking again for the same candidate is answered the same way.
    rn.step(msg({ type: MessageType.MsgVote, from: 2n, to: 1n, term: 5, index: 3, logTerm: 1 }));
    const resps = drain().filter((m) => m.type === MessageType.MsgVoteResp);
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [2n, false],
      [3n, true],
      [2n, false],
    ]);
    expect(rn.status().hardState.vote).toBe(2n);
  });

  it('a candidate that hears from a leader of its term becomes its follower', () => {
    const { rn, drain } = lone();
    ticksUntilCampaign(rn);
    drain();
    rn.step(msg({ type: MessageType.MsgApp, from: 3n, to: 1n, term: 2, index: 3, logTerm: 1 }));
    expect(rn.status().softState).toEqual({ lead: 3n, raftState: 'follower' });
  });

  it('with a split vote the candidate times out and starts a new election in a higher term', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.partition([1n], [2n], [3n]);
    c.elect(1n);
    expect(c.state(1n)).toBe('candidate');
    expect(c.term(1n)).toBe(2);
    for (let i = 0; i < 20 && c.term(1n) === 2; i++) {
      c.node(1n).rn.tick();
      c.stabilize();
    }
    expect(c.state(1n)).toBe('candidate');
    expect(c.term(1n)).toBe(3);
  });

  it('any server that sees a higher term steps down to follower; stale terms are ignored', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    const leader = c.node(1n).rn;
    leader.step(msg({ type: MessageType.MsgHeartbeatResp, from: 2n, to: 1n, term: 1 }));
    expect(c.state(1n)).toBe('leader');
    leader.step(msg({ type: MessageType.MsgAppResp, from: 3n, to: 1n, term: 9, index: 0 }));
    expect(c.state(1n)).toBe('follower');
    expect(c.term(1n)).toBe(9);
  });
});

describe('§5.3 log replication', () => {
  it('the leader appends a proposal, replicates it and commits it once a majority stores it', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.partition([1n, 2n], [3n]);
    c.propose(1n, 'x');
    c.stabilize();
    // Stored on 1 and 2: committed and applied there, even with 3 cut off.
    expect(c.node(1n).applied).toEqual(['x']);
    expect(c.node(2n).applied).toEqual(['x']);
    expect(c.node(3n).applied).toEqual([]);
    c.heal();
    c.tickAll(2);
    expect(c.node(3n).applied).toEqual(['x']);
    expect(c.commit(3n)).toBe(c.commit(1n));
  });

  it('a follower rejects an append whose previous entry it does not hold', () => {
    const { rn, drain } = lone();
    rn.step(msg({ type: MessageType.MsgApp, from: 2n, to: 1n, term: 2, index: 7, logTerm: 2, commit: 3 }));
    const [resp] = drain().filter((m) => m.type === MessageType.MsgAppResp);
    expect(resp).toMatchObject({ reject: true, index: 7, rejectHint: 3, logTerm: 1 });
    // Matching previous entry: accepted.
    rn.step(
      msg({
        type: MessageType.MsgApp,
        from: 2n,
        to: 1n,
        term: 2,
        index: 3,
        logTerm: 1,
        commit: 3,
        entries: [{ term: 2, index: 4, type: 0, data: enc('a') }],
      }),
    );
    const [ok] = drain().filter((m) => m.type === MessageType.MsgAppResp);
    expect(ok).toMatchObject({ reject: false, index: 4 });
  });

  it("a follower's conflicting uncommitted tail is replaced by the leader's entries", () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    // Leader 1 appends entries nobody else receives.
    c.partition([1n], [2n, 3n]);
    c.propose(1n, 'lost1');
    c.propose(1n, 'lost2');
    c.stabilize();
    // The majority elects 2, which commits its own entries at the same indexes.
    c.elect(2n);
    c.propose(2n, 'kept1');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['kept1']);
    c.heal();
    c.tickAll(3);
    expect(c.logTerms(1n)).toEqual(c.logTerms(2n));
    for (const id of [1n, 2n, 3n]) expect(c.node(id).applied).toEqual(['kept1']);
  });

  it('conflict hints skip a divergent tail a term at a time, not an entry at a time', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    // 1 leads term 2 alone and appends 50 entries nobody else gets.
    c.partition([1n], [2n, 3n]);
    for (let i = 0; i < 50; i++) c.propose(1n, `stale${i}`);
    c.stabilize();
    // 2 leads term 3 with 3 and commits 50 others.
    campaignUntilLeader(c, 2n);
    for (let i = 0; i < 50; i++) c.propose(2n, `new${i}`);
    c.stabilize();
    // 3 leads term 4 with 1's vote, and starts probing 1 at its own last index.
    c.restart(1n);
    c.partition([1n, 3n], [2n]);
    const before = c.sent.length;
    campaignUntilLeader(c, 3n);
    c.tickAll(3);
    const rejections = c.sent.slice(before).filter((m) => m.type === MessageType.MsgAppResp && m.reject && m.from === 1n);
    // Without hints: one rejection per divergent entry (~50). With them: one per term.
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(c.logTerms(1n)).toEqual(c.logTerms(3n));
    expect(c.node(1n).applied).toEqual(c.node(3n).applied);
    expect(c.node(1n).applied).toHaveLength(50);
  });
});

describe('§5.4 safety', () => {
  it('voters refuse candidates whose log is less up-to-date (§5.4.1)', () => {
    const { rn, drain } = lone();
    // Our log: indexes 1..3 at term 1. Give it (4, term 2).
    rn.step(
      msg({
        type: MessageType.MsgApp,
        from: 2n,
        to: 1n,
        term: 2,
        index: 3,
        logTerm: 1,
        entries: [{ term: 2, index: 4, type: 0, data: enc('a') }],
      }),
    );
    drain();
    const ask = (from: bigint, term: number, index: number, logTerm: number): boolean => {
      rn.step(msg({ type: MessageType.MsgPreVote, from, to: 1n, term, index, logTerm }));
      const r = drain().find((m) => m.type === MessageType.MsgPreVoteResp)!;
      return !r.reject;
    };
    expect(ask(3n, 3, 99, 1)).toBe(false); // longer log but older last term
    expect(ask(3n, 3, 3, 2)).toBe(false); // same last term, shorter
    expect(ask(3n, 3, 4, 2)).toBe(true); // equal
    expect(ask(3n, 3, 1, 3)).toBe(true); // newer last term wins even if shorter
  });

  it('figure 8: an entry from an earlier term is not committed by counting replicas', () => {
    const ids = [1n, 2n, 3n, 4n, 5n];
    const c = new Cluster(ids);
    c.stabilize();
    c.elect(1n); // term 2, log 1..5 (bootstrap) + 6 (empty, term 2)
    const base = c.commit(1n);
    expect(base).toBe(6);

    // (a) S1 replicates index 7 (term 2) to S2 only.
    c.partition([1n, 2n], [3n, 4n, 5n]);
    c.propose(1n, 'a');
    c.stabilize();
    expect(c.commit(1n)).toBe(base);

    // (b) S5 is elected at term 3 by S3, S4, S5 and appends index 7 (term 3) only locally.
    c.partition([1n], [2n], [3n, 4n, 5n]);
    c.node(5n).rn.campaign();
    c.filter = (m) => [3n, 4n, 5n].includes(m.from) && [3n, 4n, 5n].includes(m.to) && m.type !== MessageType.MsgApp;
    c.stabilize();
    expect(c.state(5n)).toBe('leader');
    expect(c.term(5n)).toBe(3);
    expect(c.logTerms(5n).at(-1)).toBe(3);

    // (c) S5 crashes; S1 restarts and is elected at term 4 by S1, S2, S3, and replicates
    // index 7 (term 2) — but not its own term-4 entry — to S2 and S3: a majority holds index 7.
    c.node(5n).down = true;
    c.restart(1n);
    c.partition([1n, 2n, 3n], [4n], [5n]);
    c.mutate = (m) =>
      m.type === MessageType.MsgApp && m.from === 1n ? { ...m, entries: m.entries.filter((e) => e.term !== 4) } : m;
    campaignUntilLeader(c, 1n);
    expect(c.state(1n)).toBe('leader');
    expect(c.term(1n)).toBe(4);
    expect(c.logTerms(3n)[6]).toBe(2); // index 7 on S3 is S1's term-2 entry
    const prog = c.node(1n).rn.status().progress!;
    expect([...prog.values()].filter((p) => p.match >= 7).length).toBeGreaterThanOrEqual(3);
    // The rule of §5.4.2: index 7 is not committed, because it is not from term 4.
    expect(c.commit(1n)).toBe(base);

    // (d) S1 goes away before replicating a term-4 entry: S5 can be elected (S2, S3, S4
    // have last term 2 < 3) and overwrite index 7 — which is fine, it never committed.
    c.heal();
    c.node(1n).down = true;
    c.restart(5n);
    campaignUntilLeader(c, 5n);
    expect(c.state(5n)).toBe('leader');
    for (const id of [2n, 3n, 4n, 5n]) expect(c.logTerms(id)[6]).toBe(3);
    expect(c.node(2n).applied).toEqual([]);

    // (e) Had S1 replicated its term-4 entry to a majority, both would commit together.
    const c2 = new Cluster(ids);
    c2.stabilize();
    c2.elect(1n);
    c2.partition([1n, 2n], [3n, 4n, 5n]);
    c2.propose(1n, 'a');
    c2.stabilize();
    c2.partition([1n, 2n, 3n], [4n, 5n]);
    c2.restart(1n);
    campaignUntilLeader(c2, 1n);
    expect(c2.term(1n)).toBe(3);
    expect(c2.commit(1n)).toBe(8);
    expect(c2.node(1n).applied).toEqual(['a']);
  });

  it('leader completeness: whoever wins after a leader loss holds every committed entry', () => {
    const c = new Cluster([1n, 2n, 3n, 4n, 5n]);
    c.stabilize();
    c.elect(1n);
    for (let round = 0; round < 5; round++) {
      const l = c.leader()!;
      c.propose(l.id, `w${round}`);
      c.stabilize();
      const committed = c.node(l.id).applied.slice();
      // Depose the leader; any of the others may win, and must hold what committed.
      const others = [...c.nodes.keys()].filter((id) => id !== l.id);
      c.partition([l.id], others);
      campaignUntilLeader(c, others[round % others.length]!);
      const nl = c.leader()!;
      expect(nl.id).not.toBe(l.id);
      c.propose(nl.id, `after${round}`);
      c.stabilize();
      expect(nl.applied.slice(0, committed.length)).toEqual(committed);
      c.heal();
      c.tickAll(2);
    }
    const applied = c.node(1n).applied;
    for (const n of c.nodes.values()) expect(n.applied).toEqual(applied);
    expect(applied).toHaveLength(10);
  });
});
