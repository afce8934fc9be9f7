// The reference history: every revision's events, as delivered to the recorder
// watches (watch everything from revision 1, resumed at last+1 on another member
// after a failure; compaction never passes them, see run.ts). Replaying it gives
// the store at every revision, which is what the watch validators, the
// serializable-read check and the patching of failed requests compare against.
//
// The reference comes from the system under test, so it is cross-checked against
// the requests clients saw acknowledged: every acknowledged write must appear at
// its revision with exactly its effects (else: lost write), every revision must be
// explained by some request (else: phantom write), and the recorders must agree.

import { anomaly, type Anomaly } from './anomaly.js';
import { bumpsRevision, isSerializableRead, type KeyValue, type Operation, type WatchEvent, type WatchSession } from './history.js';
import { describeEvents, execute, sameEventSet, sameEvents, sameKv, type StoreView } from './executor.js';
import { describeOp, inRange } from './model.js';

interface KeyHistory {
  revs: number[];
  /** null = deleted at that revision */
  kvs: (KeyValue | null)[];
}

export class Reference {
  /** revision -> events, for every revision 2..lastRevision */
  readonly events = new Map<number, WatchEvent[]>();
  private readonly keys = new Map<string, KeyHistory>();
  private sortedKeys: string[] = [];

  /** the highest revision the reference is complete up to */
  lastRevision = 1;

  static fromEvents(byRevision: Map<number, WatchEvent[]>, lastRevision: number): Reference {
    const ref = new Reference();
    ref.lastRevision = lastRevision;
    for (let rev = 2; rev <= lastRevision; rev++) {
      const evs = byRevision.get(rev) ?? [];
      ref.events.set(rev, evs);
      for (const e of evs) {
        let h = ref.keys.get(e.kv.key);
        if (h === undefined) ref.keys.set(e.kv.key, (h = { revs: [], kvs: [] }));
        const value = e.type === 'PUT' ? e.kv : null;
        if (h.revs[h.revs.length - 1] === rev) h.kvs[h.kvs.length - 1] = value;
        else {
          h.revs.push(rev);
          h.kvs.push(value);
        }
      }
    }
    ref.sortedKeys = [...ref.keys.keys()].sort();
    return ref;
  }

  /** The key's kv in the store at `rev`. */
  keyAt(key: string, rev: number): KeyValue | null {
    const h = this.keys.get(key);
    if (h === undefined) return null;
    let lo = 0;
    let hi = h.revs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (h.revs[mid]! <= rev) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? null : h.kvs[found]!;
  }

  view(rev: number): StoreView {
    return {
      get: (key) => this.keyAt(key, rev),
      keysIn: (key, end) => this.sortedKeys.filter((k) => inRange(k, key, end) && this.keyAt(k, rev) !== null),
    };
  }
}

export interface ReferenceBuild {
  reference: Reference;
  anomalies: Anomaly[];
  /** false when the recorders lost coverage (e.g. compacted away): reference checks are skipped */
  complete: boolean;
}

/**
 * Merges the recorder sessions into one reference. `upTo` is the revision the
 * reference must reach (the final read's revision).
 */
export function buildReference(sessions: readonly WatchSession[], upTo: number): ReferenceBuild {
  const anomalies: Anomaly[] = [];
  const byRevision = new Map<number, { events: WatchEvent[]; session: number }>();
  // Coverage: revisions each session is known to have delivered in full.
  const covered: [number, number][] = [];
  for (const s of sessions.filter((w) => w.recorder)) {
    let last = s.request.startRevision - 1;
    const mine = new Map<number, WatchEvent[]>();
    for (const r of s.responses) {
      if (r.compactRevision > 0 || r.canceled) break;
      for (const e of r.events) {
        const rev = e.kv.modRevision;
        let l = mine.get(rev);
        if (l === undefined) mine.set(rev, (l = []));
        l.push(e);
        last = Math.max(last, rev);
      }
      if (r.progress) last = Math.max(last, r.headerRevision);
    }
    if (last >= s.request.startRevision) covered.push([s.request.startRevision, last]);
    for (const [rev, events] of mine) {
      const prior = byRevision.get(rev);
      if (prior === undefined) {
        byRevision.set(rev, { events, session: s.id });
      } else if (!sameEvents(prior.events, events)) {
        anomalies.push(
          anomaly(
            'reference-conflict',
            `recorders disagree on revision ${rev}: ${describeEvents(prior.events)} vs ${describeEvents(events)}`,
            [],
            [prior.session, s.id],
          ),
        );
      }
    }
  }
  // The contiguous prefix of revisions covered from the start.
  covered.sort((a, b) => a[0] - b[0]);
  let reach = 1;
  for (const [from, to] of covered) {
    if (from > reach + 1) break;
    reach = Math.max(reach, to);
  }
  const last = reach;
  for (let rev = 2; rev <= last; rev++) {
    if (!byRevision.has(rev)) {
      anomalies.push(anomaly('reference-gap', `revision ${rev} was never delivered to any recorder watch, though later revisions were`));
    }
  }
  const events = new Map<number, WatchEvent[]>();
  for (const [rev, v] of byRevision) events.set(rev, v.events);
  return { reference: Reference.fromEvents(events, last), anomalies, complete: reach >= upTo };
}

// --- checks of the client history against the reference ---------------------

function putValues(op: Operation): string[] {
  const i = op.input;
  if (i.type === 'put') return [i.value];
  if (i.type === 'txn') return [...i.success, ...i.failure].flatMap((o) => (o.type === 'put' ? [o.value] : []));
  return [];
}

function resultsEqual(a: Operation['output'], exec: ReturnType<typeof execute>): boolean {
  if (a === null) return true;
  switch (a.type) {
    case 'range': {
      const r = exec.results[0];
      return r !== undefined && r.type === 'range' && r.count === a.count && r.kvs.length === a.kvs.length && r.kvs.every((kv, i) => sameKv(kv, a.kvs[i]!));
    }
    case 'delete': {
      const r = exec.results[0];
      return r !== undefined && r.type === 'delete' && r.deleted === a.deleted;
    }
    case 'txn':
      if (a.succeeded !== exec.succeeded) return false;
      if (a.results === null) return true;
      return a.results.every((r, i) => {
        const e = exec.results[i];
        if (e === undefined || e.type !== r.type) return false;
        if (r.type === 'range' && e.type === 'range') return r.count === e.count && r.kvs.length === e.kvs.length && r.kvs.every((kv, j) => sameKv(kv, e.kvs[j]!));
        if (r.type === 'delete' && e.type === 'delete') return r.deleted === e.deleted;
        return true;
      });
    default:
      return true;
  }
}

export interface ReferenceCheck {
  anomalies: Anomaly[];
  /** outcomes of failed requests learned from the reference: op id -> output, or null = not applied */
  patches: Map<number, Operation['output'] | 'not-applied'>;
}

/** Checks every acknowledged response against the reference, explains every
 * revision, and learns the fate of failed writes. */
export function checkAgainstReference(ops: readonly Operation[], ref: Reference): ReferenceCheck {
  const anomalies: Anomaly[] = [];
  const patches = new Map<number, Operation['output'] | 'not-applied'>();
  const explained = new Set<number>();

  for (const op of ops) {
    const out = op.output;
    if (out === null || out.revision > ref.lastRevision) continue;
    const R = out.revision;
    const bumps = bumpsRevision(op.input, out);
    let ok: boolean;
    let detail = '';
    if (bumps === true || (bumps === 'maybe' && (ref.events.get(R)?.length ?? 0) > 0)) {
      const exec = execute(ref.view(R - 1), op.input, R);
      const actual = ref.events.get(R) ?? [];
      ok = sameEventSet(exec.events, actual) && resultsEqual(out, exec);
      if (ok) {
        explained.add(R);
        if (!sameEvents(exec.events, actual)) anomalies.push(eventOrder(op, R, exec.events, actual));
      } else if (bumps === 'maybe') {
        // a revoke that deleted nothing sees the store at R instead
        ok = execute(ref.view(R), op.input, R + 1).events.length === 0;
      }
      if (!ok) detail = `expected events ${describeEvents(exec.events)} at revision ${R}, history has ${describeEvents(actual)}`;
    } else {
      const exec = execute(ref.view(R), op.input, R + 1);
      ok = exec.events.length === 0 && resultsEqual(out, exec);
      if (!ok) detail = `at revision ${R} the history gives ${describeOpResult(exec)}`;
    }
    if (!ok) {
      const kind = isSerializableRead(op)
        ? 'stale-serializable-read'
        : op.input.type === 'range'
          ? 'stale-read'
          : bumps === true
            ? 'lost-write'
            : 'reference-conflict';
      anomalies.push(anomaly(kind, `${describeOp(op)}: ${detail}`, [op.id]));
    }
  }

  // Explain the remaining revisions by failed requests. Unique put values make
  // puts identifiable; a deletion is given to the earliest-called failed request
  // whose effect at that revision is exactly those events (whichever failed
  // request really did it, the earliest call is the most permissive choice).
  const writerOf = new Map<string, Operation>();
  for (const op of ops) for (const v of putValues(op)) writerOf.set(v, op);
  const unknownDeleters = ops
    .filter((op) => op.output === null && (op.input.type === 'delete' || op.input.type === 'txn' || op.input.type === 'leaseRevoke'))
    .sort((a, b) => a.call - b.call);
  const effect = (op: Operation, rev: number): ReturnType<typeof execute> => execute(ref.view(rev - 1), op.input, rev);
  for (let rev = 2; rev <= ref.lastRevision; rev++) {
    if (explained.has(rev)) continue;
    const events = ref.events.get(rev) ?? [];
    if (events.length === 0) continue; // reported as a reference gap
    const put = events.find((e) => e.type === 'PUT');
    if (put !== undefined) {
      const writer = writerOf.get(put.kv.value);
      if (writer === undefined) {
        anomalies.push(anomaly('phantom-write', `revision ${rev} ${describeEvents(events)} was written by no client request`));
      } else if (writer.output !== null) {
        anomalies.push(anomaly('reference-conflict', `revision ${rev} ${describeEvents(events)} holds the value of ${describeOp(writer)}`, [writer.id]));
      } else if (patches.has(writer.id)) {
        anomalies.push(anomaly('duplicate-revision', `${describeOp(writer)} appears at two revisions, the second is ${rev}`, [writer.id]));
      } else {
        const exec = effect(writer, rev);
        if (sameEventSet(exec.events, events) && !sameEvents(exec.events, events)) {
          anomalies.push(eventOrder(writer, rev, exec.events, events));
        } else if (!sameEvents(exec.events, events)) {
          anomalies.push(anomaly('reference-conflict', `${describeOp(writer)} at revision ${rev} should give ${describeEvents(exec.events)}, history has ${describeEvents(events)}`, [writer.id]));
        }
        patches.set(writer.id, patchedOutput(writer, rev, exec));
      }
      continue;
    }
    const deleter = unknownDeleters.find((op) => !patches.has(op.id) && sameEventSet(effect(op, rev).events, events));
    if (deleter === undefined) {
      anomalies.push(anomaly('phantom-write', `revision ${rev} ${describeEvents(events)} was deleted by no client request`));
    } else {
      const exec = effect(deleter, rev);
      if (!sameEvents(exec.events, events)) anomalies.push(eventOrder(deleter, rev, exec.events, events));
      patches.set(deleter.id, patchedOutput(deleter, rev, exec));
    }
  }
  // A failed put, delete, or txn with puts (and a read-only failure branch)
  // that left no trace was not applied, or, for a delete, deleted nothing:
  // either way it had no effect.
  for (const op of ops) {
    if (op.output !== null || patches.has(op.id)) continue;
    const i = op.input;
    if (i.type === 'put' || i.type === 'delete' || (i.type === 'txn' && i.success.some((o) => o.type === 'put') && i.failure.every((o) => o.type === 'range'))) {
      patches.set(op.id, 'not-applied');
    }
  }
  return { anomalies, patches };
}

/** etcd orders one revision's events deterministically: txn ops in request
 * order, range deletes and lease revokes by key. Watchers see that order. */
function eventOrder(op: Operation, rev: number, expected: readonly WatchEvent[], actual: readonly WatchEvent[]): Anomaly {
  return anomaly('event-order', `${describeOp(op)}: revision ${rev} has events ${describeEvents(actual)}, etcd orders them ${describeEvents(expected)}`, [op.id]);
}

function describeOpResult(exec: ReturnType<typeof execute>): string {
  const parts = exec.results.map((r) =>
    r.type === 'range' ? `[${r.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`).join(', ')}]` : r.type === 'delete' ? `deleted=${r.deleted}` : 'put',
  );
  return `${exec.succeeded ? '' : 'failed '}${parts.join(' ')}${exec.events.length > 0 ? ' with events ' + describeEvents(exec.events) : ''}`;
}

function patchedOutput(op: Operation, rev: number, exec: ReturnType<typeof execute>): Operation['output'] {
  const i = op.input;
  switch (i.type) {
    case 'put':
      return { type: 'put', revision: rev };
    case 'delete': {
      const r = exec.results[0];
      return { type: 'delete', revision: rev, deleted: r?.type === 'delete' ? r.deleted : 0 };
    }
    case 'leaseRevoke':
      return { type: 'leaseRevoke', revision: rev };
    default:
      // the branch is what the compares give at rev-1; range results were not observed
      return { type: 'txn', revision: rev, succeeded: exec.succeeded, results: null };
  }
}
