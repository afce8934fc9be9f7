// Conversions between the protobufjs view of etcd's API messages (Long integers,
// snake_case fields, numeric enums) and the MVCC store's TypeScript types.

import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../mvcc/index.js';
import { Errors } from './errors.js';
import { type Int64, int64, toBigInt, toNumber } from './pb.js';

/** Field shapes of decoded protobufjs messages we read (defaults come from prototypes). */
export interface PbRangeRequest {
  key: Buffer;
  range_end: Buffer;
  limit: Int64;
  revision: Int64;
  sort_order: number;
  sort_target: number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: Int64;
  max_mod_revision: Int64;
  min_create_revision: Int64;
  max_create_revision: Int64;
}
export interface PbPutRequest {
  key: Buffer;
  value: Buffer;
  lease: Int64;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}
export interface PbDeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}
export interface PbCompare {
  result: number;
  target: number;
  key: Buffer;
  version?: Int64;
  create_revision?: Int64;
  mod_revision?: Int64;
  value?: Buffer;
  lease?: Int64;
  range_end: Buffer;
}
export interface PbRequestOp {
  request_range?: PbRangeRequest | null;
  request_put?: PbPutRequest | null;
  request_delete_range?: PbDeleteRangeRequest | null;
  request_txn?: PbTxnRequest | null;
}
export interface PbTxnRequest {
  compare: PbCompare[];
  success: PbRequestOp[];
  failure: PbRequestOp[];
}

const sortOrders = ['none', 'ascend', 'descend'] as const;
const sortTargets = ['key', 'version', 'create', 'mod', 'value'] as const;
const compareResults = ['equal', 'greater', 'less', 'not_equal'] as const;

function nonEmpty(b: Buffer | undefined | null): Buffer | undefined {
  return b && b.length > 0 ? b : undefined;
}

/**
 * A bytes field as a Buffer. protobufjs gives Buffers for fields on the wire, but an
 * absent field reads its default from the prototype, which is an empty array.
 */
export function buf(b: Uint8Array | readonly number[] | undefined | null): Buffer {
  if (!b) return Buffer.alloc(0);
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return Buffer.from(b);
}

export function rangeFromPb(r: PbRangeRequest): RangeRequest {
  // etcd 3.4 sorts only for ASCEND and DESCEND: under any other order value the keys
  // stay in key order, whatever the target (and the same limit and `more` follow)
  const order = sortOrders[r.sort_order];
  return {
    key: buf(r.key),
    rangeEnd: nonEmpty(buf(r.range_end)),
    limit: toNumber(r.limit),
    revision: toNumber(r.revision),
    sortOrder: order ?? 'none',
    sortTarget: order === undefined ? 'key' : (sortTargets[r.sort_target] ?? 'key'),
    keysOnly: r.keys_only === true,
    countOnly: r.count_only === true,
    minModRevision: toNumber(r.min_mod_revision),
    maxModRevision: toNumber(r.max_mod_revision),
    minCreateRevision: toNumber(r.min_create_revision),
    maxCreateRevision: toNumber(r.max_create_revision),
  };
}

export function putFromPb(r: PbPutRequest): PutRequest {
  return {
    key: buf(r.key),
    value: buf(r.value),
    lease: toBigInt(r.lease),
    prevKv: r.prev_kv === true,
    ignoreValue: r.ignore_value === true,
    ignoreLease: r.ignore_lease === true,
  };
}

export function deleteRangeFromPb(r: PbDeleteRangeRequest): DeleteRangeRequest {
  return { key: buf(r.key), rangeEnd: nonEmpty(buf(r.range_end)), prevKv: r.prev_kv === true };
}

function compareFromPb(c: PbCompare): Compare {
  // One literal for every target, fields in one order: a spread of a shared base (the
  // previous form) gave nearly every Compare a map of its own (2,060 maps over 20
  // whole-member seeds), and the store's compare and the auth check read them megamorphically.
  const key = buf(c.key);
  const rangeEnd = nonEmpty(buf(c.range_end));
  const result = compareResults[c.result] ?? 'equal';
  switch (c.target) {
    case 0:
      return { key, rangeEnd, result, target: 'version', value: toNumber(c.version) };
    case 1:
      return { key, rangeEnd, result, target: 'create', value: toNumber(c.create_revision) };
    case 2:
      return { key, rangeEnd, result, target: 'mod', value: toNumber(c.mod_revision) };
    case 3:
      return { key, rangeEnd, result, target: 'value', value: buf(c.value) };
    default:
      return { key, rangeEnd, result, target: 'lease', value: toBigInt(c.lease) };
  }
}

function opFromPb(op: PbRequestOp): RequestOp {
  if (op.request_range) return { range: rangeFromPb(op.request_range) };
  if (op.request_put) return { put: putFromPb(op.request_put) };
  if (op.request_delete_range) return { deleteRange: deleteRangeFromPb(op.request_delete_range) };
  if (op.request_txn) return { txn: txnFromPb(op.request_txn) };
  // etcd refuses a RequestOp with nothing set this way
  throw Errors.keyNotFound;
}

/** Converts a txn; throws etcd's error for an empty RequestOp. */
export function txnFromPb(t: PbTxnRequest): TxnRequest {
  return {
    compare: (t.compare ?? []).map(compareFromPb),
    success: (t.success ?? []).map(opFromPb),
    failure: (t.failure ?? []).map(opFromPb),
  };
}

// ---- responses ----

export function kvToPb(kv: KeyValue): object {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease === 0n ? 0 : int64(kv.lease),
  };
}

export function eventToPb(ev: Event): object {
  const out: { type: number; kv: object; prev_kv?: object } = {
    type: ev.type === 'put' ? 0 : 1,
    kv: kvToPb(ev.kv),
  };
  if (ev.prevKv) out.prev_kv = kvToPb(ev.prevKv);
  return out;
}

type Header = object;

export function rangeRespToPb(r: RangeResponse, header: Header): object {
  return { header, kvs: r.kvs.map(kvToPb), more: r.more, count: r.count };
}

export function putRespToPb(r: PutResponse, header: Header): object {
  return r.prevKv ? { header, prev_kv: kvToPb(r.prevKv) } : { header };
}

export function deleteRespToPb(r: DeleteRangeResponse, header: Header): object {
  return { header, deleted: r.deleted, prev_kvs: r.prevKvs.map(kvToPb) };
}

function respOpToPb(op: ResponseOp): object {
  // Inner responses carry a header holding only the revision, as etcd's do.
  if ('range' in op) return { response_range: rangeRespToPb(op.range, { revision: op.range.revision }) };
  if ('put' in op) return { response_put: putRespToPb(op.put, { revision: op.put.revision }) };
  if ('deleteRange' in op) {
    return { response_delete_range: deleteRespToPb(op.deleteRange, { revision: op.deleteRange.revision }) };
  }
  return { response_txn: txnRespToPb(op.txn, { revision: op.txn.revision }) };
}

export function txnRespToPb(r: TxnResponse, header: Header): object {
  return { header, succeeded: r.succeeded, responses: r.responses.map(respOpToPb) };
}
