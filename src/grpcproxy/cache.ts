// The KV proxy's cache of Range answers, as etcd's proxy/grpcproxy/cache: at most 2,048
// answers, least recently used dropped first, keyed by the request itself. A write
// through the proxy drops every cached answer whose range it touches; a compaction
// through the proxy makes reads below it fail as compacted. Writes that reach the
// cluster another way are not seen: a serializable read through the proxy may be stale
// until a write through it touches the range, which is what serializable allows.

import { Errors } from '../server/errors.js';
import { type Int64, toNumber } from '../server/pb.js';

/** etcd's DefaultMaxEntries */
export const CACHE_MAX_ENTRIES = 2048;

interface Entry {
  response: object;
  key: Buffer;
  /** empty: the key alone; "\0": every key from `key` on */
  end: Buffer;
  /** answers at a fixed revision never change and are not dropped by writes */
  revision: number;
}

export interface CachedRange {
  key: Buffer;
  range_end: Buffer;
  revision: Int64;
}

export class RangeCache {
  private readonly entries = new Map<string, Entry>();
  private compactedRev = -1;

  constructor(private readonly maxEntries = CACHE_MAX_ENTRIES) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached answer for the request whose cache key is `id`, or undefined; throws
   * etcd's compacted error for a revision below the last compaction through the proxy.
   */
  get(id: string, req: CachedRange): object | undefined {
    const rev = toNumber(req.revision);
    if (rev > 0 && rev < this.compactedRev) {
      this.entries.delete(id);
      throw Errors.compacted;
    }
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    // most recently used last
    this.entries.delete(id);
    this.entries.set(id, e);
    return e.response;
  }

  add(id: string, req: CachedRange, response: object): void {
    const revision = toNumber(req.revision);
    if (revision !== 0 && revision <= this.compactedRev) return;
    this.entries.delete(id);
    this.entries.set(id, { response, key: req.key, end: req.range_end ?? Buffer.alloc(0), revision });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** A write to [key, end) happened: answers that may include it go. */
  invalidate(key: Buffer, end: Buffer | undefined): void {
    for (const [id, e] of this.entries) {
      if (e.revision === 0 && overlaps(e.key, e.end, key, end ?? Buffer.alloc(0))) this.entries.delete(id);
    }
  }

  compact(revision: number): void {
    if (revision > this.compactedRev) this.compactedRev = revision;
  }
}

/** The exclusive upper bound of a range, undefined for "to the end of the keyspace". */
function upper(key: Buffer, end: Buffer): Buffer | undefined {
  if (end.length === 0) return Buffer.concat([key, Buffer.of(0)]); // the key alone
  if (end.length === 1 && end[0] === 0) return undefined;
  return end;
}

function overlaps(k1: Buffer, e1: Buffer, k2: Buffer, e2: Buffer): boolean {
  const u1 = upper(k1, e1);
  const u2 = upper(k2, e2);
  return (u2 === undefined || Buffer.compare(k1, u2) < 0) && (u1 === undefined || Buffer.compare(k2, u1) < 0);
}
