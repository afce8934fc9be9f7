// Rebuilding the in-memory key index from LevelDB at open (etcd's store.restore):
// one ordered pass over the `key` bucket, where byte order is revision order.

import { Bucket, type Backend } from './backend.js';
import { decodeKeyValue } from './codec.js';
import { parseRevision } from './revision.js';
import type { TreeIndex } from './tree-index.js';

const BATCH = 1000;

/** Fills `index` from the stored revisions; returns the highest main revision seen (0 if none). */
export async function restoreIndex(backend: Backend, index: TreeIndex): Promise<{ currentRev: number }> {
  let currentRev = 0;
  const it = backend.db.iterator();
  try {
    for (;;) {
      const entries = await it.nextv(BATCH);
      if (entries.length === 0) break;
      for (const [k, v] of entries) {
        backend.countStored(k, v.length);
        if (k[0] !== Bucket.key) continue;
        const rev = parseRevision(k, 1);
        if (!rev) throw new Error(`mvcc: malformed revision key ${k.toString('hex')} in the key bucket`);
        const kv = decodeKeyValue(v);
        const keyStr = kv.key.toString('latin1');
        if (rev.tombstone) {
          const ki = index.get(keyStr);
          // a tombstone whose puts were compacted away closes nothing
          if (ki?.isLive()) ki.tombstone(rev.main, rev.sub);
        } else {
          index.getOrCreate(keyStr).restorePut(rev.main, rev.sub, kv.createRevision, kv.version, kv.value, kv.lease);
        }
        if (rev.main > currentRev) currentRev = rev.main;
      }
    }
  } finally {
    await it.close();
  }
  return { currentRev };
}
