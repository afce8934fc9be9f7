// What the store has done since the process started, for etcd's etcd_mvcc_* metrics.
// One object outlives the stores that count into it: a store replaced by a leader's
// snapshot hands it on (MvccStoreOptions.replacing), so the counters never go back.

export class MvccStats {
  /** range operations: Range calls and the range ops of txns */
  ranges = 0;
  puts = 0;
  /** delete-range operations (not keys deleted) */
  deletes = 0;
  /** txns of more than one operation, as etcd counts them */
  txns = 0;
  /** key plus value bytes of every put */
  putBytes = 0;
  /** keys that exist now (a gauge: set again when a store is opened) */
  keys = 0;
  /** revisions physically removed from the backend by compactions */
  compactedDbKeys = 0;
}
