// RaftLog: the log as raft sees it — persisted entries in Storage overlaid by the
// unstable tail — plus the commit and apply cursors.
//
//   snapshot/compacted | stable (Storage) | unstable (not yet persisted)
//                applied ≤ applying ≤ committed ≤ lastIndex

import type { Entry, Snapshot } from '../raftpb/index.js';
import { CompactedError, UnavailableError } from './errors.js';
import { Unstable } from './log-unstable.js';
import type { Storage } from './storage.js';
import { limitSize } from './types.js';

export class RaftLog {
  readonly unstable: Unstable;
  /** highest index known to be stored on a quorum */
  committed: number;
  /** highest index handed to the driver for applying (in a Ready not yet advanced) */
  applying: number;
  /** highest index the driver has applied */
  applied: number;

  constructor(
    readonly storage: Storage,
    /** budget (entrySize total) of committed entries handed out per Ready */
    private readonly maxApplyingSize: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** term of entry i, or undefined when i is compacted or beyond the log; valid for firstIndex()-1 too */
  term(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i + 1 < this.firstIndex() || i > this.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === undefined) throw new Error(`raft log: no term for last index ${this.lastIndex()}`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** §5.4.1: a candidate's log (lastIndex, lastTerm) is at least as up-to-date as ours */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** first index whose entry differs from (or is missing in) our log, 0 if all match */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ index whose term is ≤ term, with that term: the latest point
   * at which our log can still match a log whose entry at `index` has `term`. Used for
   * conflict hints in both directions. An unknown term (compacted) stops the search
   * with term 0, meaning "maybe".
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const ours = this.term(index);
      if (ours === undefined) return [index, 0];
      if (ours <= term) return [index, ours];
    }
    return [0, 0];
  }

  /**
   * Append entries following (index, logTerm) if our log has that entry, replacing a
   * conflicting uncommitted suffix, and commit up to min(committed, last new index).
   * Returns the last new index, or undefined when (index, logTerm) does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`raft log: entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ci === index + 1 ? ents : ents.slice(ci - index - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`raft log: after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    if (toCommit > this.lastIndex()) {
      throw new Error(`raft log: tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]`);
    }
    this.committed = toCommit;
  }

  /** §5.4.2: advance the commit index to maxIndex only if that entry is from the current term. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** entries not yet persisted, as a stable copy for a Ready */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot !== undefined) return false;
    return Math.max(this.applying + 1, this.firstIndex()) <= this.committed;
  }

  /** committed entries not yet handed out for applying, within the per-Ready budget */
  nextCommittedEnts(): Entry[] {
    if (this.unstable.snapshot !== undefined) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxApplyingSize);
  }

  acceptApplying(index: number): void {
    this.applying = Math.max(this.applying, index);
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (index > this.committed || index < this.applied) {
      throw new Error(`raft log: applied(${index}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = index;
    this.applying = Math.max(this.applying, index);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** the snapshot a lagging follower needs: the unstable one if any, else Storage's */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** entries from i to the end, within maxSize; throws CompactedError if i is compacted */
  entries(i: number, maxSize: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, last + 1, maxSize);
  }

  /** entries in [lo, hi) within maxSize (at least one); throws CompactedError if lo is compacted */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError();
    if (hi > this.lastIndex() + 1) throw new UnavailableError();
    if (lo >= hi) return [];
    const off = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < off) {
      const stableHi = Math.min(hi, off);
      ents = this.storage.entries(lo, stableHi, maxSize);
      // Storage stopped early: the size budget is spent.
      if (ents.length < stableHi - lo) return ents;
    }
    if (hi > off) {
      const unst = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(unst) : unst;
    }
    return limitSize(ents, maxSize);
  }

  /** Replace the log with a snapshot from the leader (follower only). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
