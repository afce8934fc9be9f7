// A user's merged key permissions (etcd's unifiedRangePermissions): every READ or WRITE
// interval of every role the user has, merged into sorted disjoint intervals so that a
// check is one binary search. Rebuilt whenever users or roles change, never per request.

/** A half-open key interval [begin, end); end undefined means "to the end of the keyspace". */
interface Interval {
  readonly begin: Buffer;
  readonly end: Buffer | undefined;
}

export const PermType = { READ: 0, WRITE: 1, READWRITE: 2 } as const;
export type PermType = (typeof PermType)[keyof typeof PermType];

export interface Permission {
  readonly permType: PermType;
  readonly key: Buffer;
  /** empty: the key alone; "\0": every key from `key` on; otherwise [key, rangeEnd) */
  readonly rangeEnd: Buffer;
}

const ZERO = Buffer.of(0);

/** The interval a permission (or a request's key and range end) covers, as etcd reads them. */
function intervalOf(key: Buffer, rangeEnd: Buffer): Interval {
  if (rangeEnd.length === 0) return { begin: key, end: Buffer.concat([key, ZERO]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { begin: key, end: undefined };
  return { begin: key, end: rangeEnd };
}

/** end a is before end b (undefined, the end of the keyspace, is after everything) */
function endBefore(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (a === undefined) return false;
  if (b === undefined) return true;
  return Buffer.compare(a, b) < 0;
}

/** Sorted, disjoint, non-adjacent intervals covering the union of the given ones. */
class IntervalSet {
  private readonly ivs: Interval[];

  constructor(input: Interval[]) {
    const sorted = [...input].sort((a, b) => Buffer.compare(a.begin, b.begin));
    const merged: Interval[] = [];
    for (const iv of sorted) {
      const last = merged[merged.length - 1];
      // overlapping or touching: [a, b) and [b, c) cover [a, c)
      if (last && (last.end === undefined || Buffer.compare(iv.begin, last.end) <= 0)) {
        if (endBefore(last.end, iv.end)) merged[merged.length - 1] = { begin: last.begin, end: iv.end };
      } else {
        merged.push(iv);
      }
    }
    this.ivs = merged;
  }

  /** The interval holding `key`, if any. */
  private holding(key: Buffer): Interval | undefined {
    let lo = 0;
    let hi = this.ivs.length - 1;
    let found: Interval | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const iv = this.ivs[mid]!;
      if (Buffer.compare(iv.begin, key) <= 0) {
        found = iv;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found === undefined || (found.end !== undefined && Buffer.compare(key, found.end) >= 0)) return undefined;
    return found;
  }

  has(key: Buffer): boolean {
    return this.holding(key) !== undefined;
  }

  /** The whole of [begin, end) is covered (merged intervals: one of them must hold it all). */
  covers(iv: Interval): boolean {
    const h = this.holding(iv.begin);
    return h !== undefined && !endBefore(h.end, iv.end);
  }
}

export class RangePermissions {
  private readonly read: IntervalSet;
  private readonly write: IntervalSet;

  constructor(perms: Iterable<Permission>) {
    const read: Interval[] = [];
    const write: Interval[] = [];
    for (const p of perms) {
      const iv = intervalOf(p.key, p.rangeEnd);
      if (p.permType === PermType.READ || p.permType === PermType.READWRITE) read.push(iv);
      if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) write.push(iv);
    }
    this.read = new IntervalSet(read);
    this.write = new IntervalSet(write);
  }

  /**
   * A request on `key` alone (empty rangeEnd) or on [key, rangeEnd) ("\0": from key on)
   * is allowed when the user's intervals of that kind cover all of it.
   */
  permits(kind: 'read' | 'write', key: Buffer, rangeEnd: Buffer): boolean {
    const set = kind === 'read' ? this.read : this.write;
    if (rangeEnd.length === 0) return set.has(key);
    return set.covers(intervalOf(key, rangeEnd));
  }
}
