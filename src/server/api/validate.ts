// Request checks done before anything is proposed, with etcd's refusals: a request
// that fails here never reaches raft.

import type { PbDeleteRangeRequest, PbPutRequest, PbRangeRequest, PbRequestOp, PbTxnRequest } from '../convert.js';
import { EtcdError, Errors } from '../errors.js';
import { status as Code } from '@grpc/grpc-js';
import { toBigInt } from '../pb.js';

const invalidSortOption = new EtcdError(Code.INVALID_ARGUMENT, 'etcdserver: invalid sort option');

export function checkRange(r: PbRangeRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey;
  if (r.sort_order < 0 || r.sort_order > 2 || r.sort_target < 0 || r.sort_target > 4) throw invalidSortOption;
}

export function checkPut(r: PbPutRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey;
  if (r.ignore_value && r.value && r.value.length > 0) throw Errors.valueProvided;
  if (r.ignore_lease && toBigInt(r.lease) !== 0n) throw Errors.leaseProvided;
}

export function checkDeleteRange(r: PbDeleteRangeRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey;
}

function checkOp(op: PbRequestOp, maxTxnOps: number): void {
  if (op.request_range) checkRange(op.request_range);
  else if (op.request_put) checkPut(op.request_put);
  else if (op.request_delete_range) checkDeleteRange(op.request_delete_range);
  else if (op.request_txn) checkTxnShape(op.request_txn, maxTxnOps);
  else throw Errors.keyNotFound; // an empty RequestOp
}

function checkTxnShape(t: PbTxnRequest, maxTxnOps: number): void {
  const compare = t.compare ?? [];
  const success = t.success ?? [];
  const failure = t.failure ?? [];
  if (Math.max(compare.length, success.length, failure.length) > maxTxnOps) throw Errors.tooManyOps;
  for (const c of compare) if (!c.key || c.key.length === 0) throw Errors.emptyKey;
  for (const op of success) checkOp(op, maxTxnOps);
  for (const op of failure) checkOp(op, maxTxnOps);
}

/** Validates a txn: sizes, keys, then etcd's rule against overlapping writes in one branch. */
export function checkTxn(t: PbTxnRequest, maxTxnOps: number): void {
  checkTxnShape(t, maxTxnOps);
  checkIntervals(t.success ?? []);
  checkIntervals(t.failure ?? []);
}

// ---- the duplicate-key rule ----

/** A deleted key range [start, end); end undefined = unbounded. */
interface DeleteInterval {
  start: Buffer;
  end: Buffer | undefined;
}

function deleteInterval(r: PbDeleteRangeRequest): DeleteInterval {
  const end = r.range_end && r.range_end.length > 0 ? r.range_end : undefined;
  if (end === undefined) return { start: r.key, end: Buffer.concat([r.key, Buffer.from([0])]) };
  if (end.length === 1 && end[0] === 0) return { start: r.key, end: undefined };
  return { start: r.key, end };
}

function covers(dels: readonly DeleteInterval[], key: Buffer): boolean {
  return dels.some((d) => Buffer.compare(d.start, key) <= 0 && (d.end === undefined || Buffer.compare(key, d.end) < 0));
}

/**
 * Within one branch (nested txns included) two puts of one key, or a put inside a
 * deleted range, are refused. The then and else branches of a nested txn are
 * exclusive, so the same key may be put in both.
 */
function checkIntervals(ops: readonly PbRequestOp[]): { puts: Set<string>; dels: DeleteInterval[] } {
  const dels: DeleteInterval[] = [];
  for (const op of ops) if (op.request_delete_range) dels.push(deleteInterval(op.request_delete_range));

  const puts = new Set<string>();
  for (const op of ops) {
    if (!op.request_txn) continue;
    const then = checkIntervals(op.request_txn.success ?? []);
    const otherwise = checkIntervals(op.request_txn.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || covers(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey;
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw Errors.duplicateKey;
      if (covers(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey;
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }

  for (const op of ops) {
    if (!op.request_put) continue;
    const k = op.request_put.key.toString('latin1');
    if (puts.has(k) || covers(dels, op.request_put.key)) throw Errors.duplicateKey;
    puts.add(k);
  }
  return { puts, dels };
}
