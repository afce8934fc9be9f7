// Pre-vote, check-quorum (and its leader lease), and leadership transfer.

import { describe, expect, it } from 'vitest';
import { type Message, MessageType } from '../../src/raftpb/index.js';
import { ProposalDroppedError } from '../../src/raft/index.js';
import { MAX_HELD_PROPOSALS } from '../../src/raft/held-proposals.js';
import { Cluster } from './harness.js';

function msg(p: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...p };
}

function running(opts: ConstructorParameters<typeof Cluster>[1] = {}, ids = [1n, 2n, 3n]): Cluster {
  const c = new Cluster(ids, opts);
  c.stabilize();
  c.elect(1n);
  return c;
}

describe('pre-vote', () => {
  it('an isolated member does not inflate its term, and rejoining does not depose the leader', () => {
    const c = running({ preVote: true });
    c.isolate(3n);
    c.tickAll(100);
    expect(c.term(3n)).toBe(2);
    expect(c.state(3n)).not.toBe('candidate');
    c.heal();
    c.tickAll(5);
    expect(c.state(1n)).toBe('leader');
    expect(c.term(1n)).toBe(2);
    expect(c.node(3n).rn.status().softState.lead).toBe(1n);
  });

  it('without pre-vote the same isolation bumps terms and the rejoining member forces an election', () => {
    const c = running({ preVote: false });
    c.isolate(3n);
    c.tickAll(100);
    expect(c.term(3n)).toBeGreaterThan(3);
    c.heal();
    c.tickAll(30);
    expect(c.term(1n)).toBeGreaterThan(2);
  });

  it('granting a pre-vote changes neither the term nor the vote of the voter', () => {
    const c = running({ preVote: true });
    const before = c.node(2n).rn.status().hardState;
    c.node(2n).rn.step(msg({ type: MessageType.MsgPreVote, from: 3n, to: 2n, term: 5, index: 99, logTerm: 2 }));
    c.processReady(c.node(2n));
    expect(c.node(2n).rn.status().hardState).toEqual(before);
    const resp = c.queue.find((m) => m.type === MessageType.MsgPreVoteResp)!;
    expect(resp).toMatchObject({ to: 3n, term: 5, reject: false });
  });

  it('a pre-candidate that wins the pre-vote runs a real election and leads', () => {
    const c = new Cluster([1n, 2n, 3n], { preVote: true });
    c.stabilize();
    c.elect(2n);
    expect(c.state(2n)).toBe('leader');
    expect(c.term(2n)).toBe(2);
  });
});

describe('check-quorum', () => {
  it('a leader cut off from a quorum steps down within two election timeouts', () => {
    const c = running({ checkQuorum: true });
    c.isolate(1n);
    let ticks = 0;
    while (c.state(1n) === 'leader' && ticks < 100) {
      c.node(1n).rn.tick();
      c.stabilize();
      ticks++;
    }
    expect(c.state(1n)).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(20);
  });

  it('without check-quorum an isolated leader keeps believing it leads', () => {
    const c = running({ checkQuorum: false });
    c.isolate(1n);
    for (let i = 0; i < 100; i++) c.node(1n).rn.tick();
    c.stabilize();
    expect(c.state(1n)).toBe('leader');
  });

  it('followers that recently heard from the leader ignore vote requests (leader lease)', () => {
    const c = running({ checkQuorum: true });
    const f = c.node(2n).rn;
    f.step(msg({ type: MessageType.MsgVote, from: 3n, to: 2n, term: 9, index: 99, logTerm: 9 }));
    expect(f.status().hardState.term).toBe(2);
    expect(f.hasReady()).toBe(false);
    // After an election timeout without the leader, the lease is over.
    c.isolate(1n);
    for (let i = 0; i < 10; i++) f.tick();
    f.step(msg({ type: MessageType.MsgVote, from: 3n, to: 2n, term: 9, index: 99, logTerm: 9 }));
    expect(f.status().hardState).toMatchObject({ term: 9, vote: 3n });
  });
});

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date follower at once (MsgTimeoutNow)', () => {
    const c = running({ preVote: true, checkQuorum: true });
    c.node(1n).rn.transferLeader(3n);
    c.stabilize();
    expect(c.sent.some((m) => m.type === MessageType.MsgTimeoutNow && m.to === 3n)).toBe(true);
    expect(c.state(3n)).toBe('leader');
    expect(c.state(1n)).toBe('follower');
    expect(c.term(3n)).toBe(3);
    c.propose(1n, 'after');
    c.stabilize();
    expect(c.node(3n).applied).toEqual(['after']);
  });

  it('catches a lagging transferee up before handing over', () => {
    const c = running();
    c.isolate(3n);
    for (let i = 0; i < 5; i++) c.propose(1n, `w${i}`);
    c.stabilize();
    c.heal();
    c.node(1n).rn.transferLeader(3n);
    expect(c.node(1n).rn.status().leadTransferee).toBe(3n);
    c.stabilize();
    expect(c.state(3n)).toBe('leader');
    expect(c.node(3n).applied).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
  });

  it('can be requested on a follower (forwarded to the leader)', () => {
    const c = running();
    c.node(2n).rn.transferLeader(3n);
    c.stabilize();
    expect(c.state(3n)).toBe('leader');
  });

  it('holds proposals while in progress and appends them itself when the transfer is aborted', () => {
    const c = running();
    c.isolate(3n);
    c.node(1n).rn.transferLeader(3n);
    c.propose(1n, 'x');
    c.stabilize();
    expect(c.node(2n).applied).toEqual([]);
    for (let i = 0; i < 10; i++) c.node(1n).rn.tick();
    c.stabilize();
    expect(c.state(1n)).toBe('leader');
    expect(c.node(1n).rn.status().leadTransferee).toBe(0n);
    c.propose(1n, 'y');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['x', 'y']);
  });

  // etcd's raft drops it, and the transferee's client waits out its whole deadline
  it("hands the transferee's own forwarded proposal to it once it leads, applied once", () => {
    const c = running();
    c.node(1n).rn.transferLeader(3n); // 3 is up to date: MsgTimeoutNow goes out in this Ready
    c.propose(3n, 'forwarded'); // 3 forwards it to 1, which gets it mid-transfer
    c.stabilize();
    expect(c.state(3n)).toBe('leader');
    const held = c.sent.filter((m) => m.type === MessageType.MsgProp && m.from === 1n && m.to === 3n);
    expect(held).toHaveLength(1);
    for (const id of [1n, 2n, 3n]) expect(c.node(id).applied).toEqual(['forwarded']);
    expect(c.stepErrors).toEqual([]);
  });

  it("forwards the old leader's own proposals to the new leader", () => {
    const c = running();
    c.node(1n).rn.transferLeader(2n);
    c.propose(1n, 'a');
    c.propose(1n, 'b');
    c.stabilize();
    expect(c.state(2n)).toBe('leader');
    for (const id of [1n, 2n, 3n]) expect(c.node(id).applied).toEqual(['a', 'b']);
  });

  it('drops held proposals that no leader took within two election timeouts', () => {
    const c = running({ preVote: true });
    c.node(1n).rn.transferLeader(3n);
    c.propose(1n, 'stranded');
    // 1 hands over and votes for 3, then hears nothing more from anyone
    const handover = new Set<MessageType>([MessageType.MsgTimeoutNow, MessageType.MsgVote, MessageType.MsgVoteResp]);
    c.filter = (m) => (m.to !== 1n && m.from !== 1n) || handover.has(m.type);
    c.stabilize();
    expect(c.state(3n)).toBe('leader');
    expect(c.node(1n).rn.status().softState).toEqual({ lead: 0n, raftState: 'follower' });
    for (let i = 0; i < 20; i++) c.node(1n).rn.tick();
    c.stabilize();
    c.heal();
    c.tickAll(5);
    expect(c.node(1n).rn.status().softState.lead).toBe(3n);
    for (const id of [1n, 2n, 3n]) expect(c.node(id).applied).toEqual([]);
    expect(c.sent.some((m) => m.type === MessageType.MsgProp && m.from === 1n)).toBe(false);
  });

  it('refuses proposals past the held limit', () => {
    const c = running();
    c.isolate(3n);
    c.node(1n).rn.transferLeader(3n);
    for (let i = 0; i < MAX_HELD_PROPOSALS; i++) c.propose(1n, `p${i}`);
    expect(() => c.propose(1n, 'one too many')).toThrow(ProposalDroppedError);
    expect(() => c.propose(1n, 'one too many')).toThrow(/transfer/);
  });

  it('ignores transfers to itself and to learners', () => {
    const c = new Cluster([1n, 2n]);
    c.stabilize();
    c.elect(1n);
    c.add(3n, false);
    c.proposeConfChange(1n, { type: 3, nodeId: 3n });
    c.stabilize();
    c.node(1n).rn.transferLeader(1n);
    expect(c.node(1n).rn.status().leadTransferee).toBe(0n);
    c.node(1n).rn.transferLeader(3n);
    expect(c.node(1n).rn.status().leadTransferee).toBe(0n);
    c.stabilize();
    expect(c.state(1n)).toBe('leader');
  });
});

// The transferee campaigns without pre-vote and its request carries the transfer marker.
describe('transfer campaign', () => {
  it('uses MsgVote with the CampaignTransfer context', () => {
    const c = running({ preVote: true });
    c.node(1n).rn.transferLeader(2n);
    c.stabilize();
    const votes = c.sent.filter((m) => m.from === 2n && m.type === MessageType.MsgVote);
    expect(votes.length).toBeGreaterThan(0);
    expect(new TextDecoder().decode(votes[0]!.context)).toBe('CampaignTransfer');
    expect(c.sent.some((m) => m.from === 2n && m.type === MessageType.MsgPreVote)).toBe(false);
  });
});
