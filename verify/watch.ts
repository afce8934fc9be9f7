// Watch guarantees, as etcd documents them (api_guarantees.md) and its
// robustness suite validates them, checked for each recorded watch session
// against the reference history (reference.ts):
//
//   created      the first response is the `created` one; nothing follows a cancel
//   ordered      event revisions never decrease
//   unique       no (revision, key) event is delivered twice
//   atomic       one revision's events are never split across responses
//   bookmarkable a progress notification at P follows every event <= P and
//                precedes every event > P
//   reliable     no event is missing between the first and the last delivered
//   resumable    a watch from revision S starts at the first event >= S
//                (from 0: the first event > the created response's revision)
//   prev_kv      prev_kv is the key's kv at revision-1 (absent only if compacted)
//   is_create    a PUT's create revision/version say whether it created the key
//   filter       events match the watched range and the NOPUT/NODELETE filters
//   compacted    a watch is only compacted if it started below a real compaction

import { anomaly, type Anomaly } from './anomaly.js';
import type { Compaction, WatchEvent, WatchSession } from './history.js';
import { sameKv } from './executor.js';
import { inRange } from './model.js';
import type { Reference } from './reference.js';

function describeEvent(e: WatchEvent): string {
  return e.type === 'PUT'
    ? `PUT ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}(create ${e.kv.createRevision}, v${e.kv.version})`
    : `DELETE ${e.kv.key}@${e.kv.modRevision}`;
}

function wanted(s: WatchSession, e: WatchEvent): boolean {
  const r = s.request;
  if (!inRange(e.kv.key, r.key, r.end)) return false;
  if (e.type === 'PUT' && r.filters.includes('NOPUT')) return false;
  if (e.type === 'DELETE' && r.filters.includes('NODELETE')) return false;
  return true;
}

interface Delivered {
  event: WatchEvent;
  response: number;
  time: number;
}

export function validateWatch(s: WatchSession, ref: Reference | null, compactions: readonly Compaction[]): Anomaly[] {
  const out: Anomaly[] = [];
  const reported = new Set<Anomaly['kind']>();
  const fail = (kind: Anomaly['kind'], msg: string): void => {
    // one report per guarantee per watch: the first violation explains the rest
    if (reported.has(kind)) return;
    reported.add(kind);
    out.push(anomaly(kind, `watch ${s.id} (${describeRequest(s)}): ${msg}`, [], [s.id]));
  };
  const rs = s.responses;
  if (rs.length === 0) return out;
  const first = rs[0]!;
  if (!first.created) fail('watch-created', `the first response is not the created response`);
  const createdRev = first.headerRevision;
  const start = s.request.startRevision > 0 ? s.request.startRevision : createdRev + 1;

  // Flatten, stopping at the end of the watch.
  const delivered: Delivered[] = [];
  let compacted = 0;
  let ended = false;
  // highest revision delivered: by events, or vouched for by a bookmark
  let lastSeen = start - 1;
  let lastEvent = -1;
  let bookmark = -1;
  rs.forEach((r, i) => {
    if (ended && (r.events.length > 0 || r.progress)) {
      fail('watch-created', `response ${i} arrived after the watch was canceled`);
      return;
    }
    if (i > 0 && r.created) fail('watch-created', `response ${i} is a second created response`);
    if (r.compactRevision > 0) {
      compacted = r.compactRevision;
      if (!r.canceled) fail('watch-compacted', `compacted response without canceled`);
    }
    if (r.canceled) ended = true;
    for (const e of r.events) {
      const rev = e.kv.modRevision;
      if (bookmark >= 0 && rev <= bookmark) {
        fail('watch-bookmarkable', `event ${describeEvent(e)} arrived after a progress notification at ${bookmark}`);
      }
      delivered.push({ event: e, response: i, time: r.time });
      lastSeen = Math.max(lastSeen, rev);
      lastEvent = Math.max(lastEvent, rev);
    }
    if (r.progress && r.events.length === 0) {
      // Only delivered events count: a watch on a future revision may get a
      // notification below its start revision (etcd before 3.4.38 sends those).
      if (r.headerRevision < lastEvent) {
        fail('watch-bookmarkable', `progress notification at ${r.headerRevision} after an event at ${lastEvent}`);
      }
      bookmark = Math.max(bookmark, r.headerRevision);
    }
  });

  // A watch may be told it was compacted (also one from "now": a member that
  // restores a snapshot resyncs its watchers from the backend), but only if it
  // started below a compaction that was really requested.
  if (compacted > 0) {
    const real = compactions.some((c) => c.revision >= compacted);
    if (start >= compacted || !real) {
      fail('watch-compacted', `canceled as compacted at ${compacted}, but it started at ${start} and the highest compaction requested was ${compactions.reduce((m, c) => Math.max(m, c.revision), 0)}`);
    }
  }

  // ordered, unique, atomic, filter, prev_kv
  const seen = new Set<string>();
  const responseOf = new Map<number, number>();
  for (let i = 0; i < delivered.length; i++) {
    const { event: e, response } = delivered[i]!;
    const rev = e.kv.modRevision;
    if (i > 0 && rev < delivered[i - 1]!.event.kv.modRevision) {
      fail('watch-ordered', `${describeEvent(e)} after ${describeEvent(delivered[i - 1]!.event)}`);
    }
    const id = `${rev}|${e.kv.key}`;
    if (seen.has(id)) fail('watch-unique', `${describeEvent(e)} delivered twice`);
    seen.add(id);
    const r0 = responseOf.get(rev);
    if (r0 === undefined) responseOf.set(rev, response);
    else if (r0 !== response) fail('watch-atomic', `revision ${rev} split across responses ${r0} and ${response}`);
    if (!wanted(s, e)) fail('watch-filter', `${describeEvent(e)} does not match the watch`);
    if (!s.request.prevKv && e.prevKv !== null) fail('watch-prev-kv', `${describeEvent(e)} carries prev_kv though none was asked for`);
    if (s.request.prevKv && ref !== null && rev <= ref.lastRevision) {
      const expected = ref.keyAt(e.kv.key, rev - 1);
      if (e.prevKv === null) {
        const compactedAway = compactions.some((c) => c.revision > rev - 1 && c.time <= delivered[i]!.time);
        if (expected !== null && !compactedAway) fail('watch-prev-kv', `${describeEvent(e)} lacks prev_kv ${expected.key}=${expected.value}@${expected.modRevision}`);
      } else if (!sameKv(e.prevKv, expected)) {
        fail('watch-prev-kv', `${describeEvent(e)} has prev_kv ${e.prevKv.value}@${e.prevKv.modRevision}, history has ${expected === null ? 'no key' : `${expected.value}@${expected.modRevision}`}`);
      }
    }
  }

  // reliable and resumable: the delivered events are exactly the history's
  // matching events from `start` to the last revision the watch vouched for.
  if (ref === null) return out;
  const upTo = Math.min(Math.max(lastSeen, bookmark), ref.lastRevision);
  const expected: WatchEvent[] = [];
  for (let rev = start; rev <= upTo; rev++) for (const e of ref.events.get(rev) ?? []) if (wanted(s, e)) expected.push(e);
  const got = delivered.filter((d) => d.event.kv.modRevision <= upTo).map((d) => d.event);
  const n = Math.max(expected.length, got.length);
  for (let i = 0; i < n; i++) {
    const want = expected[i];
    const have = got[i];
    if (want !== undefined && have !== undefined && want.type === have.type && sameKv(want.kv, have.kv)) continue;
    const kind: Anomaly['kind'] =
      want !== undefined && have !== undefined && want.type === have.type && want.kv.key === have.kv.key && want.kv.modRevision === have.kv.modRevision
        ? want.kv.value === have.kv.value
          ? 'watch-is-create'
          : 'watch-reliable'
        : i === 0
          ? 'watch-resumable'
          : 'watch-reliable';
    const where = i === 0 ? `watching from ${start}, the first event` : `after ${describeEvent(got[i - 1] ?? expected[i - 1]!)}, the next event`;
    fail(kind, `${where} should be ${want === undefined ? 'none' : describeEvent(want)}, got ${have === undefined ? 'none' : describeEvent(have)}`);
    break;
  }
  return out;
}

export function describeRequest(s: WatchSession): string {
  const r = s.request;
  const opts = [
    r.startRevision > 0 ? `from ${r.startRevision}` : 'from now',
    r.prevKv ? 'prev_kv' : '',
    r.progressNotify ? 'progress_notify' : '',
    ...r.filters,
  ].filter((x) => x !== '');
  return `${r.key}${r.end ? '..' + JSON.stringify(r.end) : ''} ${opts.join(' ')} on ${s.endpoint}`;
}

export function validateWatches(sessions: readonly WatchSession[], ref: Reference | null, compactions: readonly Compaction[]): Anomaly[] {
  return sessions.flatMap((s) => validateWatch(s, ref, compactions));
}
