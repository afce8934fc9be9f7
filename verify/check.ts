// Runs every checker over a recorded history and gives one verdict.
//
// 1. Build the reference history from the recorder watches; check acknowledged
//    requests against it (lost and phantom writes, serializable reads) and learn
//    which failed writes were applied, and at which revision ("patching", as
//    etcd's robustness suite does with the WAL).
// 2. Linearizability: partition the history (partition.ts) and run the WGL search
//    (linearizability.ts) with the etcd model (model.ts) on each partition.
// 3. Global revision order across partitions (revisions.ts).
// 4. Watch guarantees (watch.ts).

import { capPerKind, anomaly, type Anomaly } from './anomaly.js';
import { isSerializableRead, type History, type KeyValue, type Operation } from './history.js';
import { checkLinearizable, type LinearizabilityResult, type Model } from './linearizability.js';
import { describeOp, initialState, step, stateKey, type EtcdState } from './model.js';
import { partitionOperations } from './partition.js';
import { buildReference, checkAgainstReference, type Reference } from './reference.js';
import { checkClientRevisions, checkRealTimeRevisions, checkUniqueRevisions } from './revisions.js';
import { validateWatches } from './watch.js';

export type Verdict = 'valid' | 'invalid' | 'unknown';

export interface PartitionReport {
  name: string;
  operations: number;
  verdict: 'ok' | 'illegal' | 'timeout';
  ms: number;
}

export interface LinearizationFailure {
  partition: string;
  operations: Operation[];
  result: Extract<LinearizabilityResult<EtcdState>, { verdict: 'illegal' }>;
}

export interface CheckReport {
  verdict: Verdict;
  anomalies: Anomaly[];
  partitions: PartitionReport[];
  failures: LinearizationFailure[];
  notes: string[];
  stats: {
    operations: number;
    failed: number;
    patched: number;
    watches: number;
    watchEvents: number;
    lastRevision: number;
    checkMs: number;
  };
}

export interface CheckOptions {
  /** give up on linearizability after this long (verdict 'unknown') */
  timeoutMs?: number;
  /** use the recorder watches (default: when the history has any) */
  useReference?: boolean;
}

export const etcdModel: Model<EtcdState, Operation> = {
  init: initialState,
  step: (s, op) => step(s, op),
  key: stateKey,
};

export function checkHistory(h: History, opts: CheckOptions = {}): CheckReport {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 5 * 60_000);
  let anomalies: Anomaly[] = [];
  const notes: string[] = [];
  const ops = h.operations;
  // (a loop: spreading 100k values into Math.max overflows the stack)
  const lastRevision = ops.reduce((m, o) => (o.output !== null && !isSerializableRead(o) ? Math.max(m, o.output.revision) : m), 1);

  // 1. reference
  let ref: Reference | null = null;
  let patches = new Map<number, Operation['output'] | 'not-applied'>();
  const useReference = opts.useReference ?? h.watches.some((w) => w.recorder);
  if (useReference) {
    const built = buildReference(h.watches, lastRevision);
    ref = built.reference;
    anomalies = anomalies.concat(built.anomalies);
    const rc = checkAgainstReference(ops, ref);
    anomalies = anomalies.concat(rc.anomalies);
    patches = rc.patches;
    if (!built.complete) {
      notes.push(`the recorder watches only reached revision ${ref.lastRevision} of ${lastRevision}: later revisions are not checked against the watch history`);
      for (const [id, p] of patches) if (p === 'not-applied') patches.delete(id);
    }
  }

  // Failed writes whose value a client read back were applied at the mod
  // revision it read (without watches, this is the only way to learn it).
  for (const [id, p] of patchesFromReads(ops)) if (!patches.has(id)) patches.set(id, p);

  // 2. linearizability per partition
  const prepared: Operation[] = [];
  let patched = 0;
  for (const op of ops) {
    if (isSerializableRead(op)) continue;
    if (op.output === null && op.input.type === 'range') continue; // a failed read changes nothing
    const p = patches.get(op.id);
    if (p === 'not-applied') continue;
    if (p !== undefined) {
      prepared.push({ ...op, output: p, patched: true });
      patched++;
    } else {
      prepared.push(op);
    }
  }
  narrowPatchedWindows(prepared);
  const partitions: PartitionReport[] = [];
  const failures: LinearizationFailure[] = [];
  let timedOut = false;
  for (const part of partitionOperations(prepared)) {
    const t0 = Date.now();
    const result = checkLinearizable(part.operations, etcdModel, { deadline });
    partitions.push({ name: part.name, operations: part.operations.length, verdict: result.verdict, ms: Date.now() - t0 });
    if (result.verdict === 'timeout') {
      timedOut = true;
      notes.push(`linearizability of partition ${part.name} (${part.operations.length} operations) timed out`);
    } else if (result.verdict === 'illegal') {
      failures.push({ partition: part.name, operations: part.operations, result });
      const blocking = part.operations[result.blocking]!;
      const rivals = result.candidates.filter((c) => c !== result.blocking).map((c) => part.operations[c]!);
      anomalies.push(
        anomaly(
          'nonlinearizable',
          `partition ${part.name}: linearized ${result.longest.length} of ${part.operations.length} operations, then no order works: ` +
            `${describeOp(blocking)} (client ${blocking.client}, ${blocking.call.toFixed(1)}-${blocking.return.toFixed(1)}ms) cannot take effect in state ${result.states.map(stateKey).join(' or ')}` +
            (rivals.length > 0 ? `; concurrent: ${rivals.map((r) => describeOp(r)).join('; ')}` : ''),
          [blocking.id, ...rivals.map((r) => r.id)],
        ),
      );
    }
  }

  // 3. global revisions
  // concat, not push(...): a broken server can produce more anomalies than a call takes arguments
  anomalies = anomalies.concat(checkClientRevisions(prepared), checkRealTimeRevisions(prepared), checkUniqueRevisions(prepared));

  // 4. watches
  anomalies = anomalies.concat(validateWatches(h.watches, ref, h.compactions));

  const capped = capPerKind(anomalies);
  const verdict: Verdict = anomalies.length > 0 ? 'invalid' : timedOut ? 'unknown' : 'valid';
  return {
    verdict,
    anomalies: capped,
    partitions,
    failures,
    notes,
    stats: {
      operations: ops.length,
      failed: ops.filter((o) => o.output === null).length,
      patched,
      watches: h.watches.length,
      watchEvents: h.watches.reduce((n, w) => n + w.responses.reduce((m, r) => m + r.events.length, 0), 0),
      lastRevision,
      checkMs: Date.now() - started,
    },
  };
}

/** Outcomes of failed puts (and txns that put) learned from reads of their unique values. */
export function patchesFromReads(ops: readonly Operation[]): Map<number, Operation['output']> {
  const unknownWriter = new Map<string, Operation>();
  for (const op of ops) {
    if (op.output !== null) continue;
    const i = op.input;
    if (i.type === 'put') unknownWriter.set(i.value, op);
    if (i.type === 'txn') for (const o of i.success) if (o.type === 'put') unknownWriter.set(o.value, op);
  }
  const out = new Map<number, Operation['output']>();
  if (unknownWriter.size === 0) return out;
  const learn = (kv: KeyValue): void => {
    const w = unknownWriter.get(kv.value);
    if (w === undefined || out.has(w.id)) return;
    out.set(w.id, w.input.type === 'put' ? { type: 'put', revision: kv.modRevision } : { type: 'txn', revision: kv.modRevision, succeeded: true, results: null });
  };
  for (const op of ops) {
    const o = op.output;
    if (o?.type === 'range') o.kvs.forEach(learn);
    if (o?.type === 'txn' && o.results !== null) for (const r of o.results) if (r.type === 'range') r.kvs.forEach(learn);
  }
  return out;
}

/**
 * A patched request created revision R at an unknown time after its call. In a
 * correct etcd the order of revisions is the order of linearization (the global
 * checks in revisions.ts hold the history to that), so its window narrows to:
 * - after the call of every observed request that saw a revision below R (those
 *   took effect before it), and
 * - before the return of the first observed request that saw R or later.
 * Without this, a request that never returned would be tried at every step of
 * the search.
 */
function narrowPatchedWindows(ops: Operation[]): void {
  const seen = ops
    .filter((o) => !o.patched && o.output !== null && Number.isFinite(o.return))
    .map((o) => ({ rev: o.output!.revision, call: o.call, ret: o.return }))
    .sort((a, b) => a.rev - b.rev);
  // prefix maximum of calls over revisions < seen[i].rev, suffix minimum of returns over >= seen[i].rev
  const prefixCall = new Array<number>(seen.length + 1).fill(-Infinity);
  for (let i = 0; i < seen.length; i++) prefixCall[i + 1] = Math.max(prefixCall[i]!, seen[i]!.call);
  const suffixReturn = new Array<number>(seen.length + 1).fill(Infinity);
  for (let i = seen.length - 1; i >= 0; i--) suffixReturn[i] = Math.min(suffixReturn[i + 1]!, seen[i]!.ret);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (!op.patched || op.output === null) continue;
    let lo = 0;
    let hi = seen.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seen[mid]!.rev < op.output.revision) lo = mid + 1;
      else hi = mid;
    }
    const call = Math.max(op.call, prefixCall[lo]!);
    const ret = Math.min(op.return, suffixReturn[lo]!);
    if (call <= ret) ops[i] = { ...op, call, return: ret };
  }
}

export function formatReport(r: CheckReport): string {
  const lines: string[] = [];
  lines.push(`verdict: ${r.verdict.toUpperCase()}`);
  const s = r.stats;
  lines.push(
    `  ${s.operations} operations (${s.failed} failed or timed out, ${s.patched} resolved from the watch history), ` +
      `${s.watches} watches with ${s.watchEvents} events, last revision ${s.lastRevision}, checked in ${(s.checkMs / 1000).toFixed(1)}s`,
  );
  lines.push(`  ${r.partitions.length} partitions, largest ${r.partitions.reduce((m, p) => Math.max(m, p.operations), 0)} operations`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const a of r.anomalies) lines.push(`  [${a.kind}] ${a.message}`);
  return lines.join('\n');
}
