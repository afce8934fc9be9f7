// Hash and HashKV as etcd computes them: CRC-32C over stored records.

import { BUCKET_NAMES, Bucket, MetaKey, bucketKey, type Db, type View } from './backend.js';
import { Crc32c } from '../pkg/crc32c.js';
import { revisionDbKeyFloor, revisionKeyOf, revisionOfDbKey } from './revision.js';
import type { TreeIndex } from './tree-index.js';

const CONSISTENT_INDEX_KEY = bucketKey('meta', Buffer.from(MetaKey.consistentIndex));

/**
 * Maintenance.Hash: every bucket's name, then its keys and values, skipping the
 * consistent index (which differs between members that hold the same data).
 */
export async function hashAll(view: View): Promise<number> {
  const h = new Crc32c();
  let bucket = -1;
  for await (const [k, v] of view.entries()) {
    if (k.equals(CONSISTENT_INDEX_KEY)) continue;
    if (k[0] !== bucket) {
      bucket = k[0]!;
      h.update(Buffer.from(BUCKET_NAMES[bucket] ?? String.fromCharCode(bucket)));
    }
    // etcd's bytes: a revision record's key is kept in hex digits
    h.update(k[0] === Bucket.key ? revisionKeyOf(k) : k.subarray(1));
    h.update(v);
  }
  return h.digest();
}

/**
 * etcd's HashByRev: "key", then every revision record up to `atRev`, leaving out
 * records at or below the compact revision that compaction at atRev would not keep
 * (unless it would keep nothing at all, an etcd quirk kept for equal hashes).
 */
export async function hashKV(db: Db, index: TreeIndex, atRev: number, compactRev: number): Promise<number> {
  const keep = new Set<string>();
  let keepsAny = false;
  index.all((ki) => {
    const r = ki.keep(atRev);
    if (!r) return;
    keepsAny = true;
    if (r.main <= compactRev) keep.add(`${r.main}_${r.sub}`);
  });
  const h = new Crc32c().update(Buffer.from('key'));
  const it = db.iterator({ gte: Buffer.of(Bucket.key), lt: revisionDbKeyFloor(atRev + 1) });
  try {
    for (;;) {
      const entries = await it.nextv(1000);
      if (entries.length === 0) break;
      for (const [k, v] of entries) {
        const r = revisionOfDbKey(k);
        if (r.main <= compactRev && keepsAny && !keep.has(`${r.main}_${r.sub}`)) continue;
        h.update(revisionKeyOf(k));
        h.update(v);
      }
    }
  } finally {
    await it.close();
  }
  return h.digest();
}
