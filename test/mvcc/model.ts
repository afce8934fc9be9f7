// A plain in-memory reference of etcd's KV semantics, written for clarity, not speed:
// every key keeps its whole history and every read scans it. The randomized tests
// compare the store against it response by response.

import type { Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../../src/mvcc/index.js';

export interface MKv {
  key: string;
  create: number;
  mod: number;
  ver: number;
  value: string;
  lease: bigint;
}
export interface MEvent {
  type: 'put' | 'delete';
  key: string;
  mod: number;
  kv: MKv | undefined;
  prev: MKv | undefined;
}
export interface MRange {
  range: { revision: number; kvs: MKv[]; more: boolean; count: number };
}
export type MResp =
  | MRange
  | { put: { revision: number; prevKv?: MKv } }
  | { deleteRange: { revision: number; deleted: number; prevKvs: MKv[] } }
  | { txn: MTxnResp };
export interface MTxnResp {
  revision: number;
  succeeded: boolean;
  responses: MResp[];
}

export class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const s = (b: Buffer) => b.toString('latin1');

export class Model {
  rev = 1;
  compactRev = -1;
  events: MEvent[] = [];
  private readonly hist = new Map<string, Array<{ main: number; kv: MKv | undefined }>>();

  constructor(readonly maxTxnOps: number) {}

  at(key: string, rev: number): MKv | undefined {
    const h = this.hist.get(key);
    if (!h) return undefined;
    for (let i = h.length - 1; i >= 0; i--) if (h[i]!.main <= rev) return h[i]!.kv;
    return undefined;
  }

  private keys(key: Buffer, end: Buffer | undefined, rev: number): MKv[] {
    return [...this.hist.keys()]
      .filter((k) => keyIn(k, key, end))
      .sort()
      .map((k) => this.at(k, rev))
      .filter((kv): kv is MKv => kv !== undefined);
  }

  private write(key: string, main: number, kv: MKv | undefined, prev: MKv | undefined): void {
    let h = this.hist.get(key);
    if (!h) this.hist.set(key, (h = []));
    h.push({ main, kv });
    this.events.push({ type: kv ? 'put' : 'delete', key, mod: main, kv, prev });
  }

  range(r: RangeRequest, curRev = this.rev): MRange {
    if (r.key.length === 0) throw new ModelError('empty-key');
    const req = r.revision ?? 0;
    if (req > curRev) throw new ModelError('future-rev');
    const atRev = req > 0 ? req : curRev;
    if (atRev < this.compactRev) throw new ModelError('compacted');
    const found = this.keys(r.key, r.rangeEnd, atRev);
    const count = found.length;
    if (r.countOnly) return { range: { revision: curRev, kvs: [], more: false, count } };
    const order0 = r.sortOrder ?? 'none';
    const filtered = !!(r.minModRevision || r.maxModRevision || r.minCreateRevision || r.maxCreateRevision);
    const limit = r.limit ?? 0;
    let kvs = order0 === 'none' && !filtered && limit > 0 ? found.slice(0, limit + 1) : found;
    kvs = kvs.filter(
      (kv) =>
        (!r.maxModRevision || kv.mod <= r.maxModRevision) &&
        (!r.minModRevision || kv.mod >= r.minModRevision) &&
        (!r.maxCreateRevision || kv.create <= r.maxCreateRevision) &&
        (!r.minCreateRevision || kv.create >= r.minCreateRevision),
    );
    const target = r.sortTarget ?? 'key';
    const order = target !== 'key' && order0 === 'none' ? 'ascend' : order0;
    if (order !== 'none') {
      const f = (kv: MKv): number | string =>
        target === 'key' ? kv.key : target === 'version' ? kv.ver : target === 'create' ? kv.create : target === 'mod' ? kv.mod : kv.value;
      const c = (a: MKv, b: MKv) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
      kvs = [...kvs].sort(order === 'ascend' ? c : (a, b) => c(b, a));
    }
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    return { range: { revision: curRev, kvs, more, count } };
  }

  private checkPut(p: PutRequest): void {
    if (p.key.length === 0) throw new ModelError('empty-key');
    if (p.ignoreValue && p.value.length > 0) throw new ModelError('value-provided');
    if (p.ignoreLease && p.lease !== 0n) throw new ModelError('lease-provided');
  }

  put(p: PutRequest): MResp {
    this.checkPut(p);
    const prev = this.at(s(p.key), this.rev);
    if ((p.ignoreValue || p.ignoreLease) && !prev) throw new ModelError('key-not-found');
    const rev = this.rev + 1;
    this.doPut(p, rev, prev);
    this.rev = rev;
    return { put: p.prevKv && prev ? { revision: rev, prevKv: prev } : { revision: rev } };
  }

  private doPut(p: PutRequest, rev: number, prev: MKv | undefined): void {
    const key = s(p.key);
    const kv: MKv = {
      key,
      create: prev ? prev.create : rev,
      mod: rev,
      ver: prev ? prev.ver + 1 : 1,
      value: p.ignoreValue ? prev!.value : s(p.value),
      lease: p.ignoreLease ? prev!.lease : p.lease,
    };
    this.write(key, rev, kv, prev);
  }

  deleteRange(d: DeleteRangeRequest): MResp {
    if (d.key.length === 0) throw new ModelError('empty-key');
    const victims = this.keys(d.key, d.rangeEnd, this.rev);
    if (victims.length === 0) return { deleteRange: { revision: this.rev, deleted: 0, prevKvs: [] } };
    const rev = this.rev + 1;
    for (const kv of victims) this.write(kv.key, rev, undefined, kv);
    this.rev = rev;
    return { deleteRange: { revision: rev, deleted: victims.length, prevKvs: d.prevKv ? victims : [] } };
  }

  compact(rev: number): void {
    if (rev <= this.compactRev) throw new ModelError('compacted');
    if (rev > this.rev) throw new ModelError('future-rev');
    this.compactRev = rev;
  }

  // ---- txn ----

  txn(t: TxnRequest): MResp {
    this.validate(t);
    dupCheck(t.success);
    dupCheck(t.failure);
    const before = this.rev;
    const plan = this.plan(t);
    if (hasWrite(t)) this.checkTxnPuts(plan);
    this.walk(plan, (op) => {
      if (!('range' in op) || !op.range.revision) return;
      if (op.range.revision > this.rev) throw new ModelError('future-rev');
      if (op.range.revision < this.compactRev) throw new ModelError('compacted');
    });
    const st = { changed: false };
    const resp = this.runPlan(plan, before, st);
    if (st.changed) this.rev = before + 1;
    return { txn: { ...resp, revision: st.changed ? before + 1 : before } };
  }

  /** etcd's op budget: a nested txn gets what its parent's widest branch left of it. */
  private validate(t: TxnRequest, budget = this.maxTxnOps): void {
    const ops = Math.max(t.compare.length, t.success.length, t.failure.length);
    if (ops > budget) throw new ModelError('too-many-ops');
    for (const c of t.compare) if (c.key.length === 0) throw new ModelError('empty-key');
    for (const op of [...t.success, ...t.failure]) {
      if ('range' in op && op.range.key.length === 0) throw new ModelError('empty-key');
      if ('put' in op) this.checkPut(op.put);
      if ('deleteRange' in op && op.deleteRange.key.length === 0) throw new ModelError('empty-key');
      if ('txn' in op) this.validate(op.txn, budget - ops);
    }
  }

  private cmp(c: Compare): boolean {
    const kvs = this.keys(c.key, c.rangeEnd, this.rev);
    if (kvs.length === 0 && c.target === 'value') return false;
    const list = kvs.length === 0 ? [{ key: '', create: 0, mod: 0, ver: 0, value: '', lease: 0n }] : kvs;
    return list.every((kv) => {
      let d: number;
      if (c.target === 'value') d = Buffer.compare(Buffer.from(kv.value, 'latin1'), c.value);
      else if (c.target === 'lease') d = kv.lease === c.value ? 0 : kv.lease < c.value ? -1 : 1;
      else d = Math.sign((c.target === 'version' ? kv.ver : c.target === 'create' ? kv.create : kv.mod) - c.value);
      return c.result === 'equal' ? d === 0 : c.result === 'not_equal' ? d !== 0 : c.result === 'greater' ? d > 0 : d < 0;
    });
  }

  private plan(t: TxnRequest): Plan {
    const ok = t.compare.every((c) => this.cmp(c));
    const ops = ok ? t.success : t.failure;
    return { ok, ops: ops.map((op) => ('txn' in op ? { nested: this.plan(op.txn) } : { op })) };
  }

  private walk(p: Plan, f: (op: RequestOp) => void): void {
    for (const x of p.ops) 'nested' in x ? this.walk(x.nested, f) : f(x.op);
  }

  /** ignore_* puts need their key alive when they run, earlier ops of the txn included. */
  private checkTxnPuts(p: Plan): void {
    const live = new Map<string, boolean>();
    const alive = (k: string) => live.get(k) ?? this.at(k, this.rev) !== undefined;
    this.walk(p, (op) => {
      if ('put' in op) {
        const k = s(op.put.key);
        if ((op.put.ignoreValue || op.put.ignoreLease) && !alive(k)) throw new ModelError('key-not-found');
        live.set(k, true);
      }
      if ('deleteRange' in op) {
        for (const kv of this.keys(op.deleteRange.key, op.deleteRange.rangeEnd, this.rev)) live.set(kv.key, false);
        const d = op.deleteRange;
        for (const k of live.keys()) if (keyIn(k, d.key, d.rangeEnd)) live.set(k, false);
      }
    });
  }

  private runPlan(p: Plan, before: number, st: { changed: boolean }): MTxnResp {
    const responses: MResp[] = [];
    for (const x of p.ops) {
      if ('nested' in x) {
        responses.push({ txn: { ...this.runPlan(x.nested, before, st), revision: 0 } });
        continue;
      }
      const op = x.op;
      const readRev = st.changed ? before + 1 : before;
      if ('range' in op) {
        // reads inside a write txn see its own writes
        responses.push(this.range(op.range, readRev));
      } else if ('put' in op) {
        const prev = this.at(s(op.put.key), readRev);
        this.doPut(op.put, before + 1, prev);
        st.changed = true;
        responses.push({ put: op.put.prevKv && prev ? { revision: before + 1, prevKv: prev } : { revision: before + 1 } });
      } else if ('deleteRange' in op) {
        const victims = this.keys(op.deleteRange.key, op.deleteRange.rangeEnd, readRev);
        for (const kv of victims) this.write(kv.key, before + 1, undefined, kv);
        if (victims.length > 0) st.changed = true;
        const rev = st.changed ? before + 1 : before;
        responses.push({ deleteRange: { revision: rev, deleted: victims.length, prevKvs: op.deleteRange.prevKv ? victims : [] } });
      }
    }
    return { revision: 0, succeeded: p.ok, responses };
  }
}

function keyIn(k: string, key: Buffer, end: Buffer | undefined): boolean {
  const from = s(key);
  if (!end || end.length === 0) return k === from;
  if (end.length === 1 && end[0] === 0) return k >= from;
  return k >= from && k < s(end);
}

type Plan = { ok: boolean; ops: Array<{ op: RequestOp } | { nested: Plan }> };

function hasWrite(t: TxnRequest): boolean {
  return [...t.success, ...t.failure].some((op) => 'put' in op || 'deleteRange' in op || ('txn' in op && hasWrite(op.txn)));
}

/** etcd's checkIntervals, restated: sets of put keys and delete intervals per branch. */
function dupCheck(ops: RequestOp[]): { puts: Set<string>; dels: Array<[string, string]> } {
  const dels: Array<[string, string]> = [];
  for (const op of ops) {
    if ('deleteRange' in op) {
      const d = op.deleteRange;
      dels.push([s(d.key), d.rangeEnd && d.rangeEnd.length > 0 ? s(d.rangeEnd) : s(d.key) + '\0']);
    }
  }
  const covered = (k: string) => dels.some(([a, z]) => a <= k && k < z);
  const puts = new Set<string>();
  for (const op of ops) {
    if (!('txn' in op)) continue;
    const th = dupCheck(op.txn.success);
    const el = dupCheck(op.txn.failure);
    for (const k of th.puts) {
      if (puts.has(k) || covered(k)) throw new ModelError('duplicate-key');
      puts.add(k);
    }
    for (const k of el.puts) {
      if ((puts.has(k) && !th.puts.has(k)) || covered(k)) throw new ModelError('duplicate-key');
      puts.add(k);
    }
    dels.push(...th.dels, ...el.dels);
  }
  for (const op of ops) {
    if (!('put' in op)) continue;
    const k = s(op.put.key);
    if (puts.has(k) || covered(k)) throw new ModelError('duplicate-key');
    puts.add(k);
  }
  return { puts, dels };
}
