// The Storage contract (etcd's raft.Storage): how raft reads what the driver has
// persisted. Raft never writes to Storage; the driver does, from each Ready.

import type { ConfState, Entry, HardState, Snapshot } from '../raftpb/index.js';

export interface Storage {
  /** the persisted HardState and the ConfState of the latest snapshot, read once at start */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at least one if any, trimmed so their total entrySize stays
   * within maxSize. Throws CompactedError when lo ≤ the snapshot index and
   * UnavailableError when the range is not held. Callers must not mutate the result.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * Term of entry i, for i in [firstIndex()-1, lastIndex()] (the term of the snapshot
   * index is kept for log matching). Throws CompactedError / UnavailableError otherwise.
   */
  term(i: number): number;
  /** index of the first entry that may be read with entries(); older ones are compacted */
  firstIndex(): number;
  lastIndex(): number;
  /** the latest snapshot; may throw SnapshotTemporarilyUnavailableError while one is built */
  snapshot(): Snapshot;
}
