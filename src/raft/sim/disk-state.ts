// A simulated member's durable state: the real WAL and snapshotter on its MemDisk.
// A new member creates them; a restarted one reads them back the way a restarting
// etcd member does (the newest snapshot the WAL records, then the WAL after it), so a
// seed covers the WAL's own crash recovery too.

import type { Snapshot } from '../../raftpb/index.js';
import { type MemDisk, Snapshotter, WAL, validSnapshotEntries } from '../../wal/index.js';
import { MemoryStorage } from '../memory-storage.js';

const WAL_DIR = '/member/wal';
const SNAP_DIR = '/member/snap';
/** Small segments, so runs cut segments and release old ones as a long-lived member does. */
const SEGMENT_BYTES = 64 * 1024;

export interface DiskState {
  readonly wal: WAL;
  readonly snapshotter: Snapshotter;
  /** raft's log as the disk holds it */
  readonly raftStorage: MemoryStorage;
  /** the snapshot it starts from, if any */
  readonly snapshot: Snapshot | undefined;
}

export async function openDiskState(disk: MemDisk): Promise<DiskState> {
  const snapshotter = new Snapshotter(SNAP_DIR, { disk });
  const raftStorage = new MemoryStorage();
  const opts = { disk, segmentSizeBytes: SEGMENT_BYTES };
  if (!WAL.exists(WAL_DIR, disk)) {
    return { wal: await WAL.create(WAL_DIR, new Uint8Array(0), opts), snapshotter, raftStorage, snapshot: undefined };
  }
  // read whether or not a snap file needs them, as before: a seed replays the same disk operations
  const walSnaps = await validSnapshotEntries(WAL_DIR, { disk });
  const snapshot = await snapshotter.loadNewestAvailable(async () => walSnaps);
  const wal = await WAL.open(WAL_DIR, snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : { index: 0, term: 0 }, opts);
  const { hardState, entries } = await wal.readAll();
  if (snapshot) raftStorage.applySnapshot(snapshot);
  raftStorage.setHardState(hardState);
  raftStorage.append(entries);
  return { wal, snapshotter, raftStorage, snapshot };
}
