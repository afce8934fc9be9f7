// The durable log and snapshot files of etcd-ts (etcd's wal and snap packages),
// byte-compatible with etcd 3.4's on-disk formats.

export { WAL, DEFAULT_SEGMENT_SIZE_BYTES, validSnapshotEntries } from './wal.js';
export type { WalOptions, WalContents } from './wal.js';
export type { WalSnapshot } from './walpb.js';
export { Snapshotter } from './snapshotter.js';
export type { SnapshotterOptions } from './snapshotter.js';
export { purgeFiles } from './retention.js';
export type { PurgeOptions } from './retention.js';
export type { Disk, DiskFile, DiskLock, DurableWait, OpenMode } from './disk.js';
export { nodeDisk, createNodeDisk } from './nodedisk.js';
export type { NodeDiskOptions } from './nodedisk.js';
export { MemDisk, SimulatedCrash } from './memdisk.js';
export type { DiskOp, FaultAction, FaultHook } from './memdisk.js';
export type { WalLogger } from './logger.js';
export { WalError, WalCorruptError, WalLockedError, WalFailedError, SnapError } from './errors.js';
export { walName, parseWalName, snapName, parseSnapName, TEMP_DB_PREFIX } from './names.js';
