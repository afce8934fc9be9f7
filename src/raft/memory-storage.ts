// MemoryStorage: the Storage implementation backed by an array. The server keeps
// its hot log tail here (restored from the WAL at start); tests and the simulator
// use it as their whole "disk".

import { type ConfState, type Entry, type HardState, type Snapshot, emptyHardState, emptySnapshot } from '../raftpb/index.js';
import { SlabCopier } from '../pkg/slab-copier.js';
import { CompactedError, SnapOutOfDateError, UnavailableError } from './errors.js';
import type { Storage } from './storage.js';
import { entrySize } from './types.js';

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState;
  private snap: Snapshot = emptySnapshot;
  /**
   * ents[0] is a dummy standing for the snapshot's last entry (its index and term
   * only), so ents[i] holds log index ents[0].index + i.
   */
  private ents: Entry[] = [dummyEntry(0, 0)];
  /**
   * Entries come in with data that is a view into a bigger buffer (a proposal's slice of
   * Node's shared pool, a peer message, a WAL read) and stay for up to --snapshot-count
   * entries: kept as they came, each would keep all of that buffer. They are kept as
   * copies in slabs of their own, which the log frees as it is compacted from the front.
   */
  private readonly data = new SlabCopier();

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError();
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError();
    }
    if (this.ents.length === 1) throw new UnavailableError();
    // Count how many entries fit before copying, so a large range costs one slice.
    const start = lo - offset;
    const end = hi - offset;
    let size = 0;
    let stop = start;
    while (stop < end) {
      size += entrySize(this.ents[stop]!);
      if (size > maxSize && stop > start) break;
      stop++;
    }
    return this.ents.slice(start, stop);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError();
    const e = this.ents[i - offset];
    if (e === undefined) throw new UnavailableError();
    return e.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole contents with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) throw new SnapOutOfDateError();
    this.snap = snap;
    this.ents = [dummyEntry(snap.metadata.term, snap.metadata.index)];
  }

  /**
   * Record a snapshot of the applied state at index (≤ lastIndex). cs is the
   * configuration as of index (undefined keeps the previous one); data is opaque.
   * Compaction is a separate step (compact) so recent entries stay for slow followers.
   */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new SnapOutOfDateError();
    const offset = this.ents[0]!.index;
    if (index > this.lastIndex()) {
      throw new RangeError(`snapshot ${index} is out of bound lastindex(${this.lastIndex()})`);
    }
    this.snap = {
      data,
      metadata: { index, term: this.ents[index - offset]!.term, confState: cs ?? this.snap.metadata.confState },
    };
    return this.snap;
  }

  /** Discard entries up to and including compactIndex (they must be covered by a snapshot the driver keeps). */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new CompactedError();
    if (compactIndex > this.lastIndex()) {
      throw new RangeError(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const kept = this.ents.slice(i + 1);
    kept.unshift(dummyEntry(this.ents[i]!.term, compactIndex));
    this.ents = kept;
  }

  /**
   * Append entries (contiguous, as handed out by a Ready). Entries that overlap the
   * held log replace it from their first index on; entries already compacted are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const firstNew = entries[0]!.index;
    const lastNew = firstNew + entries.length - 1;
    if (lastNew < first) return;
    const skip = first > firstNew ? first - firstNew : 0;
    const at = firstNew + skip - this.ents[0]!.index;
    if (at > this.ents.length) {
      throw new RangeError(`missing log entry [last: ${this.lastIndex()}, append at: ${firstNew + skip}]`);
    }
    this.ents.length = at;
    for (let i = skip; i < entries.length; i++) {
      const e = entries[i]!;
      this.ents.push({ term: e.term, index: e.index, type: e.type, data: this.data.copy(e.data) });
    }
  }
}

function dummyEntry(term: number, index: number): Entry {
  return { term, index, type: 0, data: new Uint8Array(0) };
}
