// Learners, single-step membership changes with the one-pending-change rule, and
// what happens to removed members and a removed leader.

import { describe, expect, it } from 'vitest';
import { ConfChangeType, type Message, MessageType, decodeConfChange } from '../../src/raftpb/index.js';
import { ProposalDroppedError, StepError } from '../../src/raft/index.js';
import { Cluster } from './harness.js';

const { AddNode, RemoveNode, AddLearnerNode } = ConfChangeType;

function msg(p: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...p };
}

/** voters 1,2 + learner 3 (joined empty, caught up by the leader) */
function withLearner(): Cluster {
  const c = new Cluster([1n, 2n]);
  c.stabilize();
  c.elect(1n);
  c.add(3n, false);
  c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 3n });
  c.stabilize();
  c.tickAll(2);
  return c;
}

describe('learners', () => {
  it('a learner joins empty, receives and applies the log, and shows up in the leader progress', () => {
    const c = withLearner();
    c.propose(1n, 'a');
    c.stabilize();
    expect(c.node(3n).applied).toEqual(['a']);
    const pr = c.node(1n).rn.status().progress!.get(3n)!;
    expect(pr.isLearner).toBe(true);
    expect(pr.match).toBe(c.node(1n).rn.status().lastIndex);
    expect(c.node(1n).rn.status().config).toMatchObject({ voters: [1n, 2n], learners: [3n] });
  });

  it('a learner never campaigns', () => {
    const c = withLearner();
    c.isolate(3n);
    c.tickAll(100);
    expect(c.state(3n)).toBe('follower');
    expect(c.term(3n)).toBe(2);
  });

  it("a learner's acknowledgement does not count toward commit", () => {
    const c = withLearner();
    c.partition([1n, 3n], [2n]);
    c.propose(1n, 'x');
    c.stabilize();
    expect(c.node(1n).applied).toEqual([]);
    c.heal();
    c.tickAll(2);
    expect(c.node(1n).applied).toEqual(['x']);
  });

  it('promotion (AddNode on a learner) makes it a voter that counts and may campaign', () => {
    const c = withLearner();
    c.proposeConfChange(1n, { type: AddNode, nodeId: 3n });
    c.stabilize();
    expect(c.node(3n).rn.status().config).toMatchObject({ voters: [1n, 2n, 3n], learners: [] });
    c.partition([1n, 3n], [2n]);
    c.propose(1n, 'x');
    c.stabilize();
    expect(c.node(1n).applied).toEqual(['x']);
    c.heal();
    c.elect(3n);
    expect(c.state(3n)).toBe('leader');
  });

  it('a learner that heard of a higher term is not left behind (the stale leader learns the term)', () => {
    const c = withLearner();
    // A vote request from a member it does not know yet (whose campaign goes nowhere)
    // moved the learner to term 10. The learner never campaigns, so only its answer
    // to the leader can spread the term.
    c.node(3n).rn.step(msg({ type: MessageType.MsgVote, from: 42n, to: 3n, term: 10, index: 0, logTerm: 0 }));
    c.stabilize();
    expect(c.term(3n)).toBe(10);
    c.tickAll(40);
    const l = c.leader()!;
    expect(c.term(l.id)).toBeGreaterThan(10);
    c.propose(l.id, 'caught-up');
    c.stabilize();
    expect(c.node(3n).applied.at(-1)).toBe('caught-up');
  });

  it('demotion (AddLearnerNode on a voter) takes away its vote', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 3n });
    c.stabilize();
    expect(c.node(1n).rn.status().config).toMatchObject({ voters: [1n, 2n], learners: [3n] });
    c.isolate(3n);
    c.tickAll(50);
    expect(c.state(3n)).toBe('follower');
  });
});

describe('membership changes', () => {
  it('adding voters grows the quorum', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    for (const id of [4n, 5n]) {
      c.add(id, false);
      c.proposeConfChange(1n, { type: AddNode, nodeId: id });
      c.stabilize();
    }
    c.tickAll(2);
    expect(c.node(5n).rn.status().config.voters).toEqual([1n, 2n, 3n, 4n, 5n]);
    // 1 and 2 alone were a majority of 3 but are not of 5.
    c.partition([1n, 2n], [3n, 4n, 5n]);
    c.propose(1n, 'x');
    c.stabilize();
    expect(c.node(1n).applied).toEqual([]);
    c.partition([1n, 2n, 3n], [4n, 5n]);
    c.tickAll(2);
    expect(c.node(1n).applied).toEqual(['x']);
  });

  it('refuses a second change while one is not applied (one pending change)', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 4n });
    expect(() => c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 5n })).toThrow(
      /possible unapplied conf change at index 5 \(applied to 4\)/,
    );
    c.stabilize();
    c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 5n });
    c.stabilize();
    expect(c.node(1n).rn.status().config.learners).toEqual([4n, 5n]);
  });

  it('a new leader refuses changes until it has applied its whole log', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    // 2 and 3 store 'x' but 1 never hears back: 'x' is not committed.
    c.filter = (m) => m.type !== MessageType.MsgAppResp;
    c.propose(1n, 'x');
    c.stabilize();
    c.heal();
    c.isolate(1n);
    c.node(2n).rn.campaign();
    for (let i = 0; i < 10 && c.state(2n) !== 'leader'; i++) {
      for (const n of c.nodes.values()) c.processReady(n);
      c.deliverAll();
    }
    expect(c.state(2n)).toBe('leader');
    // 'x' (index 5) may hide a conf change: nothing until it is applied.
    expect(() => c.proposeConfChange(2n, { type: RemoveNode, nodeId: 3n })).toThrow(/unapplied conf change at index 5/);
    c.stabilize();
    c.proposeConfChange(2n, { type: RemoveNode, nodeId: 3n });
  });

  it('a driver that applies after advance(): no campaign and no new change until applyConfChange', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 4n });
    // Process Readies by hand, advancing without applying the conf change yet.
    const held: Array<[bigint, Uint8Array]> = [];
    for (let round = 0; round < 5; round++) {
      for (const n of c.nodes.values()) {
        if (!n.rn.hasReady()) continue;
        const rd = n.rn.ready();
        n.storage.append(rd.entries);
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        c.queue.push(...rd.messages);
        for (const e of rd.committedEntries) if (e.type === 1) held.push([n.id, e.data]);
        n.rn.advance(rd);
      }
      c.deliverAll();
    }
    expect(held.some(([id]) => id === 1n)).toBe(true);
    expect(() => c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 5n })).toThrow(/not been passed to applyConfChange/);
    const f = held.find(([id]) => id === 2n)!;
    c.node(2n).rn.campaign();
    expect(c.state(2n)).toBe('follower');
    // Once applied, all is normal again.
    for (const [id, data] of held) c.node(id).rn.applyConfChange(decodeConfChange(data));
    expect(f).toBeDefined();
    c.proposeConfChange(1n, { type: AddLearnerNode, nodeId: 5n });
    c.node(2n).rn.campaign();
    expect(c.state(2n)).toBe('candidate');
  });

  it('refuses to remove the last voter', () => {
    const c = new Cluster([1n]);
    c.stabilize();
    c.elect(1n);
    expect(() => c.proposeConfChange(1n, { type: RemoveNode, nodeId: 1n })).toThrow(/removed all voters/);
  });

  it('a removed member cannot disrupt: its messages are dropped and counted', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.proposeConfChange(1n, { type: RemoveNode, nodeId: 3n });
    c.stabilize();
    expect(c.node(1n).rn.status().config.voters).toEqual([1n, 2n]);
    // 3 never learnt it was removed and campaigns at a higher term.
    const vote = msg({ type: MessageType.MsgVote, from: 3n, to: 2n, term: 50, index: 99, logTerm: 9 });
    expect(() => c.node(2n).rn.step(vote)).toThrow(StepError);
    expect(c.term(2n)).toBe(2);
    expect(c.node(2n).rn.status().droppedMessages['non-member']).toBe(1);
  });

  it('a removed leader hands over to a caught-up voter and stops taking proposals', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.proposeConfChange(1n, { type: RemoveNode, nodeId: 1n });
    c.stabilize();
    // No election timeout was needed: the hand-over was immediate.
    const l = c.leader()!;
    expect(l.id).not.toBe(1n);
    expect(c.term(l.id)).toBe(3);
    expect(c.sent.some((m) => m.type === MessageType.MsgTimeoutNow && m.from === 1n)).toBe(true);
    expect(() => c.propose(1n, 'x')).toThrow(/no longer a voter/);
    // The new leader no longer talks to 1; it gives up leading after an election timeout.
    c.tickAll(10);
    expect(c.state(1n)).toBe('follower');
    c.propose(l.id, 'y');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['y']);
    expect(c.node(3n).applied).toEqual(['y']);
  });

  it('the survivor of a 2-voter cluster whose leader removed itself recovers', () => {
    const c = new Cluster([1n, 2n]);
    c.stabilize();
    c.elect(1n);
    // Entry 4 removes 1, entry 5 follows it. 2 stores 4 but never 5, and never hears
    // that 4 committed (nor the hand-over).
    c.proposeConfChange(1n, { type: RemoveNode, nodeId: 1n });
    c.processReady(c.node(1n)); // entry 4 goes out alone
    c.propose(1n, 'x');
    c.filter = (m) =>
      !(m.from === 1n && m.to === 2n) ||
      (m.type === MessageType.MsgApp && m.commit < 4 && m.entries.every((e) => e.index < 5));
    c.stabilize();
    expect(c.node(1n).rn.status().config.voters).toEqual([2n]);
    expect(c.node(2n).rn.status().config.voters).toEqual([1n, 2n]);
    // 1 restarts as a mere follower. 2 needs its vote, which 1 refuses (its log is
    // longer) — but the refusal says index 4 committed, so 2 applies the removal.
    c.heal();
    c.restart(1n);
    c.tickAll(60);
    expect(c.state(2n)).toBe('leader');
    expect(c.node(2n).rn.status().config.voters).toEqual([2n]);
    c.propose(2n, 'alone');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['alone']);
  });
});
