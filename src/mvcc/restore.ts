// Rebuilding the in-memory key index from LevelDB at open (etcd's store.restore):
// one ordered pass over the `key` bucket, where byte order is revision order. Values
// are not kept: reads find them in LevelDB by revision.

import { Bucket, type Backend } from './backend.js';
import { decodeKeyValue } from './codec.js';
import { parseRevision } from './revision.js';
import type { TreeIndex } from './tree-index.js';

const BATCH = 4096;

/** Fills `index` from the stored revisions; returns the highest main revision seen (0 if none). */
export async function restoreIndex(backend: Backend, index: TreeIndex): Promise<{ currentRev: number }> {
  let currentRev = 0;
  // a one-off full scan: keep it out of LevelDB's block cache
  const it = backend.db.iterator({ fillCache: false });
  // read the next batch on the thread pool while this one is indexed
  let next = it.nextv(BATCH);
  try {
    for (;;) {
      const entries = await next;
      if (entries.length === 0) break;
      next = it.nextv(BATCH);
      for (const [k, v] of entries) {
        backend.countStored(k, v.length);
        if (k[0] !== Bucket.key) continue;
        const rev = parseRevision(k, 1);
        if (!rev) throw new Error(`mvcc: malformed revision key ${k.toString('hex')} in the key bucket`);
        const kv = decodeKeyValue(v);
        const keyStr = kv.key.toString('latin1');
        const ki = rev.tombstone ? index.get(keyStr) : index.getOrCreate(keyStr);
        if (rev.tombstone) {
          // a tombstone whose puts were compacted away closes nothing
          if (ki?.isLive()) ki.tombstone(rev.main, rev.sub);
        } else {
          ki!.restorePut(rev.main, rev.sub, kv.createRevision, kv.version, kv.lease);
        }
        if (rev.main > currentRev) currentRev = rev.main;
      }
    }
  } finally {
    await next.catch(() => {});
    await it.close();
  }
  return { currentRev };
}
