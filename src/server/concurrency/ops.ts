// The keys and requests of etcd's concurrency recipes (clientv3/concurrency), in the
// protobuf shapes the KV service takes: a txn built here is proposed and applied exactly
// as a client's would be.

import type { RangeResponse, TxnResponse } from '../../mvcc/index.js';
import type { PbCompare, PbDeleteRangeRequest, PbPutRequest, PbRangeRequest, PbRequestOp, PbTxnRequest } from '../convert.js';
import { int64 } from '../pb.js';

const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);

// etcdserverpb enum values
const COMPARE_EQUAL = 0;
const TARGET_CREATE = 1;
const SORT_ASCEND = 1;
const SORT_DESCEND = 2;
const SORT_BY_CREATE = 2;

/** An election's or a lock's keys live under `<name>/`. */
export function prefixOf(name: Buffer): Buffer {
  return Buffer.concat([name, SLASH]);
}

/** A session's key under a prefix: `<prefix><lease in hex>`, as Go's %x prints an int64. */
export function sessionKey(prefix: Buffer, lease: bigint): Buffer {
  const hex = lease < 0n ? `-${(-lease).toString(16)}` : lease.toString(16);
  return Buffer.concat([prefix, Buffer.from(hex)]);
}

/** The end of the range holding every key that starts with `prefix` (clientv3's WithPrefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.of(0); // no key follows all 0xff bytes: from the prefix on
}

/** create_revision(key) == rev; 0 means "the key does not exist". */
export function createRevisionIs(key: Buffer, rev: number): PbCompare {
  return { result: COMPARE_EQUAL, target: TARGET_CREATE, key, create_revision: rev, range_end: EMPTY };
}

function range(key: Buffer, over: Partial<PbRangeRequest> = {}): PbRangeRequest {
  return {
    key,
    range_end: EMPTY,
    limit: 0,
    revision: 0,
    sort_order: 0,
    sort_target: 0,
    serializable: false,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
    ...over,
  };
}

export function getOp(key: Buffer): PbRequestOp {
  return { request_range: range(key) };
}

/** The oldest key under the prefix (clientv3's WithFirstCreate): the lock holder, the leader. */
export function firstCreatedOp(prefix: Buffer): PbRequestOp {
  return {
    request_range: range(prefix, { range_end: prefixEnd(prefix), sort_target: SORT_BY_CREATE, sort_order: SORT_ASCEND, limit: 1 }),
  };
}

/** The newest key under the prefix created at or before `maxCreateRevision` (WithLastCreate, WithMaxCreateRev). */
export function lastCreatedBeforeOp(prefix: Buffer, maxCreateRevision: number): PbRequestOp {
  return {
    request_range: range(prefix, {
      range_end: prefixEnd(prefix),
      sort_target: SORT_BY_CREATE,
      sort_order: SORT_DESCEND,
      limit: 1,
      max_create_revision: maxCreateRevision,
    }),
  };
}

export function putOp(key: Buffer, value: Buffer, lease: bigint): PbRequestOp {
  const put: PbPutRequest = { key, value, lease: int64(lease), prev_kv: false, ignore_value: false, ignore_lease: false };
  return { request_put: put };
}

export function deleteRequest(key: Buffer): PbDeleteRangeRequest {
  return { key, range_end: EMPTY, prev_kv: false };
}

export function deleteOp(key: Buffer): PbRequestOp {
  return { request_delete_range: deleteRequest(key) };
}

export function txn(compare: PbCompare[], success: PbRequestOp[], failure: PbRequestOp[] = []): PbTxnRequest {
  return { compare, success, failure };
}

/** The range response at `i` of the branch a txn ran (a txn built here knows where its ranges are). */
export function rangeAt(r: TxnResponse, i: number): RangeResponse {
  const op = r.responses[i];
  if (op === undefined || !('range' in op)) throw new Error(`txn response ${i} is not a range`);
  return op.range;
}

