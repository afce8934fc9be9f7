// Random request generation shared by the model test and the real-etcd comparison,
// and the normalization of store responses to plain data.

import type { Compare, KeyValue, RangeRequest, RequestOp, ResponseOp, TxnRequest } from '../../src/mvcc/index.js';
import { b } from './helpers.js';
import type { MKv, MResp } from './model.js';

export { Rng } from '../../src/pkg/rng.js';

export const KEYS = ['a', 'b', 'b1', 'b2', 'c', 'd', 'e\x00', 'e\xff', 'f'];
export type Entry =
  | { kind: 'put'; op: Extract<RequestOp, { put: unknown }>['put'] }
  | { kind: 'del'; op: Extract<RequestOp, { deleteRange: unknown }>['deleteRange'] }
  | { kind: 'txn'; op: TxnRequest }
  | { kind: 'compact'; rev: number }
  | { kind: 'none' };

export interface GenOptions {
  leases: readonly bigint[];
  /** ignore_value/ignore_lease inside txns (real etcd panics on some of those) */
  ignoreInTxn: boolean;
}

export function gen(r: Rng, rev: number, compactRev: number, o: GenOptions = { leases: [0n, 0n, 1n, 2n, -5n], ignoreInTxn: true }) {
  const key = () => b(r.pick(KEYS));
  const end = (): Buffer | undefined =>
    r.chance(0.5) ? undefined : r.chance(0.2) ? Buffer.of(0) : r.chance(0.1) ? Buffer.alloc(0) : b(r.pick(KEYS) + (r.chance(0.5) ? 'z' : ''));
  const revision = () => (r.chance(0.5) ? 0 : Math.max(-1, compactRev - 1) + r.int(rev - compactRev + 4));
  const range = (): RangeRequest => ({
    key: r.chance(0.02) ? Buffer.alloc(0) : key(),
    rangeEnd: end(),
    limit: r.chance(0.3) ? r.int(4) : 0,
    revision: revision(),
    sortOrder: r.pick(['none', 'none', 'ascend', 'descend'] as const),
    sortTarget: r.pick(['key', 'key', 'version', 'create', 'mod', 'value'] as const),
    keysOnly: r.chance(0.1),
    countOnly: r.chance(0.1),
    minModRevision: r.chance(0.1) ? r.int(rev + 1) : 0,
    maxModRevision: r.chance(0.1) ? r.int(rev + 1) : 0,
    minCreateRevision: r.chance(0.1) ? r.int(rev + 1) : 0,
    maxCreateRevision: r.chance(0.1) ? r.int(rev + 1) : 0,
  });
  const put = (inTxn = false) => {
    const ignoreValue = (!inTxn || o.ignoreInTxn) && r.chance(0.1);
    const ignoreLease = (!inTxn || o.ignoreInTxn) && r.chance(0.1);
    return {
      key: r.chance(0.02) ? Buffer.alloc(0) : key(),
      value: ignoreValue && r.chance(0.8) ? Buffer.alloc(0) : b(r.pick(['', 'x', 'y', 'zz', '\x00\xff'])),
      lease: ignoreLease && r.chance(0.8) ? 0n : r.pick(o.leases),
      prevKv: r.chance(0.5),
      ignoreValue,
      ignoreLease,
    };
  };
  const del = () => ({ key: key(), rangeEnd: end(), prevKv: r.chance(0.5) });
  const compare = (): Compare => {
    const base = { key: key(), rangeEnd: r.chance(0.2) ? end() : undefined, result: r.pick(['equal', 'greater', 'less', 'not_equal'] as const) };
    const target = r.pick(['version', 'create', 'mod', 'value', 'lease'] as const);
    if (target === 'value') return { ...base, target, value: b(r.pick(['', 'x', 'y', 'zz'])) };
    if (target === 'lease') return { ...base, target, value: r.pick(o.leases) };
    return { ...base, target, value: r.int(rev + 2) };
  };
  const ops = (depth: number): RequestOp[] =>
    Array.from({ length: r.int(5) }, (): RequestOp => {
      const k = r.int(10);
      if (k < 3) return { range: range() };
      if (k < 7) return { put: put(true) };
      if (k < 9 || depth > 1) return { deleteRange: del() };
      return { txn: txn(depth + 1) };
    });
  const txn = (depth: number): TxnRequest => ({
    compare: Array.from({ length: r.int(3) }, compare),
    success: ops(depth),
    failure: ops(depth),
  });
  return { range, put, del, txn: () => txn(0) };
}

// ---- normalizing store responses to the model's plain shape ----

export const kv = (x: KeyValue): MKv => ({
  key: x.key.toString('latin1'),
  create: x.createRevision,
  mod: x.modRevision,
  ver: x.version,
  value: x.value.toString('latin1'),
  lease: x.lease,
});

export function norm(resp: ResponseOp): MResp {
  if ('range' in resp) return { range: { ...resp.range, kvs: resp.range.kvs.map(kv) } };
  if ('put' in resp) return { put: resp.put.prevKv ? { revision: resp.put.revision, prevKv: kv(resp.put.prevKv) } : { revision: resp.put.revision } };
  if ('deleteRange' in resp) return { deleteRange: { ...resp.deleteRange, prevKvs: resp.deleteRange.prevKvs.map(kv) } };
  return { txn: { ...resp.txn, responses: resp.txn.responses.map(norm) } };
}

