// --namespace: every key a client names gets the prefix on its way to the cluster, and
// loses it in every answer, as clientv3/namespace does for etcd's proxy. A range that
// runs to the end of the keyspace ("\0") runs to the end of the namespace instead.
// Requests are the server's decoded messages, rewritten in place.

import { prefixEnd } from '../server/concurrency/ops.js';
import { Errors } from '../server/errors.js';

interface KeyValue { key: Buffer }
interface RangeReq { key: Buffer; range_end: Buffer }
interface Compare { key: Buffer; range_end: Buffer }
interface RequestOp {
  request_range?: RangeReq | null;
  request_put?: { key: Buffer } | null;
  request_delete_range?: RangeReq | null;
  request_txn?: TxnReq | null;
}
export interface TxnReq { compare: Compare[]; success: RequestOp[]; failure: RequestOp[] }
interface ResponseOp {
  response_range?: { kvs: KeyValue[] } | null;
  response_put?: { prev_kv?: KeyValue | null } | null;
  response_delete_range?: { prev_kvs: KeyValue[] } | null;
  response_txn?: TxnResp | null;
}
export interface TxnResp { responses: ResponseOp[] }
export interface Event { kv?: KeyValue | null; prev_kv?: KeyValue | null }

const ALL_KEYS = Buffer.of(0);

export class Namespace {
  readonly prefix: Buffer;

  constructor(prefix: string) {
    this.prefix = Buffer.from(prefix);
  }

  get empty(): boolean {
    return this.prefix.length === 0;
  }

  /** [key, rangeEnd] inside the namespace (etcd's prefixInterval). */
  interval(key: Buffer, end: Buffer | undefined): [Buffer, Buffer] {
    const pfxKey = Buffer.concat([this.prefix, key]);
    if (end === undefined || end.length === 0) return [pfxKey, Buffer.alloc(0)];
    if (end.equals(ALL_KEYS)) return [pfxKey, prefixEnd(this.prefix)];
    return [pfxKey, Buffer.concat([this.prefix, end])];
  }

  /** A single key (put, lease keys, lock and election names). */
  key(key: Buffer): Buffer {
    return this.empty ? key : Buffer.concat([this.prefix, key]);
  }

  /** The key as the client knows it. */
  strip(key: Buffer): Buffer {
    return this.empty ? key : key.subarray(this.prefix.length);
  }

  /** Range and DeleteRange requests; an empty key is refused, as clientv3/namespace refuses it. */
  range(r: RangeReq): void {
    if (this.empty) return;
    if (r.key.length === 0) throw Errors.emptyKey;
    [r.key, r.range_end] = this.interval(r.key, r.range_end);
  }

  put(r: { key: Buffer }): void {
    if (this.empty) return;
    if (r.key.length === 0) throw Errors.emptyKey;
    r.key = this.key(r.key);
  }

  txn(t: TxnReq): void {
    if (this.empty) return;
    for (const c of t.compare ?? []) {
      const [key, end] = this.interval(c.key, c.range_end);
      c.key = key;
      if (c.range_end?.length > 0) c.range_end = end;
    }
    for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) {
      if (op.request_range) this.range(op.request_range);
      else if (op.request_put) this.put(op.request_put);
      else if (op.request_delete_range) this.range(op.request_delete_range);
      else if (op.request_txn) this.txn(op.request_txn);
    }
  }

  kvs(kvs: KeyValue[] | undefined | null): void {
    if (this.empty || !kvs) return;
    for (const kv of kvs) kv.key = this.strip(kv.key);
  }

  kv(kv: KeyValue | undefined | null): void {
    if (!this.empty && kv) kv.key = this.strip(kv.key);
  }

  txnResp(t: TxnResp): void {
    if (this.empty) return;
    for (const r of t.responses ?? []) {
      if (r.response_range) this.kvs(r.response_range.kvs);
      else if (r.response_put) this.kv(r.response_put.prev_kv);
      else if (r.response_delete_range) this.kvs(r.response_delete_range.prev_kvs);
      else if (r.response_txn) this.txnResp(r.response_txn);
    }
  }

  events(events: Event[] | undefined | null): void {
    if (this.empty || !events) return;
    for (const e of events) {
      this.kv(e.kv);
      this.kv(e.prev_kv);
    }
  }
}
