// ReadIndex (safe and lease-based) and proposal forwarding.

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/raftpb/index.js';
import { ProposalDroppedError } from '../../src/raft/index.js';
import { Cluster, dec, enc } from './harness.js';

function running(opts: ConstructorParameters<typeof Cluster>[1] = {}): Cluster {
  const c = new Cluster([1n, 2n, 3n], opts);
  c.stabilize();
  c.elect(1n);
  return c;
}

const ctxs = (c: Cluster, id: bigint): string[] => c.node(id).readStates.map((r) => dec(r.requestCtx));

describe('ReadIndex (safe)', () => {
  it('is answered at the commit index once a heartbeat round reaches a quorum', () => {
    const c = running();
    c.propose(1n, 'w');
    c.stabilize();
    const commit = c.commit(1n);
    c.node(1n).rn.readIndex(enc('r1'));
    // The confirmation is a heartbeat carrying the request context.
    c.processReady(c.node(1n));
    const hbs = c.queue.filter((m) => m.type === MessageType.MsgHeartbeat);
    expect(hbs.length).toBe(2);
    expect(dec(hbs[0]!.context!)).toBe('r1');
    expect(c.node(1n).readStates).toEqual([]);
    c.stabilize();
    expect(c.node(1n).readStates).toEqual([{ index: commit, requestCtx: enc('r1') }]);
  });

  it('is not answered by a leader cut off from the quorum', () => {
    const c = running();
    c.isolate(1n);
    c.node(1n).rn.readIndex(enc('r1'));
    c.tickAll(5);
    expect(c.node(1n).readStates).toEqual([]);
  });

  it('waits until the leader has committed an entry of its own term', () => {
    const c = running();
    c.isolate(1n);
    c.node(2n).rn.campaign();
    // 2 wins but its empty entry is not committed yet when the read arrives.
    for (let i = 0; i < 10 && c.state(2n) !== 'leader'; i++) {
      for (const n of c.nodes.values()) c.processReady(n);
      c.deliverAll();
    }
    expect(c.state(2n)).toBe('leader');
    c.node(2n).rn.readIndex(enc('early'));
    expect(c.node(2n).rn.status().hardState.commit).toBeLessThan(c.node(2n).rn.status().lastIndex);
    c.stabilize();
    expect(c.node(2n).readStates).toHaveLength(1);
    expect(c.node(2n).readStates[0]!.index).toBe(c.commit(2n));
  });

  it('on a follower is forwarded to the leader and answered with its commit index', () => {
    const c = running();
    c.propose(1n, 'w');
    c.stabilize();
    c.node(3n).rn.readIndex(enc('f1'));
    c.stabilize();
    expect(c.sent.some((m) => m.type === MessageType.MsgReadIndex && m.from === 3n && m.to === 1n)).toBe(true);
    expect(c.node(3n).readStates).toEqual([{ index: c.commit(1n), requestCtx: enc('f1') }]);
    expect(c.node(1n).readStates).toEqual([]);
  });

  it('a batch of reads is confirmed by one heartbeat round', () => {
    const c = running();
    for (const r of ['a', 'b', 'c']) c.node(1n).rn.readIndex(enc(r));
    c.stabilize();
    expect(ctxs(c, 1n)).toEqual(['a', 'b', 'c']);
  });

  it('a lone voter answers at once; a node without a leader drops the read', () => {
    const one = new Cluster([1n]);
    one.stabilize();
    one.elect(1n);
    one.node(1n).rn.readIndex(enc('solo'));
    one.processReady(one.node(1n));
    expect(ctxs(one, 1n)).toEqual(['solo']);

    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.node(2n).rn.readIndex(enc('nobody'));
    c.stabilize();
    expect(c.node(2n).readStates).toEqual([]);
  });
});

describe('ReadIndex after a restart', () => {
  it('a lone voter whose persisted commit index lags answers with the commit of its new term, never the lagging one', () => {
    const c = new Cluster([1n]);
    c.stabilize();
    c.elect(1n);
    c.add(2n, false);
    c.proposeConfChange(1n, { type: 3, nodeId: 2n });
    c.stabilize();
    c.propose(1n, 'w');
    c.stabilize();
    const commit = c.commit(1n);
    expect(c.commit(2n)).toBe(commit);
    // A commit-only hardState change is written without sync: it may be lost.
    const n1 = c.node(1n);
    n1.storage.setHardState({ ...n1.storage.initialState().hardState, commit: commit - 1 });
    c.restart(1n);
    c.stabilize();
    c.node(1n).rn.campaign();
    expect(c.state(1n)).toBe('leader');
    // Its new term's empty entry commits as it is appended (it is the only voter), and
    // with it everything before, which includes what the learner was told is committed.
    c.node(1n).rn.readIndex(enc('after-restart'));
    c.stabilize();
    expect(c.node(1n).readStates).toHaveLength(1);
    expect(c.node(1n).readStates[0]!.index).toBeGreaterThan(commit);
  });
});

describe('ReadIndex (lease-based)', () => {
  it('requires check-quorum', () => {
    expect(() => new Cluster([1n], { readOnlyOption: 'lease-based' })).toThrow(/CheckQuorum must be enabled/);
  });

  it('is answered without a heartbeat round', () => {
    const c = running({ readOnlyOption: 'lease-based', checkQuorum: true });
    c.node(1n).rn.readIndex(enc('fast'));
    c.processReady(c.node(1n));
    expect(ctxs(c, 1n)).toEqual(['fast']);
    expect(c.queue.some((m) => m.type === MessageType.MsgHeartbeat)).toBe(false);
  });

  it('falls back to a heartbeat round during a leadership transfer', () => {
    const c = running({ readOnlyOption: 'lease-based', checkQuorum: true });
    c.isolate(3n);
    c.node(1n).rn.transferLeader(3n);
    c.node(1n).rn.readIndex(enc('transfer'));
    c.processReady(c.node(1n));
    expect(ctxs(c, 1n)).toEqual([]);
    c.stabilize();
    expect(ctxs(c, 1n)).toEqual(['transfer']);
  });
});

describe('proposal forwarding', () => {
  it('a follower forwards proposals to the leader', () => {
    const c = running();
    c.propose(3n, 'via-follower');
    c.stabilize();
    expect(c.sent.some((m) => m.type === MessageType.MsgProp && m.from === 3n && m.to === 1n && m.term === 0)).toBe(true);
    for (const n of c.nodes.values()) expect(n.applied).toEqual(['via-follower']);
  });

  it('without a leader a proposal is refused with a clear error', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    expect(() => c.propose(2n, 'x')).toThrow(ProposalDroppedError);
    expect(() => c.propose(2n, 'x')).toThrow('raft proposal dropped: no leader at term 1');
    c.isolate(1n);
    c.node(1n).rn.campaign();
    expect(c.state(1n)).toBe('candidate');
    expect(() => c.propose(1n, 'x')).toThrow(/no leader at term 2/);
  });

  it('with forwarding disabled a follower refuses proposals', () => {
    const c = running({ disableProposalForwarding: true });
    expect(() => c.propose(2n, 'x')).toThrow(/forwarding disabled/);
    c.propose(1n, 'y');
    c.stabilize();
    expect(c.node(2n).applied).toEqual(['y']);
  });
});
