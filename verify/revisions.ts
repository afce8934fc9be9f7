// Global revision checks. The per-partition model only bounds revisions; these
// checks tie the partitions together through etcd's single revision counter:
//
// - a client never sees the header revision go backwards (linearizable requests);
// - real-time order: if request a returned before request b was called, then
//   rev(b) >= rev(a), and rev(b) > rev(a) when b created a revision;
// - no two requests create the same revision.
//
// With these, a linearization of each partition whose revisions are ordered (the
// model guarantees that) merges into one linearization of the whole history,
// ordered by revision.
//
// Serializable reads are excluded: they may be served by a lagging member.

import { anomaly, type Anomaly } from './anomaly.js';
import { bumpsRevision, isSerializableRead, type Operation } from './history.js';
import { describeOp } from './model.js';

function linearizableKnown(ops: readonly Operation[]): Operation[] {
  return ops.filter((op) => op.output !== null && !isSerializableRead(op));
}

export function checkClientRevisions(ops: readonly Operation[]): Anomaly[] {
  const out: Anomaly[] = [];
  const byClient = new Map<number, Operation[]>();
  for (const op of linearizableKnown(ops)) {
    if (op.patched === true) continue; // a failure resolved from the watch history: the client never saw it
    let l = byClient.get(op.client);
    if (l === undefined) byClient.set(op.client, (l = []));
    l.push(op);
  }
  for (const [client, list] of byClient) {
    list.sort((a, b) => a.call - b.call);
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (b.output!.revision < a.output!.revision) {
        out.push(
          anomaly(
            'client-revision-regressed',
            `client ${client}: revision went backwards from ${a.output!.revision} (${describeOp(a)}) to ${b.output!.revision} (${describeOp(b)})`,
            [a.id, b.id],
          ),
        );
      }
    }
  }
  return out;
}

export function checkRealTimeRevisions(ops: readonly Operation[]): Anomaly[] {
  const out: Anomaly[] = [];
  const known = linearizableKnown(ops);
  const byCall = [...known].sort((a, b) => a.call - b.call);
  // Only responses a client actually received bound later requests.
  const byReturn = known.filter((op) => op.patched !== true && Number.isFinite(op.return)).sort((a, b) => a.return - b.return);
  let r = 0;
  let maxOp: Operation | null = null;
  for (const b of byCall) {
    while (r < byReturn.length && byReturn[r]!.return < b.call) {
      const a = byReturn[r++]!;
      if (maxOp === null || a.output!.revision > maxOp.output!.revision) maxOp = a;
    }
    if (maxOp === null) continue;
    const before = maxOp.output!.revision;
    const rev = b.output!.revision;
    const creates = bumpsRevision(b.input, b.output!) === true;
    if (rev < before || (creates && rev === before)) {
      out.push(
        anomaly(
          'revision-order',
          `${describeOp(b)} was called at ${b.call.toFixed(1)}ms after ${describeOp(maxOp)} returned at ${maxOp.return.toFixed(1)}ms, ` +
            `but its revision ${rev} is ${creates ? 'not greater than' : 'less than'} ${before}`,
          [maxOp.id, b.id],
        ),
      );
    }
  }
  return out;
}

export function checkUniqueRevisions(ops: readonly Operation[]): Anomaly[] {
  const out: Anomaly[] = [];
  const creator = new Map<number, Operation>();
  for (const op of linearizableKnown(ops)) {
    if (bumpsRevision(op.input, op.output!) !== true) continue;
    const rev = op.output!.revision;
    const other = creator.get(rev);
    if (other !== undefined) {
      out.push(anomaly('duplicate-revision', `two requests created revision ${rev}: ${describeOp(other)} and ${describeOp(op)}`, [other.id, op.id]));
    } else {
      creator.set(rev, op);
    }
  }
  return out;
}
