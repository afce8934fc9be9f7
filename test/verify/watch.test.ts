import { describe, expect, it } from 'vitest';
import { Reference } from '../../verify/reference.js';
import { validateWatch } from '../../verify/watch.js';
import type { WatchEvent, WatchSession } from '../../verify/history.js';
import { compacted, created, delEvent, events, kv, progress, putEvent, session } from './builders.js';

// The reference history used by every case:
//   2: PUT a=1        3: PUT b=2        4: PUT a=3 and PUT b=4 (one txn)
//   5: DELETE a       6: PUT a=5 (recreated)
const a2 = kv('g/a', '1', 2, 2, 1);
const b3 = kv('g/b', '2', 3, 3, 1);
const a4 = kv('g/a', '3', 2, 4, 2);
const b4 = kv('g/b', '4', 3, 4, 2);
const a6 = kv('g/a', '5', 6, 6, 1);
const history: WatchEvent[][] = [[putEvent(a2)], [putEvent(b3)], [putEvent(a4, a2), putEvent(b4, b3)], [delEvent('g/a', 5, a4)], [putEvent(a6)]];
const byRev = new Map<number, WatchEvent[]>(history.map((evs, i) => [i + 2, evs]));
const ref = Reference.fromEvents(byRev, 6);

const noPrev = (evs: WatchEvent[]): WatchEvent[] => evs.map((e) => ({ ...e, prevKv: null }));
const rev = (r: number): WatchEvent[] => noPrev(byRev.get(r)!);
const prefix = { key: 'g/', end: 'g0' };

const kinds = (s: WatchSession, compactions = [] as { time: number; revision: number; ok: boolean }[]): string[] =>
  validateWatch(s, ref, compactions).map((a) => a.kind);

describe('watch validators', () => {
  it('accept a correct watch from a past revision with a bookmark', () => {
    const s = session(1, { ...prefix, startRevision: 3 }, [created(6), events(rev(3)), events(rev(4)), events([...rev(5), ...rev(6)]), progress(6)]);
    expect(kinds(s)).toEqual([]);
  });

  it('accept a watch from now that starts after the created revision', () => {
    const s = session(1, { ...prefix, startRevision: 0 }, [created(4), events(rev(5)), events(rev(6))]);
    expect(kinds(s)).toEqual([]);
  });

  it('reject a gap (unreliable)', () => {
    const s = session(1, { ...prefix, startRevision: 2 }, [created(6), events(rev(2)), events(rev(4)), events(rev(5))]);
    expect(kinds(s)).toContain('watch-reliable');
  });

  it('reject a duplicate event', () => {
    const s = session(1, { ...prefix, startRevision: 5 }, [created(6), events(rev(5)), events(rev(5)), events(rev(6))]);
    expect(kinds(s)).toContain('watch-unique');
  });

  it('reject reordered events', () => {
    const s = session(1, { ...prefix, startRevision: 5 }, [created(6), events(rev(6)), events(rev(5))]);
    expect(kinds(s)).toContain('watch-ordered');
  });

  it('reject a revision split across responses (not atomic)', () => {
    const [x, y] = rev(4) as [WatchEvent, WatchEvent];
    const s = session(1, { ...prefix, startRevision: 4 }, [created(6), events([x]), events([y])]);
    expect(kinds(s)).toContain('watch-atomic');
  });

  it('reject a progress notification older than a delivered event', () => {
    const s = session(1, { ...prefix, startRevision: 2 }, [created(6), events(rev(2)), events(rev(3)), progress(2)]);
    expect(kinds(s)).toContain('watch-bookmarkable');
  });

  it('reject an event older than a progress notification before it', () => {
    const s = session(1, { ...prefix, startRevision: 2 }, [created(6), events(rev(2)), progress(4), events(rev(3))]);
    expect(kinds(s)).toContain('watch-bookmarkable');
  });

  it('reject a bookmark that skips events (promises revisions it did not deliver)', () => {
    const s = session(1, { ...prefix, startRevision: 2 }, [created(6), events(rev(2)), progress(4)]);
    expect(kinds(s)).toContain('watch-reliable');
  });

  it('reject a watch that does not start at its start revision (not resumable)', () => {
    const s = session(1, { ...prefix, startRevision: 3 }, [created(6), events(rev(4)), events(rev(5))]);
    expect(kinds(s)).toContain('watch-resumable');
  });

  it('reject a watch on a future revision that delivers older events', () => {
    const s = session(1, { ...prefix, startRevision: 6 }, [created(4), events(rev(5)), events(rev(6))]);
    expect(kinds(s)).toContain('watch-resumable');
  });

  it('check prev_kv', () => {
    const good = session(1, { ...prefix, startRevision: 4, prevKv: true }, [created(6), events(byRev.get(4)!), events(byRev.get(5)!)]);
    expect(kinds(good)).toEqual([]);
    const wrong = session(2, { ...prefix, startRevision: 4, prevKv: true }, [created(6), events([putEvent(a4, a2), putEvent(b4, a2)])]);
    expect(kinds(wrong)).toContain('watch-prev-kv');
    const missing = session(3, { ...prefix, startRevision: 5, prevKv: true }, [created(6), events(rev(5))]);
    expect(kinds(missing)).toContain('watch-prev-kv');
    // missing prev_kv is fine once the previous revision was compacted away
    expect(kinds(missing, [{ time: 0, revision: 5, ok: true }])).toEqual([]);
  });

  it('reject a PUT whose create revision or version is wrong (is-create)', () => {
    const s = session(1, { ...prefix, startRevision: 6 }, [created(6), events([putEvent(kv('g/a', '5', 2, 6, 3))])]);
    expect(kinds(s)).toContain('watch-is-create');
  });

  it('check key and type filters', () => {
    const onlyA = session(1, { key: 'g/a', startRevision: 2 }, [created(6), events(rev(2)), events([rev(4)[0]!]), events(rev(5)), events(rev(6))]);
    expect(kinds(onlyA)).toEqual([]);
    const leaked = session(2, { key: 'g/a', startRevision: 2 }, [created(6), events(rev(2)), events(rev(3))]);
    expect(kinds(leaked)).toContain('watch-filter');
    const noDelete = session(3, { ...prefix, startRevision: 5, filters: ['NODELETE'] }, [created(6), events(rev(5)), events(rev(6))]);
    expect(kinds(noDelete)).toContain('watch-filter');
    const filtered = session(4, { ...prefix, startRevision: 5, filters: ['NODELETE'] }, [created(6), events(rev(6))]);
    expect(kinds(filtered)).toEqual([]);
  });

  it('accept compaction only for a watch that starts below a real compaction', () => {
    const s = session(1, { ...prefix, startRevision: 2 }, [created(6), compacted(4)]);
    expect(kinds(s, [{ time: 0, revision: 4, ok: true }])).toEqual([]);
    expect(kinds(s)).toContain('watch-compacted');
    const late = session(2, { ...prefix, startRevision: 5 }, [created(6), compacted(4)]);
    expect(kinds(late, [{ time: 0, revision: 4, ok: true }])).toContain('watch-compacted');
    // a watch from now (start = created + 1 = 4) may be compacted later, e.g. after a snapshot restore
    const fromNow = session(3, { ...prefix, startRevision: 0 }, [created(3), compacted(5)]);
    expect(kinds(fromNow, [{ time: 0, revision: 5, ok: true }])).toEqual([]);
    const fromNowTooEarly = session(4, { ...prefix, startRevision: 0 }, [created(5), compacted(5)]);
    expect(kinds(fromNowTooEarly, [{ time: 0, revision: 5, ok: true }])).toContain('watch-compacted');
  });

  it('reject a missing created response and events after a cancel', () => {
    const s = session(1, { ...prefix, startRevision: 5 }, [events(rev(5))]);
    expect(kinds(s)).toContain('watch-created');
    const after = session(2, { ...prefix, startRevision: 2 }, [created(6), compacted(3), events(rev(5))]);
    expect(kinds(after, [{ time: 0, revision: 3, ok: true }])).toContain('watch-created');
  });
});
