// Model-based randomized test: random operation sequences applied to the store and to
// the reference model (model.ts), every response compared; with commits at random
// points, close/reopen, crash-replay of the same raft indexes from a snapshot of the
// last commit, and a watcher replaying history checked against the model's events.

import { describe, expect, it } from 'vitest';
import {
  MvccError,
  MvccStore,
  type Compare,
  type KeyValue,
  type RangeRequest,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type WatchResponseOut,
} from '../../src/mvcc/index.js';
import { b, removeDir, scratchDir } from './helpers.js';
import { Model, ModelError, type MKv, type MResp } from './model.js';

class Rng {
  constructor(private s: number) {}
  next(): number {
    // mulberry32
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const KEYS = ['a', 'b', 'b1', 'b2', 'c', 'd', 'e\x00', 'e\xff', 'f'];
type Entry =
  | { kind: 'put'; op: Extract<RequestOp, { put: unknown }>['put'] }
  | { kind: 'del'; op: Extract<RequestOp, { deleteRange: unknown }>['deleteRange'] }
  | { kind: 'txn'; op: TxnRequest }
  | { kind: 'compact'; rev: number }
  | { kind: 'none' };

function gen(r: Rng, rev: number, compactRev: number) {
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
  const put = () => {
    const ignoreValue = r.chance(0.1);
    const ignoreLease = r.chance(0.1);
    return {
      key: r.chance(0.02) ? Buffer.alloc(0) : key(),
      value: ignoreValue && r.chance(0.8) ? Buffer.alloc(0) : b(r.pick(['', 'x', 'y', 'zz', '\x00\xff'])),
      lease: ignoreLease && r.chance(0.8) ? 0n : r.pick([0n, 0n, 1n, 2n, -5n]),
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
    if (target === 'lease') return { ...base, target, value: r.pick([0n, 1n, 2n]) };
    return { ...base, target, value: r.int(rev + 2) };
  };
  const ops = (depth: number): RequestOp[] =>
    Array.from({ length: r.int(5) }, (): RequestOp => {
      const k = r.int(10);
      if (k < 3) return { range: range() };
      if (k < 7) return { put: put() };
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

const kv = (x: KeyValue): MKv => ({
  key: x.key.toString('latin1'),
  create: x.createRevision,
  mod: x.modRevision,
  ver: x.version,
  value: x.value.toString('latin1'),
  lease: x.lease,
});

function norm(resp: ResponseOp): MResp {
  if ('range' in resp) return { range: { ...resp.range, kvs: resp.range.kvs.map(kv) } };
  if ('put' in resp) return { put: resp.put.prevKv ? { revision: resp.put.revision, prevKv: kv(resp.put.prevKv) } : { revision: resp.put.revision } };
  if ('deleteRange' in resp) return { deleteRange: { ...resp.deleteRange, prevKvs: resp.deleteRange.prevKvs.map(kv) } };
  return { txn: { ...resp.txn, responses: resp.txn.responses.map(norm) } };
}

async function outcome<T>(f: () => Promise<T>): Promise<{ ok: T } | { err: string }> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (e instanceof MvccError || e instanceof ModelError) return { err: e.code };
    throw e;
  }
}

async function apply(store: MvccStore, e: Entry, index: number): Promise<{ ok: unknown } | { err: string }> {
  switch (e.kind) {
    case 'put':
      return outcome(async () => norm({ put: await store.put(e.op, index) }));
    case 'del':
      return outcome(async () => norm({ deleteRange: await store.deleteRange(e.op, index) }));
    case 'txn':
      return outcome(async () => norm({ txn: await store.txn(e.op, index) }));
    case 'compact':
      return outcome(async () => {
        await store.compact(e.rev, index);
        return null;
      });
    case 'none':
      store.setConsistentIndex(index);
      return { ok: null };
  }
}

function applyModel(m: Model, e: Entry): { ok: unknown } | { err: string } {
  try {
    switch (e.kind) {
      case 'put':
        return { ok: m.put(e.op) };
      case 'del':
        return { ok: m.deleteRange(e.op) };
      case 'txn':
        return { ok: m.txn(e.op) };
      case 'compact':
        m.compact(e.rev);
        return { ok: null };
      case 'none':
        return { ok: null };
    }
  } catch (err) {
    if (err instanceof ModelError) return { err: err.code };
    throw err;
  }
}

async function restoreCopy(store: MvccStore): Promise<string> {
  const dir = scratchDir();
  removeDir(dir);
  await MvccStore.restore(dir, store.snapshot().stream);
  return dir;
}

async function runSequence(seed: number, steps: number): Promise<void> {
  const r = new Rng(seed);
  const maxTxnOps = 4;
  const m = new Model(maxTxnOps);
  let dir = scratchDir();
  let store = await MvccStore.open({ dir, maxTxnOps });
  const log: Entry[] = [];
  const dirs = [dir];
  const ctx = () => `seed ${seed} step ${log.length}`;
  try {
    for (let step = 0; step < steps; step++) {
      const g = gen(r, m.rev, m.compactRev);
      const k = r.int(20);
      if (k < 6) {
        const req = g.range();
        const got = await outcome(async () => norm({ range: await store.range(req) }));
        const want = (() => {
          try {
            return { ok: m.range(req) };
          } catch (e) {
            return { err: (e as ModelError).code };
          }
        })();
        expect(got, ctx()).toEqual(want);
        continue;
      }
      const e: Entry =
        k < 10
          ? { kind: 'put', op: g.put() }
          : k < 12
            ? { kind: 'del', op: g.del() }
            : k < 17
              ? { kind: 'txn', op: g.txn() }
              : k < 18
                ? { kind: 'compact', rev: m.compactRev + r.int(m.rev - m.compactRev + 2) - 1 }
                : { kind: 'none' };
      log.push(e);
      const got = await apply(store, e, log.length);
      expect(got, ctx()).toEqual(applyModel(m, e));
      expect(store.currentRevision, ctx()).toBe(m.rev);
      if (r.chance(0.3)) await store.commit();
      if (r.chance(0.02)) {
        await store.close();
        store = await MvccStore.open({ dir, maxTxnOps });
        expect(store.consistentIndex, ctx()).toBe(log.length);
      }
      if (r.chance(0.01)) {
        // crash: only the last commit survives; replay the log past its consistent index
        const copy = await restoreCopy(store);
        dirs.push(copy);
        await store.close();
        dir = copy;
        store = await MvccStore.open({ dir, maxTxnOps });
        const replay = new Model(maxTxnOps);
        const from = store.consistentIndex;
        for (let i = 0; i < log.length; i++) {
          const want = applyModel(replay, log[i]!);
          if (i + 1 <= from) continue;
          expect(await apply(store, log[i]!, i + 1), `${ctx()} replay ${i + 1}`).toEqual(want);
        }
        expect(store.currentRevision, ctx()).toBe(m.rev);
      }
    }
    await store.commit();
    // full state and history agree with the model
    const all = await store.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0) });
    expect(all.kvs.map(kv)).toEqual(m.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0) }).range.kvs);
    const got: WatchResponseOut[] = [];
    const ws = store.newWatchStream((x) => (got.push(x), true));
    // from just after the compaction: at the compact revision itself physical compaction may
    // drop records (a key put and deleted there), depending on its progress
    const start = Math.max(1, m.compactRev + 1);
    ws.watch({ key: Buffer.of(0), rangeEnd: Buffer.of(0), startRevision: start, prevKv: true });
    while (!ws.isSynced(0)) await new Promise((resolve) => setImmediate(resolve));
    // a tombstone at exactly the compact revision is removed by physical compaction,
    // so whether it is replayed depends on that background job (in etcd too)
    const atCompaction = (type: string, mod: number) => type === 'delete' && mod === m.compactRev;
    const events = got.flatMap((x) => x.events).filter((ev) => !atCompaction(ev.type, ev.kv.modRevision));
    const wantEvents = m.events.filter((ev) => ev.mod >= start && !atCompaction(ev.type, ev.mod));
    expect(
      events.map((ev) => ({ type: ev.type, key: ev.kv.key.toString('latin1'), mod: ev.kv.modRevision, kv: ev.type === 'put' ? kv(ev.kv) : undefined, prev: ev.prevKv && kv(ev.prevKv) })),
      ctx(),
    ).toEqual(
      wantEvents.map((ev) => ({
        ...ev,
        // prev_kv is the key at mod-1: none for creates, left out when compacted
        prev: ev.mod - 1 >= m.compactRev && !(ev.type === 'put' && ev.kv!.create === ev.mod) ? m.at(ev.key, ev.mod - 1) : undefined,
      })),
    );
    ws.close();
  } finally {
    await store.close();
    for (const d of dirs) removeDir(d);
  }
}

describe('model-based randomized test', () => {
  it('matches the reference model over random sequences with reopen and crash-replay', async () => {
    // 300 sequences (~18,000 operations) by default; MVCC_MODEL_SEQUENCES=5000 for a long run
    const sequences = Number(process.env.MVCC_MODEL_SEQUENCES ?? 300);
    const base = Number(process.env.MVCC_MODEL_SEED ?? 1);
    for (let i = 0; i < sequences; i++) await runSequence(base + i, 60);
  }, 600_000);
});
