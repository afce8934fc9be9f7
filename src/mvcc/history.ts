// The most recent events, kept in memory (bounded) so that a watcher that fell a
// little behind (a stream that pushed back for a moment, a watch starting a few
// revisions back) catches up without reading LevelDB. Events here carry their
// prevKv from the write path.

import type { Event } from './types.js';

const MAX_EVENTS = 16_384;
const MAX_BYTES = 32 * 1024 * 1024;

interface RevisionEvents {
  rev: number;
  events: Event[];
  bytes: number;
}

export class RecentHistory {
  private groups: RevisionEvents[] = [];
  private head = 0;
  private events = 0;
  private bytes = 0;
  /** every event with revision >= startRev (and <= the last notified one) is held here */
  startRev: number;

  constructor(nextRev: number) {
    this.startRev = nextRev;
  }

  /** Appends one commit's events (revision order). */
  append(events: Event[]): void {
    let i = 0;
    while (i < events.length) {
      const rev = events[i]!.kv.modRevision;
      let j = i;
      let bytes = 0;
      while (j < events.length && events[j]!.kv.modRevision === rev) {
        bytes += eventBytes(events[j]!);
        j++;
      }
      this.groups.push({ rev, events: events.slice(i, j), bytes });
      this.events += j - i;
      this.bytes += bytes;
      i = j;
    }
    while (this.events > MAX_EVENTS || this.bytes > MAX_BYTES) {
      const g = this.groups[this.head]!;
      this.groups[this.head++] = undefined as unknown as RevisionEvents;
      this.events -= g.events.length;
      this.bytes -= g.bytes;
      this.startRev = g.rev + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.groups.length) {
      this.groups = this.groups.slice(this.head);
      this.head = 0;
    }
  }

  /** Events with revision in [from, to]; `from` must be >= startRev. */
  range(from: number, to: number): Event[] {
    let lo = this.head;
    let hi = this.groups.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.groups[mid]!.rev < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Event[] = [];
    for (let i = lo; i < this.groups.length && this.groups[i]!.rev <= to; i++) out.push(...this.groups[i]!.events);
    return out;
  }
}

function eventBytes(e: Event): number {
  const p = e.prevKv;
  return 96 + e.kv.key.length + e.kv.value.length + (p ? 64 + p.key.length + p.value.length : 0);
}
