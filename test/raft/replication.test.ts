// Replication mechanics: batching, message size, in-flight limits, probe and
// replicate states, uncommitted-size limit, snapshots for compacted followers.

import { describe, expect, it } from 'vitest';
import { type Message, MessageType } from '../../src/raftpb/index.js';
import { ProposalDroppedError, entrySize } from '../../src/raft/index.js';
import { Cluster, enc } from './harness.js';

function running(opts: ConstructorParameters<typeof Cluster>[1] = {}, ids = [1n, 2n, 3n]): Cluster {
  const c = new Cluster(ids, opts);
  c.stabilize();
  c.elect(1n);
  return c;
}

const apps = (ms: readonly Message[], to: bigint): Message[] =>
  ms.filter((m) => m.type === MessageType.MsgApp && m.to === to);

describe('replication', () => {
  it('batches many proposals into one MsgApp', () => {
    const c = running();
    for (let i = 0; i < 100; i++) c.propose(1n, `p${i}`);
    c.processReady(c.node(1n));
    const sent = apps(c.queue, 2n);
    expect(sent.reduce((n, m) => n + m.entries.length, 0)).toBe(100);
    expect(sent.length).toBeLessThanOrEqual(2);
    c.stabilize();
    expect(c.node(3n).applied).toHaveLength(100);
  });

  it('keeps each MsgApp within maxSizePerMsg (but always carries at least one entry)', () => {
    const c = running({ maxSizePerMsg: 100 });
    for (let i = 0; i < 20; i++) c.propose(1n, 'x'.repeat(30));
    c.propose(1n, 'y'.repeat(500));
    c.stabilize();
    const sent = apps(c.sent, 2n).filter((m) => m.entries.length > 0);
    for (const m of sent) {
      const size = m.entries.reduce((n, e) => n + entrySize(e), 0);
      expect(m.entries.length === 1 || size <= 100).toBe(true);
    }
    expect(sent.some((m) => m.entries.length === 1 && m.entries[0]!.data.length === 500)).toBe(true);
    expect(c.node(2n).applied).toHaveLength(21);
  });

  it('never has more than maxInflightMsgs unacknowledged appends to a follower', () => {
    const c = running({ maxSizePerMsg: 1, maxInflightMsgs: 3 });
    // 2 stops answering.
    c.filter = (m) => !(m.from === 2n && m.type === MessageType.MsgAppResp);
    for (let i = 0; i < 10; i++) {
      c.propose(1n, `p${i}`);
      c.stabilize();
    }
    const pr = c.node(1n).rn.status().progress!.get(2n)!;
    expect(pr.state).toBe('replicate');
    expect(pr.inflight).toBe(3);
    expect(pr.paused).toBe(true);
    const afterPause = c.sent.length;
    c.propose(1n, 'more');
    c.stabilize();
    expect(apps(c.sent.slice(afterPause), 2n).filter((m) => m.entries.length > 0)).toEqual([]);
    // Answers resume: the flow drains and 2 catches up.
    c.heal();
    c.tickAll(3);
    expect(c.node(2n).applied).toHaveLength(11);
    expect(c.node(1n).rn.status().progress!.get(2n)!.inflight).toBe(0);
  });

  it('probes a follower whose log is unknown one message at a time, then replicates', () => {
    const c = running();
    c.isolate(3n);
    for (let i = 0; i < 5; i++) c.propose(1n, `p${i}`);
    c.stabilize();
    c.node(1n).rn.reportUnreachable(3n);
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('probe');
    const before = c.sent.length;
    for (let i = 0; i < 5; i++) {
      c.propose(1n, `q${i}`);
      c.stabilize();
    }
    // While probing and unanswered, one append is outstanding, not one per proposal.
    const probes = apps(c.sent.slice(before), 3n).filter((m) => m.entries.length > 0);
    expect(probes.length).toBe(1);
    c.heal();
    c.tickAll(2);
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('replicate');
    expect(c.node(3n).applied).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'q0', 'q1', 'q2', 'q3', 'q4']);
  });

  it('refuses proposals beyond maxUncommittedEntriesSize until entries commit', () => {
    const c = running({ maxUncommittedEntriesSize: 100 });
    c.isolate(1n);
    c.propose(1n, 'a'.repeat(60));
    c.propose(1n, 'b'.repeat(30));
    expect(() => c.propose(1n, 'c'.repeat(20))).toThrow(ProposalDroppedError);
    // One oversized proposal is allowed when nothing is pending.
    c.heal();
    c.tickAll(2);
    expect(c.node(1n).applied).toEqual(['a'.repeat(60), 'b'.repeat(30)]);
    c.propose(1n, 'd'.repeat(500));
    c.stabilize();
    expect(c.node(2n).applied).toHaveLength(3);
  });
});

describe('snapshots', () => {
  /** Cluster where 3 is cut off while the others commit and compact their logs. */
  function compacted(): Cluster {
    const c = running();
    c.isolate(3n);
    for (let i = 0; i < 20; i++) c.propose(1n, `p${i}`);
    c.stabilize();
    for (const id of [1n, 2n]) {
      const n = c.node(id);
      const applied = n.rn.status().applied;
      n.storage.createSnapshot(applied, n.rn.status().config, enc(JSON.stringify(n.applied)));
      n.storage.compact(applied);
    }
    return c;
  }

  it('a follower behind the compacted log gets a snapshot, restores it and catches up', () => {
    const c = compacted();
    c.heal();
    c.tickAll(3);
    const snaps = c.sent.filter((m) => m.type === MessageType.MsgSnap);
    expect(snaps.length).toBe(1);
    expect(snaps[0]!.to).toBe(3n);
    const n3 = c.node(3n);
    expect(n3.storage.snapshot().metadata.index).toBe(snaps[0]!.snapshot!.metadata.index);
    expect(JSON.parse(new TextDecoder().decode(n3.storage.snapshot().data))).toHaveLength(20);
    // The follower's answer to the snapshot moves it back to replication.
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('replicate');
    c.node(1n).rn.reportSnapshot(3n, 'finish');
    c.propose(1n, 'after');
    c.tickAll(2);
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('replicate');
    expect(n3.applied).toEqual(['after']);
    expect(n3.rn.status().hardState.commit).toBe(c.commit(1n));
  });

  it('a failed snapshot is retried', () => {
    const c = compacted();
    c.filter = (m) => m.type !== MessageType.MsgSnap;
    c.tickAll(2);
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('snapshot');
    c.node(1n).rn.reportSnapshot(3n, 'failure');
    expect(c.node(1n).rn.status().progress!.get(3n)!.state).toBe('probe');
    c.heal();
    c.tickAll(3);
    expect(c.sent.filter((m) => m.type === MessageType.MsgSnap && m.to === 3n).length).toBeGreaterThanOrEqual(2);
    expect(c.node(3n).storage.snapshot().metadata.index).toBeGreaterThan(0);
  });

  it('a snapshot older than what the follower committed is ignored', () => {
    const c = running();
    const n2 = c.node(2n);
    const old = { ...c.node(1n).storage.snapshot(), metadata: { index: 2, term: 1, confState: n2.rn.status().config } };
    n2.rn.step({
      type: MessageType.MsgSnap,
      from: 1n,
      to: 2n,
      term: 2,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: { data: new Uint8Array(), metadata: old.metadata },
    });
    c.processReady(n2);
    expect(n2.storage.snapshot().metadata.index).toBe(0);
    const resp = c.queue.find((m) => m.type === MessageType.MsgAppResp && m.from === 2n)!;
    expect(resp.index).toBe(c.commit(2n));
  });
});
