// The most recent events, kept in memory (bounded) so that a watcher that fell a
// little behind (a stream that pushed back for a moment, a watch starting a few
// revisions back) catches up without reading LevelDB. Events here carry their
// prevKv from the write path.

import type { Event } from './types.js';

const MAX_EVENTS = 16_384;
const MAX_BYTES = 32 * 1024 * 1024;

export class RecentHistory {
  // parallel arrays from `head` on, in revision order
  private events: Event[] = [];
  private revs: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  /** every event with revision >= startRev (and <= the last notified one) is held here */
  startRev: number;

  constructor(nextRev: number) {
    this.startRev = nextRev;
  }

  /** Appends one commit's events (revision order); drops whole old revisions past the bounds. */
  append(events: Event[]): void {
    for (const ev of events) {
      const size = eventBytes(ev);
      this.events.push(ev);
      this.revs.push(ev.kv.modRevision);
      this.sizes.push(size);
      this.bytes += size;
    }
    while (this.events.length - this.head > MAX_EVENTS || this.bytes > MAX_BYTES) {
      const rev = this.revs[this.head]!;
      while (this.head < this.events.length && this.revs[this.head] === rev) {
        this.bytes -= this.sizes[this.head]!;
        this.head++;
      }
      this.startRev = rev + 1;
    }
    if (this.head > 4096 && this.head * 2 > this.events.length) {
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
    return this.events.slice(lo, end);
  }
}

function eventBytes(e: Event): number {
  const p = e.prevKv;
  return 96 + e.kv.key.length + e.kv.value.length + (p ? 64 + p.key.length + p.value.length : 0);
}
