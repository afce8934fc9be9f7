// The most recent events, kept in memory so that a watcher that fell a little behind (a
// stream that pushed back for a moment, a watch starting a few revisions back) catches
// up without reading LevelDB. Events here carry their prevKv from the write path.
//
// It also holds what LevelDB does not have yet: watchers are told of an apply batch
// before its write lands, so events past the landed revision are nowhere else, and
// trim() never drops them. Landed events are kept up to a bound in bytes (a count bound
// holds 16 k tiny events or gigabytes of big ones alike), or not at all while nobody
// watches: a watch created later at a past revision reads LevelDB, as etcd's unsynced
// watchers read bbolt.

import { retainedBytes } from './retained.js';
import type { Event } from './types.js';

/** Bound of the landed events kept while watchers exist, in estimated heap bytes (eventBytes). */
export const HISTORY_BYTES = 32 * 1024 * 1024;

/**
 * Heap bytes an event costs besides the buffers it keeps (retainedBytes: its record,
 * and its prevKv's), measured with --expose-gc on events shaped as the write path makes
 * them (Node 20): the event, its KeyValue, the key and value views, and this ring's
 * slots take ~340 bytes; a prevKv (its KeyValue and value view; the key is shared) ~170 more.
 */
const EVENT_OVERHEAD = 340;
const PREV_KV_OVERHEAD = 170;

export class RecentHistory {
  // parallel arrays from `head` on, in revision order; slots before `head` are cleared,
  // so a dropped event's values are garbage at once, not when the arrays are next compacted
  private events: Array<Event | undefined> = [];
  private revs: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  /**
   * Every event with revision >= startRev (and <= the last notified one) is held here;
   * startRev never passes the landed revision + 1, so what is not here is in LevelDB.
   */
  startRev: number;

  constructor(nextRev: number) {
    this.startRev = nextRev;
  }

  /** Appends one commit's events (revision order). */
  append(events: Event[]): void {
    for (const ev of events) {
      const size = eventBytes(ev);
      this.events.push(ev);
      this.revs.push(ev.kv.modRevision);
      this.sizes.push(size);
      this.bytes += size;
    }
  }

  /**
   * Drops whole old revisions while the ring holds more than `keepBytes`, but none past
   * `landed` (the highest revision LevelDB has): those are only here.
   */
  trim(landed: number, keepBytes: number): void {
    while (this.bytes > keepBytes && this.head < this.revs.length && this.revs[this.head]! <= landed) {
      const rev = this.revs[this.head]!;
      while (this.head < this.events.length && this.revs[this.head] === rev) {
        this.bytes -= this.sizes[this.head]!;
        this.events[this.head] = undefined;
        this.head++;
      }
      this.startRev = rev + 1;
    }
    if (this.head === this.events.length && this.head > 0) {
      this.events = [];
      this.revs = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.revs = this.revs.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  /** Events with revision in [from, to]; `from` must be >= startRev. */
  range(from: number, to: number): Event[] {
    let lo = this.head;
    let hi = this.revs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.revs[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < this.revs.length && this.revs[end]! <= to) end++;
    return this.events.slice(lo, end) as Event[]; // at or after head: all set
  }
}

function eventBytes(e: Event): number {
  const p = e.prevKv;
  return p ? EVENT_OVERHEAD + PREV_KV_OVERHEAD + retainedBytes(e.kv.key, e.kv.value, p.key, p.value) : EVENT_OVERHEAD + retainedBytes(e.kv.key, e.kv.value);
}
