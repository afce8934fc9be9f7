// The recent-history ring watchers catch up from is bounded in bytes, not events, and
// never drops what LevelDB does not have yet.

import { describe, expect, it } from 'vitest';
import { HISTORY_BYTES, RecentHistory } from '../../src/mvcc/history.js';
import type { Event } from '../../src/mvcc/index.js';

/** An event as the store makes it: its key and value are views into one record of their own. */
const put = (rev: number, valueBytes: number): Event => {
  const record = Buffer.alloc(1 + valueBytes, 'k');
  return { type: 'put', kv: { key: record.subarray(0, 1), createRevision: 2, modRevision: rev, version: rev - 1, value: record.subarray(1), lease: 0n } };
};

describe('RecentHistory', () => {
  it('keeps many small events: a count bound would have dropped the oldest', () => {
    const h = new RecentHistory(2);
    for (let rev = 2; rev < 2 + 50_000; rev++) {
      h.append([put(rev, 8)]);
      h.trim(rev, HISTORY_BYTES);
    }
    expect(h.startRev).toBe(2);
    expect(h.range(2, 4).map((e) => e.kv.modRevision)).toEqual([2, 3, 4]);
  });

  it('drops whole old revisions once big events pass its byte bound', () => {
    const h = new RecentHistory(2);
    const valueBytes = 1024 * 1024;
    const revs = Math.ceil(HISTORY_BYTES / valueBytes) * 2;
    // two events per revision: a revision is never split
    for (let rev = 2; rev < 2 + revs; rev++) {
      h.append([put(rev, valueBytes), put(rev, valueBytes)]);
      h.trim(rev, HISTORY_BYTES);
    }
    const last = 1 + revs;
    const kept = h.range(h.startRev, last);
    expect(h.startRev).toBeGreaterThan(2);
    expect(kept.length).toBe((last - h.startRev + 1) * 2);
    expect(kept.length * valueBytes).toBeLessThanOrEqual(HISTORY_BYTES);
    // everything since startRev is still there, to the last revision
    expect(kept[kept.length - 1]!.kv.modRevision).toBe(last);
  });

  it('counts the whole buffer an event keeps, not the bytes it shows', () => {
    const h = new RecentHistory(2);
    // 8-byte values, each a view into a buffer of 1 MiB: the ring keeps the megabytes
    const bigViews = Math.ceil(HISTORY_BYTES / (1024 * 1024)) * 2;
    for (let rev = 2; rev < 2 + bigViews; rev++) {
      const held = Buffer.alloc(1024 * 1024);
      h.append([{ type: 'put', kv: { key: held.subarray(0, 1), createRevision: 2, modRevision: rev, version: 1, value: held.subarray(1, 9), lease: 0n } }]);
      h.trim(rev, HISTORY_BYTES);
    }
    const kept = h.range(h.startRev, 1 + bigViews);
    expect(h.startRev).toBeGreaterThan(2);
    expect(kept.length * 1024 * 1024).toBeLessThanOrEqual(HISTORY_BYTES);
  });

  it('keeps every revision past the landed one, however big: LevelDB does not have them yet', () => {
    const h = new RecentHistory(2);
    const valueBytes = 1024 * 1024;
    const revs = Math.ceil(HISTORY_BYTES / valueBytes) * 2;
    for (let rev = 2; rev < 2 + revs; rev++) {
      h.append([put(rev, valueBytes)]);
      h.trim(1, HISTORY_BYTES); // nothing has landed
    }
    expect(h.startRev).toBe(2);
    expect(h.range(2, 1 + revs)).toHaveLength(revs);
    // once half has landed, only landed revisions go, and only down to the bound
    const landed = 1 + revs / 2;
    h.trim(landed, 0);
    expect(h.startRev).toBe(landed + 1);
    expect(h.range(landed + 1, 1 + revs).map((e) => e.kv.modRevision)).toEqual(Array.from({ length: revs / 2 }, (_, i) => landed + 1 + i));
  });

  it('holds nothing landed at a bound of 0, and serves from where LevelDB stops', () => {
    const h = new RecentHistory(2);
    for (let rev = 2; rev < 12; rev++) h.append([put(rev, 100)]);
    h.trim(11, 0);
    expect(h.startRev).toBe(12);
    expect(h.range(12, 11)).toEqual([]);
    h.append([put(12, 100), put(12, 100)]);
    h.trim(11, 0);
    expect(h.startRev).toBe(12);
    expect(h.range(12, 12)).toHaveLength(2);
  });
});
