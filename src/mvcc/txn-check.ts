// Request validation etcd performs before a request enters raft (v3rpc/key.go):
// empty keys, ignore_value/ignore_lease misuse, the txn op limit, and the
// duplicate-key rule. Pure functions: the server calls them before proposing, and
// the store runs them again at apply time so bad input can never change state.

import { MvccError } from './errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.js';

export const DEFAULT_MAX_TXN_OPS = 128;

export function checkRangeRequest(r: RangeRequest): void {
  if (r.key.length === 0) throw new MvccError('empty-key');
}

export function checkPutRequest(r: PutRequest): void {
  if (r.key.length === 0) throw new MvccError('empty-key');
  if (r.ignoreValue && r.value.length !== 0) throw new MvccError('value-provided');
  if (r.ignoreLease && r.lease !== 0n) throw new MvccError('lease-provided');
}

export function checkDeleteRangeRequest(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new MvccError('empty-key');
}

/** Op limit and per-op checks (recursively), then the duplicate-key rule per branch. */
export function checkTxnRequest(r: TxnRequest, maxTxnOps = DEFAULT_MAX_TXN_OPS): void {
  checkTxnOps(r, maxTxnOps);
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/**
 * As etcd: a nested txn may use only what its parents left of the op budget (the
 * budget less the parent's widest branch), so nesting ends at maxTxnOps + 1 levels.
 */
function checkTxnOps(r: TxnRequest, budget: number): void {
  const ops = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (ops > budget) throw new MvccError('too-many-ops');
  for (const c of r.compare) if (c.key.length === 0) throw new MvccError('empty-key');
  for (const op of r.success) checkRequestOp(op, budget - ops);
  for (const op of r.failure) checkRequestOp(op, budget - ops);
}

function checkRequestOp(op: RequestOp | undefined, budget: number): void {
  if (!op) return; // an empty RequestOp is a no-op, as in etcd
  if ('range' in op) checkRangeRequest(op.range);
  else if ('put' in op) checkPutRequest(op.put);
  else if ('deleteRange' in op) checkDeleteRangeRequest(op.deleteRange);
  else checkTxnOps(op.txn, budget);
}

/**
 * A delete range [begin, end) as etcd's StringAffineInterval sees it. A single-key
 * delete is [key, key+"\0"). A from-key delete ("\0" end) compares as an ordinary
 * string "\0" and so contains nothing: etcd does not flag puts under it either.
 */
interface Interval {
  begin: Buffer;
  end: Buffer;
}

function contains(dels: Interval[], key: Buffer): boolean {
  for (const d of dels) if (Buffer.compare(d.begin, key) <= 0 && Buffer.compare(key, d.end) < 0) return true;
  return false;
}

/**
 * etcd's checkIntervals: two puts of one key, or a put inside a delete range, in the
 * same branch (nested txns included) is a duplicate. Then/else branches of a nested
 * txn may put the same key, since only one of them runs.
 */
function checkIntervals(reqs: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of reqs) {
    if (!op || !('deleteRange' in op)) continue;
    const d = op.deleteRange;
    const end = d.rangeEnd && d.rangeEnd.length > 0 ? d.rangeEnd : Buffer.concat([d.key, Buffer.of(0)]);
    dels.push({ begin: d.key, end });
  }
  const puts = new Set<string>();
  const dup = (): never => {
    throw new MvccError('duplicate-key');
  };
  for (const op of reqs) {
    if (!op || !('txn' in op)) continue;
    const then = checkIntervals(op.txn.success);
    const els = checkIntervals(op.txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || contains(dels, Buffer.from(k, 'latin1'))) dup();
      puts.add(k);
    }
    for (const k of els.puts) {
      if (puts.has(k) && !then.puts.has(k)) dup();
      if (contains(dels, Buffer.from(k, 'latin1'))) dup();
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of reqs) {
    if (!op || !('put' in op)) continue;
    const k = op.put.key.toString('latin1');
    if (puts.has(k) || contains(dels, op.put.key)) dup();
    puts.add(k);
  }
  return { puts, dels };
}

/** True when no branch at any depth writes (etcd's isTxnReadonly). */
export function isTxnReadonly(r: TxnRequest): boolean {
  const ro = (ops: RequestOp[]): boolean =>
    ops.every((op) => !op || 'range' in op || ('txn' in op && isTxnReadonly(op.txn)));
  return ro(r.success) && ro(r.failure);
}
