// The RaftNode's storage over the real WAL and snapshotter (etcd's etcdserver/storage.go):
// what production wires on the real disk and the simulator on a MemDisk.

import type { Entry, HardState, Snapshot } from '../raftpb/types.js';
import type { Snapshotter, WAL } from '../wal/index.js';
import type { RaftStorage } from './raft-node.js';

export class WalStorage implements RaftStorage {
  constructor(
    readonly wal: WAL,
    readonly snapshotter: Snapshotter,
  ) {}

  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void> {
    return this.wal.save(hardState, entries, mustSync);
  }

  async saveSnap(snap: Snapshot): Promise<void> {
    await this.snapshotter.save(snap);
    await this.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
  }

  release(index: number): Promise<void> {
    return this.wal.releaseLockTo(index);
  }
}
