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
import { isSerializableRead, type History, type Operation } from './history.js';
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
  const anomalies: Anomaly[] = [];
  const notes: string[] = [];
  const ops = h.operations;
  const lastRevision = Math.max(1, ...ops.filter((o) => o.output !== null && !isSerializableRead(o)).map((o) => o.output!.revision));

  // 1. reference
  let ref: Reference | null = null;
  let patches = new Map<number, Operation['output'] | 'not-applied'>();
  const useReference = opts.useReference ?? h.watches.some((w) => w.recorder);
  if (useReference) {
    const built = buildReference(h.watches, lastRevision);
    ref = built.reference;
    anomalies.push(...built.anomalies);
    const rc = checkAgainstReference(ops, ref);
    anomalies.push(...rc.anomalies);
    patches = rc.patches;
    if (!built.complete) {
      notes.push(`the recorder watches only reached revision ${ref.lastRevision} of ${lastRevision}: later revisions are not checked against the watch history`);
      for (const [id, p] of patches) if (p === 'not-applied') patches.delete(id);
    }
  }

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
  boundPatchedReturns(prepared);
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
  anomalies.push(...checkClientRevisions(prepared), ...checkRealTimeRevisions(prepared), ...checkUniqueRevisions(prepared));

  // 4. watches
  anomalies.push(...validateWatches(h.watches, ref, h.compactions));

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

/**
 * A patched request created revision R at an unknown time after its call. Every
 * linearizable response that saw revision R or later was served after that, so
 * the request took effect before the earliest such response returned. Bounding
 * its return this way keeps it from being tried at every step of the search.
 */
function boundPatchedReturns(ops: Operation[]): void {
  const seen = ops
    .filter((o) => !o.patched && o.output !== null && Number.isFinite(o.return))
    .map((o) => ({ rev: o.output!.revision, ret: o.return }))
    .sort((a, b) => a.rev - b.rev);
  // suffix minimum of return times over revisions >= seen[i].rev
  const suffix = new Array<number>(seen.length + 1).fill(Infinity);
  for (let i = seen.length - 1; i >= 0; i--) suffix[i] = Math.min(suffix[i + 1]!, seen[i]!.ret);
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
    const bound = suffix[lo]!;
    if (bound < op.return && bound >= op.call) ops[i] = { ...op, return: bound };
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
  lines.push(`  ${r.partitions.length} partitions, largest ${Math.max(0, ...r.partitions.map((p) => p.operations))} operations`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const a of r.anomalies) lines.push(`  [${a.kind}] ${a.message}`);
  return lines.join('\n');
}
