// Which bbolt file a store was built from. The import records it inside the store it
// builds, before the store takes its place, so that a later start which finds both the
// store and a file at member/snap/db can tell the file it was built from (now behind
// the store: removed) from a file an etcd tool wrote since (taken, or refused).
//
// A file is known by a hash of its two meta pages: every bbolt commit rewrites one of
// them with a new transaction id, so any write by bbolt changes the hash, while a copy
// of the file (cp, rsync) keeps it.

import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BoltFile } from '../../bbolt/index.js';
import { nodeDisk } from '../../wal/index.js';

/** Beside LevelDB's own files in the store's directory; LevelDB leaves names it does not know alone. */
const ORIGIN_FILE = 'ETCD_BBOLT_ORIGIN';

/** The hash of the file's meta pages (hex); throws BoltFormatError when they are not bbolt's. */
export async function boltIdentity(file: string): Promise<string> {
  const bolt = await BoltFile.open(file);
  const metas = Buffer.alloc(2 * bolt.pageSize);
  await bolt.close();
  const fh = await open(file, 'r');
  try {
    await fh.read(metas, 0, metas.length, 0);
  } finally {
    await fh.close();
  }
  return createHash('sha256').update(metas).digest('hex');
}

/** Records (synced) that the store in `storeDir` was built from the file known as `identity`. */
export async function writeOrigin(storeDir: string, identity: string): Promise<void> {
  const file = path.join(storeDir, ORIGIN_FILE);
  await writeFile(file, `${identity}\n`, { flush: true });
  await nodeDisk.fsyncDir(storeDir);
}

/** The identity recorded in `storeDir`, undefined when the store was not built from a bbolt file. */
export async function readOrigin(storeDir: string): Promise<string | undefined> {
  try {
    return (await readFile(path.join(storeDir, ORIGIN_FILE), 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
