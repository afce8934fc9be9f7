// A huge term from a peer must not end the cluster (issue 12). Terms are uint64 in
// raftpb and JS numbers here: a member that adopted term 2^53-1 used to campaign at
// 2^53, which every other member refused to decode, so no leader was ever elected
// again, and the term was persisted. Now the decoder refuses what it cannot represent
// exactly (2^53 and up), and raft refuses a term that jumps past TERM_JUMP_LIMIT, so
// the cluster keeps (or regains) a leader and its terms stay far from 2^53.
//
// Real etcd 3.4.23, from reading etcd-io/etcd raft/raft.go (not run): terms are Go
// uint64, so 2^53-1 is harmless there, but a MsgHeartbeat at 2^64-1 makes every member
// becomeFollower(2^64-1, fake) and persist it; the next campaign's becomeCandidate runs
// reset(r.Term + 1), which wraps to term 0, and Step takes a term-0 message for a local
// one, skipping the term checks. The wrapped candidate's MsgVote is rejected by members
// still at 2^64-1 (they follow the fake leader), whose MsgVoteResp at 2^64-1 sends it back
// to follower at 2^64-1, and around again: no leader, and restarts reload 2^64-1.

import { describe, expect, it } from 'vitest';
import { MemoryStorage, MAX_TERM, RawNode, StepError, TERM_JUMP_LIMIT } from '../../src/raft/index.js';
import { type Message, MessageType, ProtoDecodeError, decodeMessage, encodeMessage, messageTypeName } from '../../src/raftpb/index.js';
import { U53, rawMessage } from '../raftpb/raw.js';
import { Cluster, type NodeOptions, prng } from './harness.js';

const ELECTION_TICK = 10;
const HOSTILE_TERMS: readonly bigint[] = [U53 - 1n, 2n ** 63n, 2n ** 64n - 1n];
const HOSTILE_TYPES = [MessageType.MsgHeartbeat, MessageType.MsgVote, MessageType.MsgPreVote] as const;
const CONFIGS: ReadonlyArray<[string, NodeOptions]> = [
  ['plain raft', {}],
  ['pre-vote and check-quorum (as the server runs it)', { preVote: true, checkQuorum: true }],
];

/**
 * A three-member cluster whose messages go through the codec, as the transport's do:
 * what a member cannot decode never arrives.
 */
function running(opts: NodeOptions): Cluster {
  const c = new Cluster([1n, 2n, 3n], opts);
  const step = c.deliver.bind(c);
  c.deliver = (m) => {
    let back: Message;
    try {
      back = decodeMessage(encodeMessage(m));
    } catch (err) {
      if (err instanceof ProtoDecodeError) return;
      throw err;
    }
    step(back);
  };
  c.stabilize();
  c.elect(1n);
  c.propose(1n, 'before');
  c.stabilize();
  return c;
}

/** What the transport does with a frame: decode it, drop it if it does not decode, else step it. */
function deliverBytes(c: Cluster, bytes: Uint8Array): 'undecodable' | 'stepped' {
  let m: Message;
  try {
    m = decodeMessage(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtoDecodeError);
    return 'undecodable';
  }
  c.deliver(m);
  return 'stepped';
}

function expectHealthy(c: Cluster, what: string): void {
  // Regains a leader within a few election timeouts, and commits through it.
  c.tickAll(3 * ELECTION_TICK);
  const l = c.leader();
  expect(l, `${what}: a leader`).toBeDefined();
  c.propose(l!.id, `after ${what}`);
  c.stabilize();
  for (const n of c.nodes.values()) {
    expect(n.applied.at(-1), `${what}: member ${n.id} applied the write`).toBe(`after ${what}`);
    const hs = n.rn.status().hardState;
    expect(hs.term, `${what}: member ${n.id} term`).toBeLessThanOrEqual(TERM_JUMP_LIMIT);
    expect(n.storage.initialState().hardState.term).toBe(hs.term);
  }
}

describe('a hostile term from a fake peer', () => {
  for (const [config, opts] of CONFIGS) {
    for (const type of HOSTILE_TYPES) {
      for (const term of HOSTILE_TERMS) {
        for (const from of [4n, 2n]) {
          const who = from === 4n ? 'a stranger' : 'an impersonated member';
          it(`${config}: ${messageTypeName(type)} at term ${term} from ${who} leaves a working cluster`, () => {
            const c = running(opts);
            const termsBefore = [...c.nodes.keys()].map((id) => c.term(id));
            for (const to of [1n, 2n, 3n]) {
              if (to === from) continue;
              const how = deliverBytes(c, rawMessage({ type, from, to, term, logTerm: 1n, index: 100n }));
              // Above 2^53-1 nothing decodes; 2^53-1 decodes and raft refuses it.
              expect(how).toBe(term >= U53 ? 'undecodable' : 'stepped');
            }
            c.stabilize();
            expectHealthy(c, `${type}/${term}`);
            // Nothing moved the terms but the cluster's own elections, if any.
            for (const [i, id] of [...c.nodes.keys()].entries()) expect(c.term(id)).toBeLessThan(termsBefore[i]! + 10);
          });
        }
      }
    }
  }

  it('raft refuses 2^53-1 with a term-limit StepError, before it changes or persists anything', () => {
    const c = running({ preVote: true, checkQuorum: true });
    const n = c.node(2n);
    const before = n.rn.status();
    const m = decodeMessage(rawMessage({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: U53 - 1n }));
    let err: unknown;
    try {
      n.rn.step(m);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).reason).toBe('term-limit');
    expect((err as StepError).message).toMatch(/ignored MsgHeartbeat from 0000000000000001 at term 9007199254740991/);
    expect(n.rn.hasReady()).toBe(false);
    expect(n.rn.status().hardState).toEqual(before.hardState);
    expect(n.rn.status().droppedMessages['term-limit']).toBe(1);
  });

  it('a term that jumps only as far as TERM_JUMP_LIMIT is adopted, and the cluster elects on from there', () => {
    const c = running({});
    for (const to of [1n, 2n, 3n]) {
      deliverBytes(c, rawMessage({ type: MessageType.MsgVote, from: 4n, to, term: BigInt(TERM_JUMP_LIMIT), logTerm: 1n, index: 1000n }));
    }
    c.stabilize();
    for (const id of [1n, 2n, 3n]) expect(c.term(id)).toBe(TERM_JUMP_LIMIT);
    // Elections go on one term at a time past the limit.
    for (let i = 0; i < 3; i++) {
      const next = (BigInt(i) % 3n) + 1n;
      c.elect(next);
      expect(c.leader()?.id).toBe(next);
    }
    expect(c.term(1n)).toBe(TERM_JUMP_LIMIT + 3);
    c.propose(c.leader()!.id, 'past the limit');
    c.stabilize();
    for (const n of c.nodes.values()) expect(n.applied.at(-1)).toBe('past the limit');
  });

  it('past TERM_JUMP_LIMIT a term may grow by one per message, not more', () => {
    const c = running({});
    for (const to of [1n, 2n, 3n]) c.deliver(decodeMessage(rawMessage({ type: MessageType.MsgHeartbeat, from: 1n, to, term: BigInt(TERM_JUMP_LIMIT) })));
    c.stabilize();
    const n = c.node(2n).rn;
    expect(n.status().hardState.term).toBe(TERM_JUMP_LIMIT);
    const at = (term: number) => decodeMessage(rawMessage({ type: MessageType.MsgVote, from: 3n, to: 2n, term: BigInt(term), logTerm: 1n, index: 1000n }));
    expect(() => n.step(at(TERM_JUMP_LIMIT + 2))).toThrow(/above 9007194959773696 a term may only grow one at a time/);
    n.step(at(TERM_JUMP_LIMIT + 1));
    expect(n.status().hardState.term).toBe(TERM_JUMP_LIMIT + 1);
  });

  it('a member at the largest representable term does not campaign', () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({
      data: new Uint8Array(0),
      metadata: { index: 1, term: 1, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
    });
    storage.setHardState({ term: MAX_TERM, vote: 0n, commit: 1 });
    const lines: string[] = [];
    const log = (s: string) => lines.push(s);
    const rn = new RawNode({
      id: 1n,
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      storage,
      random: prng(1),
      logger: { debug: log, info: log, warn: log, error: log },
    });
    rn.campaign();
    expect(rn.status().hardState.term).toBe(MAX_TERM);
    expect(rn.status().softState.raftState).toBe('follower');
    expect(lines.some((l) => /cannot campaign at term 9007199254740991: it is the largest term raft can represent/.test(l))).toBe(true);
  });

  it('member IDs 2^63 and 2^64-1 elect, replicate and are told apart', () => {
    const ids = [2n ** 63n, 2n ** 64n - 1n, 1n];
    const c = new Cluster(ids, { preVote: true, checkQuorum: true });
    c.stabilize();
    c.elect(2n ** 64n - 1n);
    expect(c.leader()?.id).toBe(2n ** 64n - 1n);
    c.propose(2n ** 63n, 'big ids');
    c.stabilize();
    for (const n of c.nodes.values()) expect(n.applied).toEqual(['big ids']);
    expect(c.node(1n).rn.status().softState.lead).toBe(2n ** 64n - 1n);
    c.tickAll(3 * ELECTION_TICK);
    expect(c.leader()?.id).toBe(2n ** 64n - 1n);
  });
});
