// First start on a data dir etcd wrote (`etcdctl snapshot restore`, `etcdctl backup`, or
// a stopped etcd 3.4 member): its keys, leases, auth and alarms are in the bbolt file at
// member/snap/db, and etcd-ts's LevelDB store does not exist yet. The file is streamed
// bucket by bucket into a LevelDB at a temporary path, which is renamed to the store's
// path once complete and on disk: the store's existence is the mark of a finished
// import, so a start killed at any point finds either no store (and imports again from
// scratch) or the whole one. The bbolt file stays where etcd's tools expect it.
//
// The `members`, `members_removed` and `cluster` buckets are not imported: etcd 3.4
// recovers membership and the cluster version from the v2 store in its .snap file and
// the WAL (see snapshot-data.ts), and after `snapshot restore` they still describe the
// old cluster.

import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BoltFile } from '../../bbolt/index.js';
import { type BucketName, type BucketRecords, buildStore, type RestoredState } from '../../mvcc/index.js';
import { parseRevision, readUint64BE } from '../../mvcc/revision.js';
import { nodeDisk } from '../../wal/index.js';
import { boltIdentity, writeOrigin } from './bolt-origin.js';
import { pathKind } from './path-kind.js';

/** A bbolt file whose contents etcd-ts cannot take as etcd's; names the file. */
export class BoltImportError extends Error {
  override name = 'BoltImportError';
}

/** etcd 3.4's buckets and what the import does with each. */
const IMPORTED: Readonly<Record<string, BucketName>> = {
  key: 'key',
  meta: 'meta',
  lease: 'lease',
  alarm: 'alarm',
  auth: 'auth',
  authUsers: 'authUsers',
  authRoles: 'authRoles',
};
const LEFT_TO_SNAP_AND_WAL = new Set(['members', 'members_removed', 'cluster']);

export interface ImportSummary {
  /** records per imported bucket (the `key` bucket: revisions, tombstones included) */
  readonly records: Readonly<Partial<Record<BucketName, number>>>;
  /** the highest main revision in the `key` bucket (0: none) */
  readonly revision: number;
  readonly consistentIndex: number;
  /** the new store's state as its open restores it (MvccStoreOptions.restored): the first open need not read it back */
  readonly restored: RestoredState;
}

export interface ImportOptions {
  /** called after each batch written to the temporary store (fault injection in tests) */
  onBatch?: (batches: number) => void;
  /** called once the temporary store is complete, before it is renamed into place */
  beforeRename?: () => void;
}

/** Where the store is built before it takes its place. */
export function importDir(dbDir: string): string {
  return `${dbDir}.import`;
}

/**
 * Imports the bbolt file at `boltPath` into a new store at `dbDir` when there is such a
 * file and no store yet; returns what it imported, or undefined when there was nothing to do.
 */
export async function importBoltDb(
  boltPath: string,
  dbDir: string,
  log: Logger,
  opts: ImportOptions = {},
): Promise<ImportSummary | undefined> {
  const tmp = importDir(dbDir);
  if ((await pathKind(dbDir)) !== 'none' || (await pathKind(boltPath)) !== 'file') {
    await rm(tmp, { recursive: true, force: true });
    return undefined;
  }
  const started = performance.now();
  const identity = await boltIdentity(boltPath).catch((err: Error) => {
    throw new BoltImportError(`cannot import etcd's bbolt db ${boltPath}: ${err.message}`);
  });
  const bolt = await BoltFile.open(boltPath);
  try {
    log.info({ path: boltPath, size: (await stat(boltPath)).size, 'import-dir': tmp }, "importing etcd's bbolt db into the LevelDB store");
    await rm(tmp, { recursive: true, force: true });
    const counts: Partial<Record<BucketName, number>> = {};
    const last = { revision: 0, consistentIndex: 0 };
    const restored = await buildStore(tmp, records(bolt, boltPath, counts, last, log), { onBatch: opts.onBatch });
    await writeOrigin(tmp, identity);
    opts.beforeRename?.();
    await rename(tmp, dbDir);
    await nodeDisk.fsyncDir(path.dirname(dbDir));
    const summary: ImportSummary = { records: counts, ...last, restored };
    log.info(
      {
        path: boltPath,
        revisions: counts.key ?? 0,
        leases: counts.lease ?? 0,
        users: counts.authUsers ?? 0,
        roles: counts.authRoles ?? 0,
        alarms: counts.alarm ?? 0,
        revision: last.revision,
        'consistent-index': last.consistentIndex,
        took: `${Math.round(performance.now() - started)}ms`,
      },
      "imported etcd's bbolt db",
    );
    return summary;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof BoltImportError) throw err;
    throw new BoltImportError(`cannot import etcd's bbolt db ${boltPath}: ${(err as Error).message}`);
  } finally {
    await bolt.close();
  }
}

/**
 * Every record of the imported buckets, checked as it streams by. The scan checks the
 * whole file as it goes (a damaged child pointer or element count can hide a subtree
 * without breaking any page on the way) and throws at its end if it finds one: the
 * temporary store is then dropped.
 */
async function* records(
  bolt: BoltFile,
  file: string,
  counts: Partial<Record<BucketName, number>>,
  last: { revision: number; consistentIndex: number },
  log: Logger,
): AsyncGenerator<BucketRecords> {
  const skipped = new Set<string>();
  for await (const { bucket: raw, entries } of bolt.scan()) {
    const name = raw.toString('latin1');
    const bucket = IMPORTED[name];
    if (bucket === undefined) {
      if (!skipped.has(name)) {
        skipped.add(name);
        const why = LEFT_TO_SNAP_AND_WAL.has(name) ? "etcd 3.4 takes these from its .snap file and WAL, so does etcd-ts" : 'not a bucket etcd 3.4 has';
        log.info({ path: file, bucket: name }, `not imported: ${why}`);
      }
      continue;
    }
    for (const [k, v] of entries) {
      if (bucket === 'key') {
        const rev = parseRevision(k);
        if (rev === undefined) throw new BoltImportError(`${file}: bucket "key" holds ${k.toString('hex')}, not a revision`);
        last.revision = Math.max(last.revision, rev.main);
      } else if (bucket === 'meta' && k.toString('latin1') === 'consistent_index') {
        const ci = v.length === 8 ? readUint64BE(v, 0) : undefined;
        if (ci === undefined) throw new BoltImportError(`${file}: meta/consistent_index is ${v.toString('hex')}, not an index`);
        last.consistentIndex = ci;
      }
    }
    counts[bucket] = (counts[bucket] ?? 0) + entries.length;
    yield { bucket, entries };
  }
}
