// The MVCC store's request and response shapes: etcd's KV API (etcdserverpb) in
// TypeScript form. Revisions, versions and counts are numbers (exact below 2^53);
// lease IDs are signed 64-bit and travel as bigint.

/** mvccpb.KeyValue. Buffers returned by the store are shared: never mutate them. */
export interface KeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  lease: bigint;
}

/** mvccpb.Event. A delete's kv holds only `key` and `modRevision` (= the deletion revision). */
export interface Event {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

/**
 * `rangeEnd` absent or empty: the single key. `[0]`: every key >= key. Otherwise the
 * half-open interval [key, rangeEnd). Numeric filters use 0 for "off".
 */
export interface RangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  limit?: number;
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResponse {
  /** the store's revision when the range ran (not the requested one) */
  revision: number;
  kvs: KeyValue[];
  more: boolean;
  /** keys in the range at the requested revision, before limit and min/max filters */
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: bigint;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResponse {
  revision: number;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  revision: number;
  deleted: number;
  prevKvs: KeyValue[];
}

export type RequestOp =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest };

export type ResponseOp =
  | { range: RangeResponse }
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse };

export type CompareResult = 'equal' | 'greater' | 'less' | 'not_equal';

interface CompareBase {
  key: Buffer;
  /** as in RangeRequest: the compare must hold for every key in the range */
  rangeEnd?: Buffer;
  result: CompareResult;
}

/** pb.Compare, with the target union typed so a target cannot carry the wrong value. */
export type Compare = CompareBase &
  (
    | { target: 'version' | 'create' | 'mod'; value: number }
    | { target: 'value'; value: Buffer }
    | { target: 'lease'; value: bigint }
  );

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/**
 * `revision`: for the outermost txn, the store revision after it ran (new revision for
 * a txn that wrote, else the current one). Nested txn responses carry 0, as etcd's do
 * (their header is empty).
 */
export interface TxnResponse {
  revision: number;
  succeeded: boolean;
  responses: ResponseOp[];
}
