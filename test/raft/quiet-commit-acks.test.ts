// quietCommitAcks (members run with it; etcd's raft, and the golden traces, without): a
// follower does not answer an append that only tells it of a commit up to where it has
// acknowledged already, and a lost acknowledgement is still recovered through the leader's
// heartbeats.

import { describe, expect, it } from 'vitest';
import { type Message, MessageType } from '../../src/raftpb/index.js';
import { makeMessage } from '../../src/raft/message.js';
import { Cluster } from './harness.js';

const acksFrom = (ms: readonly Message[], from: bigint): Message[] =>
  ms.filter((m) => m.type === MessageType.MsgAppResp && m.from === from && !m.reject);

/** Three members, 1 leading. */
function running(quietCommitAcks: boolean): Cluster {
  const c = new Cluster([1n, 2n, 3n], { quietCommitAcks });
  c.stabilize();
  c.elect(1n);
  return c;
}

describe('quietCommitAcks', () => {
  it("leaves the commit-only append of each write unanswered, where etcd's raft answers it", () => {
    for (const quiet of [false, true]) {
      const c = running(quiet);
      const from = c.sent.length;
      c.propose(1n, 'a');
      c.stabilize();
      const sent = c.sent.slice(from);
      // the leader sends each follower the entry, then the commit index that covers it
      const toTwo = sent.filter((m) => m.type === MessageType.MsgApp && m.to === 2n);
      expect(toTwo.map((m) => m.entries.length)).toEqual([1, 0]);
      expect(toTwo[1]!.commit).toBe(toTwo[0]!.entries[0]!.index);
      // answered: the entry (and, without the option, the commit-only append as well)
      expect(acksFrom(sent, 2n)).toHaveLength(quiet ? 1 : 2);
      for (const id of [1n, 2n, 3n]) expect(c.node(id).applied).toEqual(['a']);
    }
  });

  it('still answers an append that does not move the commit index', () => {
    const c = running(true);
    c.propose(1n, 'a');
    c.stabilize();
    const f = c.node(2n);
    const committed = c.commit(2n);
    const lastTerm = c.term(1n);
    // the same commit again (the leader repeating an append after a heartbeat): answered
    c.queue = [];
    f.rn.step(makeMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, term: lastTerm, index: committed, logTerm: lastTerm, commit: committed }));
    c.processReady(f);
    expect(acksFrom(c.queue, 2n).map((m) => m.index)).toEqual([committed]);
  });

  it('recovers an acknowledgement lost on the way: the next heartbeat brings an append that is answered', () => {
    const c = running(true);
    // the follower's answer to the entry itself is lost; the leader commits with the other follower
    let dropped = 0;
    c.filter = (m) => {
      if (m.type === MessageType.MsgAppResp && m.from === 2n && dropped === 0) {
        dropped++;
        return false;
      }
      return true;
    };
    c.propose(1n, 'a');
    c.stabilize();
    const index = c.commit(1n);
    expect(dropped).toBe(1);
    expect(c.commit(2n)).toBe(index); // told of the commit, and answered nothing
    expect(c.node(1n).rn.status().progress!.get(2n)!.match).toBeLessThan(index);
    // one heartbeat round: the leader learns member 2's log again
    c.tickAll(1);
    expect(c.node(1n).rn.status().progress!.get(2n)!.match).toBe(index);
    // and replication to it carries on
    c.propose(1n, 'b');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['a', 'b']);
  });
});
