// Hostile and malformed input: refused with a typed StepError, counted, and without
// any effect on the node; random garbage never crashes a running cluster.

import { describe, expect, it } from 'vitest';
import { EntryType, type Message, MessageType, decodeMessage, encodeMessage } from '../../src/raftpb/index.js';
import { ProposalDroppedError, StepError, type StepDropReason } from '../../src/raft/index.js';
import { Rng } from '../../src/raft/sim/index.js';
import { Cluster, enc } from './harness.js';

function msg(p: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return { term: 2, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...p };
}

function running(): Cluster {
  const c = new Cluster([1n, 2n, 3n]);
  c.stabilize();
  c.elect(1n);
  c.propose(1n, 'a');
  c.stabilize();
  return c;
}

const ent = (index: number, term: number) => ({ index, term, type: EntryType.Normal, data: enc('e') });

const cases: Array<[string, StepDropReason, (to: bigint, from: bigint) => Message]> = [
  ['unknown message type', 'malformed', (to, from) => msg({ type: 77 as MessageType, from, to })],
  ['a NaN term', 'malformed', (to, from) => msg({ type: MessageType.MsgHeartbeat, from, to, term: Number.NaN })],
  ['a negative index', 'malformed', (to, from) => msg({ type: MessageType.MsgApp, from, to, index: -1 })],
  ['a term past 2^53', 'malformed', (to, from) => msg({ type: MessageType.MsgVote, from, to, term: 2 ** 60 })],
  ['a bigint where a number belongs', 'malformed', (to, from) => msg({ type: MessageType.MsgApp, from, to, commit: 5n as unknown as number })],
  ['term 0 on a peer message', 'malformed', (to, from) => msg({ type: MessageType.MsgHeartbeat, from, to, term: 0 })],
  ['non-contiguous entries', 'malformed', (to, from) => msg({ type: MessageType.MsgApp, from, to, index: 5, logTerm: 2, entries: [ent(6, 2), ent(8, 2)] })],
  ['entries with terms beyond the message', 'malformed', (to, from) => msg({ type: MessageType.MsgApp, from, to, index: 5, logTerm: 2, entries: [ent(6, 9)] })],
  ['decreasing entry terms', 'malformed', (to, from) => msg({ type: MessageType.MsgApp, from, to, term: 3, index: 5, logTerm: 3, entries: [ent(6, 2)] })],
  ['a snapshot message without snapshot', 'malformed', (to, from) => msg({ type: MessageType.MsgSnap, from, to })],
  ['an empty proposal', 'malformed', (to, from) => msg({ type: MessageType.MsgProp, from, to, term: 0 })],
  ['a proposal carrying a term', 'malformed', (to, from) => msg({ type: MessageType.MsgProp, from, to, entries: [ent(0, 0)] })],
  ['a read without context', 'malformed', (to, from) => msg({ type: MessageType.MsgReadIndex, from, to, term: 0 })],
  ['a local-only MsgHup', 'local-only', (to, from) => msg({ type: MessageType.MsgHup, from, to })],
  ['a local-only MsgSnapStatus', 'local-only', (to, from) => msg({ type: MessageType.MsgSnapStatus, from, to })],
  ['a message for another member', 'wrong-recipient', () => msg({ type: MessageType.MsgHeartbeat, from: 2n, to: 9n })],
  ['a message claiming to come from us', 'wrong-recipient', (to) => msg({ type: MessageType.MsgHeartbeat, from: to, to })],
  ['an answer from a stranger', 'non-member', (to) => msg({ type: MessageType.MsgAppResp, from: 42n, to, index: 1 })],
  ['a proposal from a stranger', 'non-member', (to) => msg({ type: MessageType.MsgProp, from: 42n, to, term: 0, entries: [ent(0, 0)] })],
];

describe('refused messages', () => {
  for (const [what, reason, make] of cases) {
    it(`${what} → StepError(${reason}), no effect`, () => {
      const c = running();
      for (const id of [1n, 2n]) {
        const n = c.node(id).rn;
        const before = n.status();
        let err: unknown;
        try {
          n.step(make(id, id === 2n ? 3n : 2n));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(StepError);
        expect((err as StepError).reason).toBe(reason);
        const after = n.status();
        expect(after.hardState).toEqual(before.hardState);
        expect(after.softState).toEqual(before.softState);
        expect(after.droppedMessages[reason]).toBe(before.droppedMessages[reason]! + 1);
        expect(n.hasReady()).toBe(false);
      }
    });
  }

  it('a heartbeat claiming a commit index beyond our log is refused as inconsistent', () => {
    const c = running();
    const f = c.node(2n).rn;
    const last = f.status().lastIndex;
    expect(() => f.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, commit: last + 10 }))).toThrow(/beyond our last index/);
    expect(f.status().hardState.commit).toBe(last);
    expect(f.status().droppedMessages.inconsistent).toBe(1);
  });

  it('an acknowledgement beyond the leader log is refused as inconsistent', () => {
    const c = running();
    const l = c.node(1n).rn;
    const before = l.status();
    expect(() => l.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, index: before.lastIndex + 100 }))).toThrow(StepError);
    expect(l.status().hardState.commit).toBe(before.hardState.commit);
    expect(l.status().progress!.get(2n)!.match).toBe(before.progress!.get(2n)!.match);
  });

  it('an undecodable conf change proposal is refused', () => {
    const c = running();
    const bad = { index: 0, term: 0, type: EntryType.ConfChange, data: new Uint8Array([0xff, 0xff, 0xff]) };
    expect(() => c.node(1n).rn.step(msg({ type: MessageType.MsgProp, from: 2n, to: 1n, term: 0, entries: [bad] }))).toThrow(StepError);
    expect(c.node(1n).rn.status().lastIndex).toBe(c.node(2n).rn.status().lastIndex);
  });
});

describe('fuzzing', () => {
  it('random mutations of real traffic never crash the nodes nor break agreement', () => {
    const rng = new Rng(7);
    const c = new Cluster([1n, 2n, 3n], { preVote: true, checkQuorum: true });
    c.stabilize();
    c.elect(1n);
    const pick = <T,>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
    const numbers = [0, 1, 2, 3, 5, 1000, -1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER, 2 ** 60, Infinity];
    let refused = 0;
    let i = 0;
    // Rewrite 1 in 10 deliveries, but never into something a correct member could send
    // about our own log (we are testing robustness, not Byzantine tolerance), so only
    // structural fields and senders are corrupted.
    c.mutate = (m) => {
      if (rng.next() >= 0.1) return m;
      const field = rng.int(5);
      if (field === 0) return { ...m, type: rng.int(25) as MessageType };
      if (field === 1) return { ...m, term: pick(numbers.filter((n) => !Number.isSafeInteger(n) || n < 0)) };
      if (field === 2) return { ...m, from: pick([0n, 42n, 9999n, m.to]) };
      if (field === 3) return { ...m, index: pick(numbers.filter((n) => !Number.isSafeInteger(n) || n < 0)) };
      return { ...m, entries: m.entries.map((e) => ({ ...e, index: e.index + 1 + rng.int(3) })) };
    };
    const wrapDeliver = c.deliver.bind(c);
    c.deliver = (m) => {
      const before = c.stepErrors.length;
      wrapDeliver(m);
      refused += c.stepErrors.length - before;
    };
    for (; i < 300; i++) {
      const l = c.leader();
      try {
        if (l !== undefined) c.propose(l.id, `w${i}`);
      } catch (err) {
        // a mutated message may be a MsgTransferLeader: proposals are refused until it ends
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
      c.tickAll(1);
    }
    c.heal();
    c.tickAll(30);
    expect(refused).toBeGreaterThan(20);
    const applied = c.node(1n).applied;
    expect(applied.length).toBeGreaterThan(50);
    for (const n of c.nodes.values()) expect(n.applied).toEqual(applied);
  });

  it('random bytes either fail to decode or are refused/handled by step', () => {
    const rng = new Rng(11);
    const c = running();
    const n = c.node(2n).rn;
    let decoded = 0;
    const real = encodeMessage(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, index: 4, logTerm: 2, entries: [ent(5, 2)] }));
    for (let i = 0; i < 2000; i++) {
      const buf = i % 2 === 0 ? new Uint8Array(rng.int(64)).map(() => rng.int(256)) : real.map((b) => (rng.next() < 0.05 ? rng.int(256) : b));
      let m: Message;
      try {
        m = decodeMessage(buf);
      } catch {
        continue;
      }
      decoded++;
      try {
        n.step(m);
      } catch (e) {
        expect(e).toBeInstanceOf(StepError);
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });
});
