// MemoryStorage: the Storage implementation held in memory (the entries packed, see
// packed-entries.ts). The server keeps its hot log tail here (restored from the WAL at
// start); tests and the simulator use it as their whole "disk".

import { type ConfState, type Entry, type HardState, type Snapshot, emptyHardState, emptySnapshot } from '../raftpb/index.js';
import { CompactedError, SnapOutOfDateError, UnavailableError } from './errors.js';
import type { Storage } from './storage.js';
import { entryOverhead } from './types.js';
import { PackedEntries } from './packed-entries.js';

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState;
  private snap: Snapshot = emptySnapshot;
  /** index and term of the snapshot's last entry: the log holds the entries after it */
  private snapIndex = 0;
  private snapTerm = 0;
  /** entries snapIndex+1 .. lastIndex(), packed (packed-entries.ts says why) */
  private readonly log = new PackedEntries();

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo <= this.snapIndex) throw new CompactedError();
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError();
    }
    if (this.log.length === 0) throw new UnavailableError();
    // Count how many entries fit before making them (etcd's limitSize: at least one).
    const start = lo - this.snapIndex - 1;
    const end = hi - this.snapIndex - 1;
    let size = 0;
    let stop = start;
    while (stop < end) {
      size += this.log.dataLength(stop) + entryOverhead;
      if (size > maxSize && stop > start) break;
      stop++;
    }
    const out: Entry[] = new Array(stop - start);
    for (let i = start; i < stop; i++) out[i - start] = this.log.entry(i, this.snapIndex + 1 + i);
    return out;
  }

  term(i: number): number {
    if (i < this.snapIndex) throw new CompactedError();
    if (i === this.snapIndex) return this.snapTerm;
    if (i > this.lastIndex()) throw new UnavailableError();
    return this.log.term(i - this.snapIndex - 1);
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.log.length;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole contents with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) throw new SnapOutOfDateError();
    this.snap = snap;
    this.log.dropFront(this.log.length);
    this.snapIndex = snap.metadata.index;
    this.snapTerm = snap.metadata.term;
  }

  /**
   * Record a snapshot of the applied state at index (≤ lastIndex). cs is the
   * configuration as of index (undefined keeps the previous one); data is opaque.
   * Compaction is a separate step (compact) so recent entries stay for slow followers.
   */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new SnapOutOfDateError();
    if (index > this.lastIndex()) {
      throw new RangeError(`snapshot ${index} is out of bound lastindex(${this.lastIndex()})`);
    }
    this.snap = {
      data,
      metadata: { index, term: this.term(index), confState: cs ?? this.snap.metadata.confState },
    };
    return this.snap;
  }

  /** Discard entries up to and including compactIndex (they must be covered by a snapshot the driver keeps). */
  compact(compactIndex: number): void {
    if (compactIndex <= this.snapIndex) throw new CompactedError();
    if (compactIndex > this.lastIndex()) {
      throw new RangeError(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    this.snapTerm = this.term(compactIndex);
    this.log.dropFront(compactIndex - this.snapIndex);
    this.snapIndex = compactIndex;
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
    const at = firstNew + skip - first;
    if (at > this.log.length) {
      throw new RangeError(`missing log entry [last: ${this.lastIndex()}, append at: ${firstNew + skip}]`);
    }
    this.log.truncate(at);
    for (let i = skip; i < entries.length; i++) {
      const e = entries[i]!;
      this.log.push(e.term, e.type, e.data);
    }
  }
}
