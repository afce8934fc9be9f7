// A store received with a leader's snapshot waits beside the live one, at
// `<snap dir>/<index %016x>.snap.db` (etcd's name for the same file), until raft has
// accepted the snapshot and the WAL records it; only then does it take the live store's
// place (etcd's order: rafthttp saves the file, raft decides, applySnapshot opens it).
// A forged or late snapshot that raft ignores is deleted and the live store never
// changes. At start, a received store that the WAL's snapshot still needs is swapped in
// (the member stopped between recording the snapshot and installing it); any other is
// deleted.

import { access, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { MvccStore } from '../mvcc/index.js';
import { nodeDisk } from '../wal/index.js';

const RECEIVED_NAME = /^[0-9a-f]{16}\.snap\.db(\.part)?$/;
/** Written while the body arrives; renamed to the final name once complete and synced. */
const PART_SUFFIX = '.part';
/** Where the live store goes for the moment between the two renames of a swap. */
const ASIDE_SUFFIX = '.replaced';

export function receivedDbPath(snapDir: string, index: number): string {
  return path.join(snapDir, `${index.toString(16).padStart(16, '0')}.snap.db`);
}

/**
 * Writes the store `stream` carries at `dir`. The name appears only once the store is
 * complete, checked and on disk, so a received store found at start is always whole.
 */
export async function saveReceivedDb(dir: string, stream: AsyncIterable<Buffer>): Promise<void> {
  const part = dir + PART_SUFFIX;
  await rm(part, { recursive: true, force: true });
  try {
    await MvccStore.restore(part, stream);
    await rename(part, dir);
    await nodeDisk.fsyncDir(path.dirname(dir));
  } catch (err) {
    await rm(part, { recursive: true, force: true });
    throw err;
  }
}

export async function discardReceivedDb(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Puts the received store at `received` in the place of the closed one at `dbDir`. The
 * old store moves aside first: a crash leaves a whole store at `dbDir`, or (between the
 * two renames) none there and both beside it, which restoreInterruptedSwap undoes.
 */
export async function swapInReceivedDb(dbDir: string, received: string): Promise<void> {
  const aside = dbDir + ASIDE_SUFFIX;
  await rm(aside, { recursive: true, force: true });
  await rename(dbDir, aside);
  await rename(received, dbDir);
  await nodeDisk.fsyncDir(path.dirname(dbDir));
  await rm(aside, { recursive: true, force: true });
}

/**
 * At start, before the store opens: a swap cut between its renames gets the old store
 * back at `dbDir` (the received one is still beside it, to be swapped in again if the
 * WAL needs it); a completed one only had its old store left to delete.
 */
export async function restoreInterruptedSwap(dbDir: string): Promise<void> {
  const aside = dbDir + ASIDE_SUFFIX;
  if (!(await exists(aside))) return;
  if (await exists(dbDir)) await rm(aside, { recursive: true, force: true });
  else await rename(aside, dbDir);
}

/** Deletes every received store (complete or partial) in `snapDir`; returns their names. */
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
