// What etcd-ts does at start with a bbolt file at etcd's path member/snap/db. etcd-ts's
// live store is LevelDB (member/leveldb), so while it runs the file could only fall
// behind it, and etcd's tools that copy it (`etcdctl backup --with-v3`) would silently
// copy old data. So the file never outlives a start:
//   - no store yet: the file is what etcd left (`snapshot restore`, `etcdctl backup`, a
//     stopped etcd 3.4 member), imported (bolt-import.ts), then removed;
//   - the store was built from this very file (bolt-origin.ts): removed;
//   - a file with only the `key` and `meta` buckets is what `etcdctl migrate` creates
//     when there was no db: its v2 keys (as revisions) and its consistent index are
//     written into the store, as migrate writes them into etcd's db, then it is removed;
//   - any other file: refused, naming both places: which one is current is the
//     operator's call, and guessing could lose either.

import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BoltFile } from '../../bbolt/index.js';
import { addToStore, type BucketRecords } from '../../mvcc/index.js';
import { parseRevision } from '../../mvcc/revision.js';
import { nodeDisk } from '../../wal/index.js';
import { BoltImportError, importBoltDb } from './bolt-import.js';
import { boltIdentity, readOrigin } from './bolt-origin.js';
import { pathKind } from './legacy-store.js';

/** The buckets `etcdctl migrate` creates in a new db (prepareBackend), and the one meta key it writes. */
const MIGRATE_BUCKETS = 'key,meta';
const CONSISTENT_INDEX = 'consistent_index';

/** Brings the store at `dbDir` up to the bbolt file at `boltPath` (if any), and removes the file. */
export async function takeEtcdDb(boltPath: string, dbDir: string, log: Logger): Promise<void> {
  await importBoltDb(boltPath, dbDir, log);
  if ((await pathKind(boltPath)) !== 'file') return;
  const identity = await boltIdentity(boltPath).catch((err: Error) => {
    throw new BoltImportError(`${boltPath} is not a bbolt db etcd-ts can read (${err.message}); the store in ${dbDir} was left as it was`);
  });
  if ((await readOrigin(dbDir)) === identity) {
    log.info({ path: boltPath, store: dbDir }, "removed etcd's bbolt db the store was imported from: the store goes on from here");
  } else if (await isMigrateOutput(boltPath)) {
    await addMigratedKeys(boltPath, dbDir, log);
  } else {
    throw new BoltImportError(
      `${boltPath} is a bbolt db that etcd-ts's store in ${dbDir} was not built from; to keep the store, remove ${boltPath}; to start from the bbolt db instead, remove ${dbDir}`,
    );
  }
  await rm(boltPath);
  await nodeDisk.fsyncDir(path.dirname(boltPath));
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
