// What the checkers report: one anomaly per violated guarantee, naming the
// operations and watch sessions that show it.

export type AnomalyKind =
  | 'nonlinearizable'
  | 'client-revision-regressed'
  | 'revision-order'
  | 'duplicate-revision'
  | 'lost-write'
  | 'phantom-write'
  | 'reference-gap'
  | 'reference-conflict'
  | 'event-order'
  | 'stale-read'
  | 'stale-serializable-read'
  | 'final-state'
  | 'watch-created'
  | 'watch-ordered'
  | 'watch-unique'
  | 'watch-atomic'
  | 'watch-bookmarkable'
  | 'watch-reliable'
  | 'watch-resumable'
  | 'watch-prev-kv'
  | 'watch-is-create'
  | 'watch-filter'
  | 'watch-compacted';

export interface Anomaly {
  kind: AnomalyKind;
  message: string;
  /** ids of the operations involved */
  ops: number[];
  /** ids of the watch sessions involved */
  watches: number[];
}

export function anomaly(kind: AnomalyKind, message: string, ops: number[] = [], watches: number[] = []): Anomaly {
  return { kind, message, ops, watches };
}

/** Keeps reports readable when one bug shows up thousands of times. */
export const MAX_PER_KIND = 20;

export function capPerKind(list: Anomaly[]): Anomaly[] {
  const counts = new Map<AnomalyKind, number>();
  const out: Anomaly[] = [];
  for (const a of list) {
    const n = (counts.get(a.kind) ?? 0) + 1;
    counts.set(a.kind, n);
    if (n <= MAX_PER_KIND) out.push(a);
  }
  for (const [kind, n] of counts) {
    if (n > MAX_PER_KIND) out.push(anomaly(kind, `... and ${n - MAX_PER_KIND} more ${kind} anomalies`));
  }
  return out;
}
