// The building blocks on their own: MemoryStorage, the raft log and its unstable
// tail, inflights, progress states, quorum maths and conf change arithmetic.

import { describe, expect, it } from 'vitest';
import { ConfChangeType, type Entry, EntryType, emptyConfState } from '../../src/raftpb/index.js';
import {
  CompactedError,
  MemoryStorage,
  SnapOutOfDateError,
  UnavailableError,
  entrySize,
} from '../../src/raft/index.js';
import { changeConfig, fromConfState, toConfState } from '../../src/raft/confchange.js';
import { RaftLog } from '../../src/raft/log.js';
import { committedIndex, voteResult } from '../../src/raft/quorum.js';
import { Inflights } from '../../src/raft/tracker/inflights.js';
import { Progress } from '../../src/raft/tracker/progress.js';

const e = (index: number, term: number, data = ''): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(data),
});
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, i) => e(from + i, t));

describe('MemoryStorage', () => {
  function filled(): MemoryStorage {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 2, 2, 3]));
    return s;
  }

  it('serves entries and terms, and reports compacted / unavailable ranges', () => {
    const s = filled();
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 5]);
    expect(s.term(0)).toBe(0);
    expect(s.term(4)).toBe(2);
    expect(() => s.term(6)).toThrow(UnavailableError);
    expect(s.entries(2, 5, Infinity).map((x) => x.index)).toEqual([2, 3, 4]);
    expect(() => s.entries(0, 2, Infinity)).toThrow(CompactedError);
    expect(() => s.entries(2, 7, Infinity)).toThrow(UnavailableError);
  });

  it('limits entries by size but returns at least one', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1, 'x'.repeat(100)), e(2, 1, 'y'), e(3, 1, 'z')]);
    expect(s.entries(1, 4, 1)).toHaveLength(1);
    expect(s.entries(2, 4, 2 * entrySize(e(2, 1, 'y')))).toHaveLength(2);
  });

  it('append replaces a conflicting tail and skips compacted entries; a gap is an error', () => {
    const s = filled();
    s.append(ents(4, [4, 4, 4]));
    expect([4, 5, 6].map((i) => s.term(i))).toEqual([4, 4, 4]);
    s.compact(3);
    s.append(ents(2, [1, 2, 4, 5]));
    expect(s.firstIndex()).toBe(4);
    // Index 5 conflicted: the tail after it (6) is gone.
    expect([s.lastIndex(), s.term(5)]).toEqual([5, 5]);
    expect(() => s.append(ents(9, [5]))).toThrow(/missing log entry/);
  });

  it('snapshots: create at an applied index, compact, apply a newer one', () => {
    const s = filled();
    const cs = { ...emptyConfState, voters: [1n] };
    const snap = s.createSnapshot(3, cs, new Uint8Array([7]));
    expect(snap.metadata).toEqual({ index: 3, term: 2, confState: cs });
    expect(() => s.createSnapshot(3, cs, new Uint8Array())).toThrow(SnapOutOfDateError);
    expect(() => s.createSnapshot(9, cs, new Uint8Array())).toThrow(/out of bound/);
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(() => s.compact(2)).toThrow(CompactedError);
    expect(s.initialState().confState).toEqual(cs);
    s.applySnapshot({ data: new Uint8Array(), metadata: { index: 10, term: 5, confState: cs } });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 5]);
    expect(() => s.applySnapshot(snap)).toThrow(SnapOutOfDateError);
  });
});

describe('RaftLog', () => {
  function log(stable: number[]): RaftLog {
    const s = new MemoryStorage();
    s.append(ents(1, stable));
    return new RaftLog(s, Infinity);
  }

  it('overlays unstable entries on storage and tracks stability', () => {
    const l = log([1, 1, 2]);
    l.append(ents(4, [3, 3]));
    expect(l.lastIndex()).toBe(5);
    expect(l.unstableEntries().map((x) => x.index)).toEqual([4, 5]);
    expect(l.slice(2, 6, Infinity).map((x) => x.term)).toEqual([1, 2, 3, 3]);
    l.storage instanceof MemoryStorage && l.storage.append(l.unstableEntries());
    l.stableTo(5, 3);
    expect(l.unstableEntries()).toEqual([]);
    // A stale acknowledgement (the entry was replaced meanwhile) is ignored.
    l.append(ents(5, [4]));
    l.stableTo(5, 3);
    expect(l.unstableEntries().map((x) => x.term)).toEqual([4]);
  });

  it('maybeAppend: matches the previous entry, truncates conflicts, commits up to the new last index', () => {
    const l = log([1, 1, 2, 2]);
    expect(l.maybeAppend(4, 3, 4, [])).toBeUndefined();
    expect(l.maybeAppend(2, 1, 10, ents(3, [3, 3]))).toBe(4);
    expect([3, 4].map((i) => l.term(i))).toEqual([3, 3]);
    expect(l.committed).toBe(4);
    // Re-delivering entries already held changes nothing.
    expect(l.maybeAppend(2, 1, 4, ents(3, [3]))).toBe(3);
    expect(l.lastIndex()).toBe(4);
  });

  it('findConflictByTerm finds the last index at or below a term', () => {
    const l = log([1, 1, 2, 2, 5, 5]);
    expect(l.findConflictByTerm(6, 4)).toEqual([4, 2]);
    expect(l.findConflictByTerm(6, 5)).toEqual([6, 5]);
    expect(l.findConflictByTerm(6, 0)).toEqual([0, 0]);
  });

  it('commits only entries of the given term (§5.4.2) and never beyond the log', () => {
    const l = log([1, 2, 2]);
    expect(l.maybeCommit(2, 3)).toBe(false);
    expect(l.maybeCommit(3, 2)).toBe(true);
    expect(l.committed).toBe(3);
    expect(() => l.commitTo(9)).toThrow(/out of range/);
  });

  it('hands out committed entries once, then applies them', () => {
    const l = log([1, 1, 1]);
    l.commitTo(3);
    expect(l.nextCommittedEnts().map((x) => x.index)).toEqual([1, 2, 3]);
    l.acceptApplying(3);
    expect(l.hasNextCommittedEnts()).toBe(false);
    l.appliedTo(3);
    expect(l.applied).toBe(3);
  });
});

describe('Inflights', () => {
  it('is a bounded FIFO freed by acknowledgement', () => {
    const f = new Inflights(3);
    f.add(5);
    f.add(7);
    f.add(9);
    expect(f.full()).toBe(true);
    expect(() => f.add(10)).toThrow(/full/);
    f.freeLE(7);
    expect(f.count).toBe(1);
    for (let i = 10; i < 30; i += 2) {
      f.add(i);
      f.freeLE(i - 2);
    }
    expect(f.count).toBe(1);
    f.freeLE(100);
    expect(f.count).toBe(0);
  });
});

describe('Progress', () => {
  it('probe → replicate → probe on rejection; snapshot resumes after the snapshot index', () => {
    const p = new Progress(11, 4, false, true);
    expect(p.state).toBe('probe');
    p.sentEntries(3);
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(10)).toBe(true);
    p.becomeReplicate();
    expect(p.next).toBe(11);
    p.sentEntries(5);
    expect(p.next).toBe(16);
    // A rejection of something before match is stale.
    expect(p.maybeDecrTo(9, 9)).toBe(false);
    expect(p.maybeDecrTo(15, 12)).toBe(true);
    expect(p.next).toBe(11);
    p.becomeSnapshot(50);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect(p.next).toBe(51);
  });

  it('a probing rejection uses the hint but never goes below match + 1', () => {
    const p = new Progress(21, 4, false, true);
    p.match = 5;
    expect(p.maybeDecrTo(19, 2)).toBe(false); // not the outstanding probe
    expect(p.maybeDecrTo(20, 2)).toBe(true);
    expect(p.next).toBe(6);
  });
});

describe('quorum', () => {
  it('committedIndex is the highest index a majority holds', () => {
    const voters = new Set([1n, 2n, 3n, 4n, 5n]);
    const m = new Map([
      [1n, 10],
      [2n, 8],
      [3n, 8],
      [4n, 2],
      [5n, 1],
    ]);
    expect(committedIndex(voters, (id) => m.get(id)!)).toBe(8);
    expect(committedIndex(new Set([1n, 2n]), (id) => m.get(id)!)).toBe(8);
    expect(committedIndex(new Set(), () => 5)).toBe(0);
  });

  it('voteResult: won, lost or still pending', () => {
    const v = new Set([1n, 2n, 3n]);
    expect(voteResult(v, new Map([[1n, true]]))).toBe('pending');
    expect(voteResult(v, new Map([[1n, true], [2n, true]]))).toBe('won');
    expect(voteResult(v, new Map([[1n, false], [2n, false]]))).toBe('lost');
    expect(voteResult(v, new Map([[9n, true], [8n, true]]))).toBe('pending');
  });
});

describe('conf changes', () => {
  const cfg = { voters: new Set([1n, 2n]), learners: new Set([3n]) };
  const cc = (type: ConfChangeType, nodeId: bigint) => ({ id: 0n, type, nodeId, context: new Uint8Array() });

  it('add, promote, demote, remove — one member at a time', () => {
    const ok = (r: ReturnType<typeof changeConfig>) => {
      if ('error' in r) throw new Error(r.error);
      return toConfState(r.config);
    };
    expect(ok(changeConfig(cfg, cc(ConfChangeType.AddNode, 4n)))).toMatchObject({ voters: [1n, 2n, 4n], learners: [3n] });
    expect(ok(changeConfig(cfg, cc(ConfChangeType.AddNode, 3n)))).toMatchObject({ voters: [1n, 2n, 3n], learners: [] });
    expect(ok(changeConfig(cfg, cc(ConfChangeType.AddLearnerNode, 2n)))).toMatchObject({ voters: [1n], learners: [2n, 3n] });
    expect(ok(changeConfig(cfg, cc(ConfChangeType.RemoveNode, 3n)))).toMatchObject({ voters: [1n, 2n], learners: [] });
    expect(ok(changeConfig(cfg, cc(ConfChangeType.UpdateNode, 1n)))).toMatchObject({ voters: [1n, 2n] });
  });

  it('refuses removing every voter and node 0; rejects joint or inconsistent conf states', () => {
    const one = { voters: new Set([1n]), learners: new Set<bigint>() };
    expect(changeConfig(one, cc(ConfChangeType.RemoveNode, 1n))).toEqual({ error: 'removed all voters' });
    expect(changeConfig(one, cc(ConfChangeType.AddNode, 0n))).toHaveProperty('error');
    expect(fromConfState({ ...emptyConfState, voters: [1n], votersOutgoing: [2n] })).toHaveProperty('error');
    expect(fromConfState({ ...emptyConfState, voters: [1n], learners: [1n] })).toHaveProperty('error');
    expect(fromConfState({ ...emptyConfState, voters: [1n, 1n] })).toHaveProperty('error');
  });
});
