// Rebuilding the in-memory key index from LevelDB at open (etcd's store.restore):
// one ordered pass over the `key` bucket, where byte order is revision order.

import { Bucket, type Backend } from './backend.js';
import { decodeKeyValue } from './codec.js';
import { parseRevision } from './revision.js';
import type { TreeIndex } from './tree-index.js';

const BATCH = 4096;
/** Values are copied into shared slabs of this size (a bigger value gets its own copy). */
const SLAB_BYTES = 64 * 1024;
/** Dead bytes in slabs that trigger a repack, once they also outweigh the live ones. */
const REPACK_DEAD_BYTES = 32 * 1024 * 1024;

/**
 * Copies restored values into shared slabs. LevelDB hands each record over in its own
 * buffer, and a view of the value would keep that whole buffer, with its own backing
 * store, alive for as long as the key is unchanged. Older revisions of a key are
 * copied too before the scan reaches the newest one; when such dead copies outweigh
 * the live values, every live value moves to fresh slabs, so slabs never hold more
 * than about twice the live values (a store with a long uncompacted history included).
 */
class ValueSlabs {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  private live = 0;
  private dead = 0;

  copy(v: Buffer): Buffer {
    this.live += v.length;
    if (v.length === 0) return v;
    if (v.length > SLAB_BYTES >> 4) return Buffer.from(v);
    if (this.used + v.length > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const start = this.used;
    this.used += v.copy(this.slab, start);
    return this.slab.subarray(start, this.used);
  }

  /** A copied value was superseded by a later revision or a tombstone. */
  release(v: Buffer): void {
    this.live -= v.length;
    this.dead += v.length;
  }

  repackIfWasteful(index: TreeIndex): void {
    if (this.dead < REPACK_DEAD_BYTES || this.dead < this.live) return;
    this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    this.used = this.live = this.dead = 0;
    index.all((ki) => {
      if (ki.value) ki.value = this.copy(ki.value);
    });
  }
}

/** Fills `index` from the stored revisions; returns the highest main revision seen (0 if none). */
export async function restoreIndex(backend: Backend, index: TreeIndex): Promise<{ currentRev: number }> {
  let currentRev = 0;
  const slabs = new ValueSlabs();
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
        if (ki?.value) slabs.release(ki.value);
        if (rev.tombstone) {
          // a tombstone whose puts were compacted away closes nothing
          if (ki?.isLive()) ki.tombstone(rev.main, rev.sub);
        } else {
          ki!.restorePut(rev.main, rev.sub, kv.createRevision, kv.version, slabs.copy(kv.value), kv.lease);
        }
        if (rev.main > currentRev) currentRev = rev.main;
      }
      slabs.repackIfWasteful(index);
    }
  } finally {
    await next.catch(() => {});
    await it.close();
  }
  return { currentRev };
}
