// Public surface of the MVCC store.
export { MvccStore, type MvccStoreOptions, type AuthBucket, type RangeSink, type SlicedRangeResult } from './kvstore.js';
export { isSliceable } from './range.js';
export { MvccStats } from './stats.js';
export { MvccError, GrpcCode, isMvccError, type MvccErrorCode } from './errors.js';
export {
  DEFAULT_MAX_TXN_OPS,
  checkDeleteRangeRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  isTxnReadonly,
} from './txn-check.js';
export type {
  WatchCreateResult,
  WatchRequest,
  WatchResponseOut,
  WatchSink,
  WatchStream,
} from './watchable-store.js';
export { type CompactionTuning, DEFAULT_COMPACTION_BATCH_LIMIT, StoreClosedError } from './compaction.js';
export { addToStore, type BucketRecords, buildStore, storeConsistentIndex, type BuildOptions } from './build.js';
export type { BucketName, BucketSize, BucketView, FrozenPoint, StoreReader } from './backend.js';
export { bucketViewOf } from './backend.js';
export { asBuffer } from './codec.js';
export type { RestoredState } from './restore.js';
export type * from './types.js';
export {
  Compactor,
  systemClock,
  REVISION_COMPACTION_INTERVAL_MS,
  type AutoCompaction,
  type CompactorClock,
  type CompactorOptions,
} from './compactor.js';
