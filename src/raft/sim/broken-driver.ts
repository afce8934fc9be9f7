// Deliberately broken variants of the server's driver and applier, each wrong in one
// ordering rule, so tests can prove that some seed of the simulator notices (see
// Persistence in simulation.ts). Each overrides the one decision it breaks and is
// otherwise the real code.

import type { Ready } from '../index.js';
import { Applier } from '../../server/applier.js';
import { RaftNode } from '../../server/raft-node.js';

/** 'apply-before-fsync': hands committed entries to the applier before the Ready's WAL write is durable. */
export class ApplyBeforeFsyncNode extends RaftNode {
  protected override mustSaveBeforeApply(_rd: Ready): boolean {
    return false;
  }
}

/** 'snapshot-before-flush': freezes a snapshot's store (taken or shipped) without writing out what is staged. */
export class SnapshotBeforeFlushApplier extends Applier {
  protected override writeOutStaged(): Promise<void> {
    return Promise.resolve();
  }
}
