// What etcd-ts does at start with a bbolt file at etcd's path member/snap/db. etcd-ts's
// live store is LevelDB (member/leveldb); the file is etcd's backend, which etcd-ts
// keeps for etcd's tools and for etcd itself (backup/db-file.ts):
//   - an empty file is removed: `etcdctl backup --with-v3` leaves one where it found no
//     db (bbolt opens the path with O_CREATE, then fails to initialise it read-only);
//   - no store yet: the file is what etcd left (`snapshot restore`, `etcdctl backup`, a
//     stopped etcd 3.4 member), imported (bolt-import.ts) and kept;
//   - the store was built from this very file, or wrote it (bolt-origin.ts): kept;
//   - a file with only the `key` and `meta` buckets is what `etcdctl migrate` creates
//     when there was no db: its v2 keys (as revisions) and its consistent index are
//     written into the store, as migrate writes them into etcd's db, then it is removed
//     (it lacks the rest of the store; the member writes a whole one at start);
//   - another file written since the store's last one, at or past the store's
//     consistent index: etcd (or an etcd tool) ran on the data dir since etcd-ts
//     stopped, and the file is newer than the store: it replaces the store;
//   - any other file is behind the store: refused, naming both places: it is not one
//     etcd-ts wrote, so which one is current is the operator's call.

import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BoltFile } from '../../bbolt/index.js';
import { addToStore, type BucketRecords, type RestoredState, storeConsistentIndex } from '../../mvcc/index.js';
import { parseRevision } from '../../mvcc/revision.js';
import { nodeDisk } from '../../wal/index.js';
import { boltConsistentIndex } from '../backup/db-file.js';
import { BoltImportError, importBoltDb } from './bolt-import.js';
import { boltIdentity, readOrigin } from './bolt-origin.js';
import { pathKind } from './path-kind.js';

/** The buckets `etcdctl migrate` creates in a new db (prepareBackend), and the one meta key it writes. */
const MIGRATE_BUCKETS = 'key,meta';
const CONSISTENT_INDEX = 'consistent_index';

/**
 * Brings the store at `dbDir` up to the bbolt file at `boltPath` (if any); see above.
 * Returns the state of the store it imported, for the store's first open (undefined:
 * it imported nothing).
 */
export async function takeEtcdDb(boltPath: string, dbDir: string, log: Logger): Promise<RestoredState | undefined> {
  await rm(supersededDir(dbDir), { recursive: true, force: true });
  if ((await pathKind(boltPath)) === 'file' && (await stat(boltPath)).size === 0) {
    await removeFile(boltPath);
    log.warn({ path: boltPath }, "removed an empty file at etcd's bbolt path (etcdctl backup --with-v3 leaves one where it finds no db)");
  }
  const imported = await importBoltDb(boltPath, dbDir, log);
  // the import keeps the file it imported: the store is built from it
  if (imported !== undefined) return imported.restored;
  if ((await pathKind(boltPath)) !== 'file') return undefined;
  const identity = await boltIdentity(boltPath).catch((err: Error) => {
    throw new BoltImportError(`${boltPath} is not a bbolt db etcd-ts can read (${err.message}); the store in ${dbDir} was left as it was`);
  });
  if ((await readOrigin(dbDir)) === identity) return undefined;
  if (await isMigrateOutput(boltPath)) {
    await addMigratedKeys(boltPath, dbDir, log);
    await removeFile(boltPath);
    return undefined;
  }
  const fileIndex = await boltConsistentIndex(boltPath);
  const storeIndex = await storeConsistentIndex(dbDir);
  if (fileIndex < storeIndex) {
    throw new BoltImportError(
      `${boltPath} (consistent index ${fileIndex}) is a bbolt db that etcd-ts did not write and is behind the store in ${dbDir} (consistent index ${storeIndex}); to keep the store, remove ${boltPath}; to start from the bbolt db instead, remove ${dbDir}`,
    );
  }
  log.info(
    { path: boltPath, 'consistent-index': fileIndex, store: dbDir, 'store-consistent-index': storeIndex },
    "etcd's bbolt db was written since etcd-ts last ran on this data dir and is not behind its store: it replaces the store",
  );
  await supersedeStore(dbDir);
  return (await importBoltDb(boltPath, dbDir, log))?.restored;
}

/**
 * Moves the store out of the way in one rename, then removes it: a start stopped before
 * the rename finds the store and decides again, one stopped after it imports the file
 * into the missing store (importBoltDb builds it aside and renames it into place), and
 * removes what is left aside.
 */
async function supersedeStore(dbDir: string): Promise<void> {
  const aside = supersededDir(dbDir);
  await rm(aside, { recursive: true, force: true });
  await rename(dbDir, aside);
  await nodeDisk.fsyncDir(path.dirname(dbDir));
  await rm(aside, { recursive: true, force: true });
}

/** Where a store replaced by a newer bbolt db goes until it is removed. */
function supersededDir(dbDir: string): string {
  return `${dbDir}.superseded`;
}

async function removeFile(file: string): Promise<void> {
  await rm(file);
  await nodeDisk.fsyncDir(path.dirname(file));
}

async function isMigrateOutput(boltPath: string): Promise<boolean> {
  const bolt = await BoltFile.open(boltPath);
  try {
    if (bolt.bucketNames().map((b) => b.toString('latin1')).join() !== MIGRATE_BUCKETS) return false;
    const meta: string[] = [];
    for await (const [k] of bolt.entries('meta')) meta.push(k.toString('latin1'));
    return meta.join() === CONSISTENT_INDEX;
  } finally {
    await bolt.close();
  }
}

/**
 * `etcdctl migrate` wrote the v2 store's keys as revisions (create and mod revision: the
 * v2 indexes) and set the consistent index to the WAL's last index: the same records go
 * into the store. Writing them twice (a start stopped half way) writes the same bytes.
 */
async function addMigratedKeys(boltPath: string, dbDir: string, log: Logger): Promise<void> {
  const bolt = await BoltFile.open(boltPath);
  let keys = 0;
  try {
    await bolt.check();
    async function* records(): AsyncGenerator<BucketRecords> {
      for await (const [k, v] of bolt.entries('key')) {
        if (parseRevision(k) === undefined) throw new BoltImportError(`${boltPath}: bucket "key" holds ${k.toString('hex')}, not a revision`);
        keys++;
        yield { bucket: 'key', entries: [[k, v]] };
      }
      for await (const [k, v] of bolt.entries('meta')) yield { bucket: 'meta', entries: [[k, v]] };
    }
    await addToStore(dbDir, records());
  } catch (err) {
    if (err instanceof BoltImportError) throw err;
    throw new BoltImportError(`cannot take the keys etcdctl migrate wrote to ${boltPath}: ${(err as Error).message}`);
  } finally {
    await bolt.close();
  }
  log.info({ path: boltPath, store: dbDir, revisions: keys }, "added the v2 keys etcdctl migrate wrote to etcd's bbolt db to the store");
}
