// etcd-ts used to keep its LevelDB store at `member/snap/db`, the path where etcd keeps
// its bbolt file, so etcd's tools (`etcdctl backup`, `snapshot restore`) and an etcd
// data dir could not share it. The store now lives at `member/leveldb`; a data dir from
// before the move is moved at start by one rename, which is atomic: a start killed
// before it finds the old directory and renames it again, one killed after it finds the
// store in its place.

import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { nodeDisk } from '../../wal/index.js';
import { restoreInterruptedSwap } from '../received-db.js';
import { pathKind } from './path-kind.js';

/** Thrown when both places hold a store: which one is current is the operator's call. */
export class LegacyStoreError extends Error {
  override name = 'LegacyStoreError';
}

/**
 * Moves a LevelDB store at `boltPath` (etcd's `member/snap/db`) to `dbDir`. A swap of a
 * leader's store that a crash cut short at the old path is finished first, so the move
 * takes the store the member had.
 */
export async function moveLegacyStore(boltPath: string, dbDir: string, log: Logger): Promise<void> {
  await restoreInterruptedSwap(boltPath);
  if ((await pathKind(boltPath)) !== 'dir') return;
  if ((await pathKind(dbDir)) !== 'none') {
    throw new LegacyStoreError(
      `both ${boltPath} (where etcd-ts kept its LevelDB store before) and ${dbDir} hold a store; keep the current one and remove the other`,
    );
  }
  await rename(boltPath, dbDir);
  await nodeDisk.fsyncDir(path.dirname(dbDir));
  await nodeDisk.fsyncDir(path.dirname(boltPath));
  log.info({ from: boltPath, to: dbDir }, 'moved the LevelDB store out of etcd\'s bbolt path');
}
