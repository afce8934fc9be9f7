// Model-based randomized test: random operation sequences applied to the store and to
// the reference model (model.ts), every response compared; with commits at random
// points, close/reopen, crash-replay of the same raft indexes from a snapshot of the
// last commit, and a watcher replaying history checked against the model's events.

import { describe, expect, it } from 'vitest';
import { MvccError, MvccStore, type WatchResponseOut } from '../../src/mvcc/index.js';
import { Rng, gen, kv, norm, type Entry } from './gen.js';
import { copyStore, removeDir, scratchDir } from './helpers.js';
import { Model, ModelError } from './model.js';

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


async function runSequence(seed: number, steps: number): Promise<void> {
  const r = new Rng(seed);
  const maxTxnOps = 4;
  // room for about 6 of the 20 keys' values: reads take both the cache and LevelDB paths
  const valueCacheBytes = 1000;
  const m = new Model(maxTxnOps);
  let dir = scratchDir();
  let store = await MvccStore.open({ dir, maxTxnOps, valueCacheBytes });
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
        store = await MvccStore.open({ dir, maxTxnOps, valueCacheBytes });
        expect(store.consistentIndex, ctx()).toBe(log.length);
      }
      if (r.chance(0.01)) {
        // crash: only the last commit survives; replay the log past its consistent index
        const copy = await copyStore(store);
        dirs.push(copy.dir);
        await store.close();
        dir = copy.dir;
        store = await MvccStore.open({ dir, maxTxnOps, valueCacheBytes, restored: copy.restored });
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
    await store.flushed();
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
