// A store written before revision records' keys became hex digits (revision.ts) keeps
// them as etcd's bytes. Its first open rewrites them, a batch at a time, each batch one
// atomic LevelDB write of the new keys and the deletions of the old: a start stopped half
// way leaves records of both layouts, and the next open rewrites what is left. Old keys
// sort before new ones ('k', then a revision's first byte, below '0' for any revision
// under 2^56, against a hex digit), so a store that has none costs one seek.

import type { Db } from './backend.js';
import { KEY_BUCKET_PREFIX, LEGACY_REVISION_DB_KEY_LENS, malformedRevisionKey, parseRevision, revisionDbKeyOf } from './revision.js';

const BATCH = 1000;

/** Rewrites the old-layout revision records of the open store `db`; resolves to how many there were. */
export async function migrateRevisionKeys(db: Db): Promise<number> {
  const gte = Buffer.of(KEY_BUCKET_PREFIX);
  const lt = Buffer.of(KEY_BUCKET_PREFIX, 0x30);
  const it = db.iterator({ gte, lt, fillCache: false });
  let migrated = 0;
  try {
    for (;;) {
      const entries = await it.nextv(BATCH);
      if (entries.length === 0) break;
      const batch = db.batch();
      for (const [k, v] of entries) {
        if (!LEGACY_REVISION_DB_KEY_LENS.includes(k.length) || parseRevision(k, 1) === undefined) {
          throw malformedRevisionKey(k);
        }
        batch.put(revisionDbKeyOf(k.subarray(1)), v);
        batch.del(k);
      }
      await batch.write();
      migrated += entries.length;
    }
  } finally {
    await it.close();
  }
  // LevelDB keeps the deletions until it compacts them, and every later open's seek and
  // full scan would step over each one: compact the old range away now
  if (migrated > 0) await db.compactRange(gte, lt);
  return migrated;
}
