// Which key permissions each KV request needs (etcd's authApplierV3 and checkTxnAuth):
// reads need READ on their range, writes WRITE on theirs, prev_kv READ on what it
// returns, a compare READ on what it looks at, and a key written under a lease (or a
// lease revoked) needs WRITE on every key already attached to that lease, since
// revoking it deletes them. Nested txns are checked op by op like the outer one.

import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../../mvcc/index.js';
import type { AuthInfo, AuthStore } from './store.js';

const EMPTY = Buffer.alloc(0);

/** The keys attached to a lease now. */
export type LeaseKeys = (lease: bigint) => Promise<Buffer[]>;

export function checkRange(auth: AuthStore, who: AuthInfo | undefined, r: RangeRequest): void {
  auth.checkKeys(who, 'read', r.key, r.rangeEnd ?? EMPTY);
}

/** (The leases a put attaches its key to are checked apart: see checkLeases.) */
export function checkPut(auth: AuthStore, who: AuthInfo | undefined, p: PutRequest): void {
  auth.checkKeys(who, 'write', p.key, EMPTY);
  if (p.prevKv) auth.checkKeys(who, 'read', p.key, EMPTY);
}

export function checkDeleteRange(auth: AuthStore, who: AuthInfo | undefined, d: DeleteRangeRequest): void {
  auth.checkKeys(who, 'write', d.key, d.rangeEnd ?? EMPTY);
  if (d.prevKv) auth.checkKeys(who, 'read', d.key, d.rangeEnd ?? EMPTY);
}

export function checkTxn(auth: AuthStore, who: AuthInfo | undefined, t: TxnRequest): void {
  for (const c of t.compare) auth.checkKeys(who, 'read', c.key, c.rangeEnd ?? EMPTY);
  const ops = (list: readonly RequestOp[]) => {
    for (const op of list) {
      if ('range' in op) checkRange(auth, who, op.range);
      else if ('put' in op) checkPut(auth, who, op.put);
      else if ('deleteRange' in op) checkDeleteRange(auth, who, op.deleteRange);
      else checkTxn(auth, who, op.txn);
    }
  };
  ops(t.success);
  ops(t.failure);
}

/** The leases the puts of a txn (any branch, any depth) attach keys to. */
export function txnLeases(t: TxnRequest): bigint[] {
  const out: bigint[] = [];
  const ops = (list: readonly RequestOp[]) => {
    for (const op of list) {
      if ('put' in op && op.put.lease !== 0n) out.push(op.put.lease);
      else if ('txn' in op) out.push(...txnLeases(op.txn));
    }
  };
  ops(t.success);
  ops(t.failure);
  return out;
}

/**
 * A lease may be revoked, or get one more key, only by who may write every key it
 * holds: revoking it deletes them (etcd's checkLeasePuts).
 */
export async function checkLeases(auth: AuthStore, who: AuthInfo | undefined, leases: readonly bigint[], leaseKeys: LeaseKeys): Promise<void> {
  if (!auth.enabled) return;
  for (const lease of leases) {
    for (const key of await leaseKeys(lease)) auth.checkKeys(who, 'write', key, EMPTY);
  }
}
