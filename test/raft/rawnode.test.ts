// The RawNode contract the server relies on: bootstrap, the Ready/advance cycle,
// what each Ready field means, restart from storage, status, config validation.

import { describe, expect, it } from 'vitest';
import { EntryType, MessageType, decodeConfChange } from '../../src/raftpb/index.js';
import { MemoryStorage, type RaftConfig, RawNode, hex16 } from '../../src/raft/index.js';
import { Cluster, dec, enc, prng } from './harness.js';

function node(extra: Partial<RaftConfig> = {}): { rn: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: prng(1), ...extra });
  return { rn, storage };
}

function persist(storage: MemoryStorage, rd: ReturnType<RawNode['ready']>): void {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

describe('bootstrap', () => {
  it('appends and commits one AddNode per peer, handed out in the first Ready', () => {
    const { rn } = node();
    rn.bootstrap([{ id: 1n, context: enc('m1') }, { id: 2n }, { id: 3n }]);
    const rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 0n, commit: 3 });
    expect(rd.entries.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.ConfChange],
      [2, 1, EntryType.ConfChange],
      [3, 1, EntryType.ConfChange],
    ]);
    expect(rd.committedEntries).toEqual(rd.entries);
    const cc = decodeConfChange(rd.entries[0]!.data);
    expect(cc).toMatchObject({ type: 0, nodeId: 1n });
    expect(dec(cc.context)).toBe('m1');
    expect(rd.mustSync).toBe(true);
    expect(rn.status().config.voters).toEqual([1n, 2n, 3n]);
  });

  it('refuses a storage that already has a log, and an empty peer list', () => {
    const { rn, storage } = node();
    rn.bootstrap([{ id: 1n }]);
    const rd = rn.ready();
    persist(storage, rd);
    rn.advance(rd);
    const again = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: prng(2) });
    expect(() => again.bootstrap([{ id: 1n }])).toThrow("can't bootstrap a nonempty Storage");
    expect(() => node().rn.bootstrap([])).toThrow(/at least one peer/);
  });
});

describe('Ready / advance', () => {
  it('hands out one Ready at a time', () => {
    const { rn } = node();
    rn.bootstrap([{ id: 1n }]);
    expect(rn.hasReady()).toBe(true);
    const rd = rn.ready();
    expect(rn.hasReady()).toBe(false);
    expect(() => rn.ready()).toThrow(/before advance/);
    expect(() => rn.advance({ ...rd })).toThrow(/not the outstanding one/);
    rn.advance(rd);
    expect(rn.hasReady()).toBe(false);
  });

  it('a lone leader commits its entry in the Ready that hands it out for persisting, which says to persist first', () => {
    const { rn, storage } = node();
    rn.bootstrap([{ id: 1n }]);
    let rd = rn.ready();
    expect(rd.persistFirst).toBe(true); // the bootstrap entries are committed as they come
    persist(storage, rd);
    for (const e of rd.committedEntries) rn.applyConfChange(decodeConfChange(e.data));
    rn.advance(rd);
    rn.campaign();
    rd = rn.ready();
    expect(rd.softState).toEqual({ lead: 1n, raftState: 'leader' });
    // The leader's empty entry: appended, committed and handed out at once, as etcd's raft does.
    expect(rd.hardState).toEqual({ term: 2, vote: 1n, commit: 2 });
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    expect(rd.persistFirst).toBe(true);
    persist(storage, rd);
    rn.advance(rd);
    expect(rn.hasReady()).toBe(false);
    rn.propose(enc('x'));
    rd = rn.ready();
    expect(rd.entries.map((e) => dec(e.data))).toEqual(['x']);
    expect(rd.committedEntries.map((e) => dec(e.data))).toEqual(['x']);
    // One synced write carries the entry and the commit index that covers it.
    expect(rd.hardState).toEqual({ term: 2, vote: 1n, commit: 3 });
    expect(rd.mustSync).toBe(true);
    expect(rd.persistFirst).toBe(true);
    persist(storage, rd);
    rn.advance(rd);
    // Nothing left: no second Ready to carry the commit index alone.
    expect(rn.hasReady()).toBe(false);
    expect(rn.status()).toMatchObject({ applied: 3, hardState: { commit: 3 } });
  });

  it('a leader with followers commits only what they acknowledge: its Readies never commit their own entries', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    const n = c.node(1n);
    c.propose(1n, 'a');
    const rd = n.rn.ready();
    expect(rd.entries.map((e) => dec(e.data))).toEqual(['a']);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.persistFirst).toBe(false);
    c.handleReady(n, rd);
    c.stabilize();
    expect(n.applied).toEqual(['a']);
  });

  it('keeps working while the driver is busy: proposals between ready() and advance() go in the next Ready', () => {
    const c = new Cluster([1n]);
    c.stabilize();
    c.elect(1n);
    const n = c.node(1n);
    c.propose(1n, 'a');
    const rd = n.rn.ready();
    c.propose(1n, 'b'); // arrives while rd is being persisted
    expect(rd.entries.map((e) => dec(e.data))).toEqual(['a']);
    c.handleReady(n, rd);
    c.stabilize();
    expect(n.applied).toEqual(['a', 'b']);
  });

  it('committed entries are limited per Ready by maxSizePerMsg and handed out across Readies', () => {
    const c = new Cluster([1n], { maxSizePerMsg: 64 });
    c.stabilize();
    c.elect(1n);
    for (let i = 0; i < 10; i++) c.propose(1n, 'x'.repeat(40));
    const n = c.node(1n);
    const rd = n.rn.ready();
    // all ten to persist (and committed: a lone voter's), one to apply
    expect(rd.entries).toHaveLength(10);
    expect(rd.hardState?.commit).toBe(rd.entries[9]!.index);
    expect(rd.committedEntries.length).toBe(1);
    c.handleReady(n, rd);
    c.stabilize();
    expect(n.applied).toHaveLength(10);
  });
});

describe('restart', () => {
  it('a node restarted from storage resumes its term, vote and log, without re-applying entries up to applied', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    for (const w of ['a', 'b', 'c']) c.propose(1n, w);
    c.stabilize();
    const before = c.node(2n).rn.status();
    const n = c.restart(2n, { applied: before.applied - 1 });
    const st = n.rn.status();
    expect(st.hardState).toEqual(before.hardState);
    expect(st.lastIndex).toBe(before.lastIndex);
    expect(st.softState).toEqual({ lead: 0n, raftState: 'follower' });
    c.stabilize();
    expect(n.applied).toEqual(['c']);
    c.tickAll(2);
    expect(n.rn.status().softState.lead).toBe(1n);
  });

  it('rejects an applied index beyond the persisted commit', () => {
    const c = new Cluster([1n]);
    c.stabilize();
    expect(() => c.restart(1n, { applied: 99 })).toThrow(/beyond the persisted commit/);
  });
});

describe('status and logging', () => {
  it('the leader reports every member progress (for the learner promotion rule)', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    c.propose(1n, 'a');
    c.stabilize();
    const st = c.node(1n).rn.status();
    expect([...st.progress!.keys()].sort()).toEqual([1n, 2n, 3n]);
    for (const p of st.progress!.values()) expect(p.match).toBe(st.lastIndex);
    expect(c.node(2n).rn.status().progress).toBeUndefined();
  });

  it("logs etcd's lines", () => {
    const lines: string[] = [];
    const logger = { debug: () => {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
    const c = new Cluster([1n, 2n, 3n], { logger });
    c.stabilize();
    c.elect(1n);
    expect(lines).toContain('0000000000000001 became leader at term 2');
    expect(lines).toContain('0000000000000001 is starting a new election at term 1');
    expect(lines).toContain('raft.node: 0000000000000002 elected leader 0000000000000001 at term 2');
    expect(hex16(0x2e1259d415f2a040n)).toBe('2e1259d415f2a040');
  });

  it('validates the configuration with etcd wording', () => {
    const s = new MemoryStorage();
    const base = { id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, random: prng(1) };
    expect(() => new RawNode({ ...base, id: 0n })).toThrow('cannot use none as id');
    expect(() => new RawNode({ ...base, heartbeatTick: 0 })).toThrow('heartbeat tick must be greater than 0');
    expect(() => new RawNode({ ...base, electionTick: 1 })).toThrow('election tick must be greater than heartbeat tick');
    expect(() => new RawNode({ ...base, maxInflightMsgs: 0 })).toThrow('max inflight messages must be greater than 0');
  });
});

describe('local requests never need a network', () => {
  it('campaign() on a lone voter elects it; reportUnreachable/reportSnapshot on a follower are no-ops', () => {
    const c = new Cluster([1n]);
    c.stabilize();
    c.elect(1n);
    expect(c.state(1n)).toBe('leader');
    const f = new Cluster([1n, 2n]);
    f.stabilize();
    f.node(2n).rn.reportUnreachable(1n);
    f.node(2n).rn.reportSnapshot(1n, 'failure');
    expect(f.node(2n).rn.hasReady()).toBe(false);
    expect(f.sent.filter((m) => m.type === MessageType.MsgSnapStatus)).toEqual([]);
  });
});
