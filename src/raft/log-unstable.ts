// The unstable tail of the raft log: entries (and possibly one incoming snapshot)
// that raft has accepted but the driver has not yet persisted. It overlays Storage:
// entries[i] has index offset + i, and a snapshot, if any, precedes them.

import type { Entry, Snapshot } from '../raftpb/index.js';

export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** index of entries[0]; always snapshot index + 1 when a snapshot is present */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** first index implied by an unstable snapshot, if any */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  /** term of entry i if the unstable tail knows it */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.metadata.index === i ? s.metadata.term : undefined;
    }
    return this.entries[i - this.offset]?.term;
  }

  /** The driver persisted entries up to (index, term): drop them from the tail. */
  stableTo(index: number, term: number): void {
    // Only if the entry is still ours: a later append may have replaced it.
    if (index < this.offset || this.maybeTerm(index) !== term) return;
    const n = index + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Append ents (contiguous), replacing any unstable entries from ents[0].index on. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      // Replaces the whole unstable tail, and the persisted entries from `from` on.
      this.offset = from;
      this.entries = ents.slice();
    } else {
      this.entries.length = from - this.offset;
      for (const e of ents) this.entries.push(e);
    }
  }

  /** entries in [lo, hi), which must lie within the unstable tail */
  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
