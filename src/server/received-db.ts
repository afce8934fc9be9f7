// A database received with a leader's snapshot waits beside the live store, as etcd's
// bbolt file at `<snap dir>/<index %016x>.snap.db` (etcd's name for it), until raft has
// accepted the snapshot and the WAL records it; only then is it imported into a LevelDB
// store beside it (`<file>.leveldb`) which takes the live store's place (etcd's order:
// rafthttp saves the file, raft decides, applySnapshot opens it). A forged or late
// snapshot that raft ignores is deleted and the live store never changes. At start, a
// received database that the WAL's snapshot still needs is installed (the member stopped
// between recording the snapshot and installing it); any other is deleted.

import { access, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BoltFile } from '../bbolt/index.js';
import type { RestoredState } from '../mvcc/index.js';
import { nativeHeapTrimmer } from '../pkg/native-heap.js';
import { importBoltDb, importDir } from './import/bolt-import.js';
import { nodeDisk } from '../wal/index.js';

const RECEIVED_NAME = /^[0-9a-f]{16}\.snap\.db(\.part|\.leveldb|\.leveldb\.import)?$/;
/** Written while the body arrives; renamed to the final name once complete, synced and checked. */
const PART_SUFFIX = '.part';
/** The LevelDB store a received database is imported into before the swap. */
const IMPORTED_SUFFIX = '.leveldb';
/** Where the live store goes for the moment between the two renames of a swap. */
const ASIDE_SUFFIX = '.replaced';

export function receivedDbPath(snapDir: string, index: number): string {
  return path.join(snapDir, `${index.toString(16).padStart(16, '0')}.snap.db`);
}

/**
 * Writes the database `stream` carries at `file`. The name appears only once the file is
 * complete, on disk and a whole bbolt database (bbolt's full check: every page reachable
 * once, free list and meta pages consistent), so a received database found at start is
 * always one, and raft never accepts a snapshot whose database could not be installed.
 */
export async function saveReceivedDb(file: string, stream: AsyncIterable<Buffer>): Promise<SavedDbTimes> {
  const started = performance.now();
  const part = file + PART_SUFFIX;
  await rm(part, { force: true });
  let fsyncSeconds: number;
  try {
    const fh = await open(part, 'w');
    try {
      for await (const chunk of stream) await fh.write(chunk);
      const syncStarted = performance.now();
      await fh.sync();
      fsyncSeconds = (performance.now() - syncStarted) / 1000;
    } finally {
      await fh.close();
    }
    const bolt = await BoltFile.open(part);
    try {
      await bolt.check();
    } finally {
      await bolt.close();
    }
    await rename(part, file);
    await nodeDisk.fsyncDir(path.dirname(file));
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  return { totalSeconds: (performance.now() - started) / 1000, fsyncSeconds };
}

/** How long a received database took to save, and its fsync (etcd_snap_db_save_total_duration_seconds, etcd_snap_db_fsync_duration_seconds). */
export interface SavedDbTimes {
  totalSeconds: number;
  fsyncSeconds: number;
}

export async function discardReceivedDb(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Imports the received database at `file` and puts it in the place of the closed store
 * at `dbDir`, then deletes the file; returns the new store's state for its open. Each
 * step can be cut by a crash: the import is redone from the file, the swap undone by
 * restoreInterruptedSwap.
 */
export async function installReceivedDb(dbDir: string, file: string, log: Logger): Promise<RestoredState> {
  const imported = file + IMPORTED_SUFFIX;
  await rm(imported, { recursive: true, force: true });
  await rm(importDir(imported), { recursive: true, force: true });
  const summary = await importBoltDb(file, imported, log);
  if (summary === undefined) throw new Error(`the received database ${file} is missing`);
  await swapInReceivedDb(dbDir, imported);
  await rm(file, { force: true });
  // the import read the whole received file and built the store: give the memory it freed back
  nativeHeapTrimmer.request('snapshot-install', log);
  return summary.restored;
}

/**
 * Puts the store at `received` in the place of the closed one at `dbDir`. The old store
 * moves aside first: a crash leaves a whole store at `dbDir`, or (between the two
 * renames) none there and both beside it, which restoreInterruptedSwap undoes.
 */
async function swapInReceivedDb(dbDir: string, received: string): Promise<void> {
  const aside = dbDir + ASIDE_SUFFIX;
  await rm(aside, { recursive: true, force: true });
  await rename(dbDir, aside);
  await rename(received, dbDir);
  await nodeDisk.fsyncDir(path.dirname(dbDir));
  await rm(aside, { recursive: true, force: true });
}

/**
 * At start, before the store opens: a swap cut between its renames gets the old store
 * back at `dbDir` (the received database is still beside it, to be installed again if
 * the WAL needs it); a completed one only had its old store left to delete.
 */
export async function restoreInterruptedSwap(dbDir: string): Promise<void> {
  const aside = dbDir + ASIDE_SUFFIX;
  if (!(await exists(aside))) return;
  if (await exists(dbDir)) await rm(aside, { recursive: true, force: true });
  else await rename(aside, dbDir);
}

/** Deletes every received database (complete, partial or half imported) in `snapDir`; returns their names. */
export async function removeReceivedDbs(snapDir: string): Promise<string[]> {
  const names = (await readdir(snapDir)).filter((n) => RECEIVED_NAME.test(n));
  for (const n of names) await rm(path.join(snapDir, n), { recursive: true, force: true });
  return names;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
