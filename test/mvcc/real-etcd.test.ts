// Differential test against a real etcd 3.4.23: the same random requests (puts,
// deletes, txns with nested txns and every compare, historical ranges, compactions)
// go to both, and every response, error string and HashKV value must be equal.

import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MvccError, type Compare, type RangeRequest, type RequestOp, type TxnRequest, type WatchResponseOut } from '../../src/mvcc/index.js';
import { Rng, gen, kv as mkv, norm, type GenOptions } from './gen.js';
import { Harness } from './helpers.js';
import type { MKv, MResp } from './model.js';
import { RealEtcd } from './real-etcd.js';

let etcd: RealEtcd;
beforeAll(async () => {
  etcd = await RealEtcd.start();
});
afterAll(async () => {
  await etcd?.stop();
});

// ---- our request shapes -> etcdserverpb messages ----

const SORT_ORDER = { none: 0, ascend: 1, descend: 2 };
const SORT_TARGET = { key: 0, version: 1, create: 2, mod: 3, value: 4 };
const RESULT = { equal: 0, greater: 1, less: 2, not_equal: 3 };
const TARGET = { version: 0, create: 1, mod: 2, value: 3, lease: 4 };

// An empty range_end must stay off the wire: etcd (gogoproto) reads an explicitly empty
// one as a non-nil empty slice and then ranges from the key to the end.
const end = (e: Buffer | undefined) => (e && e.length > 0 ? { range_end: e } : {});

const pbRange = (r: RangeRequest) => ({
  key: r.key,
  ...end(r.rangeEnd),
  limit: r.limit ?? 0,
  revision: r.revision ?? 0,
  sort_order: SORT_ORDER[r.sortOrder ?? 'none'],
  sort_target: SORT_TARGET[r.sortTarget ?? 'key'],
  keys_only: !!r.keysOnly,
  count_only: !!r.countOnly,
  min_mod_revision: r.minModRevision ?? 0,
  max_mod_revision: r.maxModRevision ?? 0,
  min_create_revision: r.minCreateRevision ?? 0,
  max_create_revision: r.maxCreateRevision ?? 0,
});
const pbPut = (p: Extract<RequestOp, { put: unknown }>['put']) => ({
  key: p.key,
  value: p.value,
  lease: p.lease.toString(),
  prev_kv: !!p.prevKv,
  ignore_value: !!p.ignoreValue,
  ignore_lease: !!p.ignoreLease,
});
const pbDel = (d: Extract<RequestOp, { deleteRange: unknown }>['deleteRange']) => ({
  key: d.key,
  ...end(d.rangeEnd),
  prev_kv: !!d.prevKv,
});
const pbCompare = (c: Compare) => {
  const field = { version: 'version', create: 'create_revision', mod: 'mod_revision', value: 'value', lease: 'lease' }[c.target];
  return {
    key: c.key,
    ...end(c.rangeEnd),
    result: RESULT[c.result],
    target: TARGET[c.target],
    [field]: typeof c.value === 'bigint' ? c.value.toString() : c.value,
  };
};
const pbOp = (op: RequestOp): object =>
  'range' in op
    ? { request_range: pbRange(op.range) }
    : 'put' in op
      ? { request_put: pbPut(op.put) }
      : 'deleteRange' in op
        ? { request_delete_range: pbDel(op.deleteRange) }
        : { request_txn: pbTxn(op.txn) };
const pbTxn = (t: TxnRequest) => ({ compare: t.compare.map(pbCompare), success: t.success.map(pbOp), failure: t.failure.map(pbOp) });

// ---- etcd responses -> the model's plain shape ----

const ekv = (x: any): MKv => ({
  key: x.key.toString('latin1'),
  create: Number(x.create_revision),
  mod: Number(x.mod_revision),
  ver: Number(x.version),
  value: x.value.toString('latin1'),
  lease: BigInt(x.lease),
});
const rev = (x: any) => Number(x.header?.revision ?? 0);
const eRange = (x: any): MResp => ({ range: { revision: rev(x), kvs: x.kvs.map(ekv), more: x.more, count: Number(x.count) } });
const ePut = (x: any): MResp => ({ put: x.prev_kv ? { revision: rev(x), prevKv: ekv(x.prev_kv) } : { revision: rev(x) } });
const eDel = (x: any): MResp => ({ deleteRange: { revision: rev(x), deleted: Number(x.deleted), prevKvs: x.prev_kvs.map(ekv) } });
const eTxn = (x: any): MResp => ({
  txn: {
    revision: rev(x),
    succeeded: x.succeeded,
    responses: x.responses.map((r: any) =>
      r.response_range ? eRange(r.response_range) : r.response_put ? ePut(r.response_put) : r.response_delete_range ? eDel(r.response_delete_range) : eTxn(r.response_txn),
    ),
  },
});

async function both<T>(ours: () => Promise<T>, theirs: () => Promise<T>, what?: unknown): Promise<void> {
  const run = async (f: () => Promise<T>, mine: boolean) => {
    try {
      return { ok: await f() };
    } catch (e: any) {
      if (mine) {
        if (!(e instanceof MvccError)) throw e;
        return { err: e.grpcMessage };
      }
      if (typeof e?.code !== 'number') throw e;
      return { err: e.details as string };
    }
  };
  const theirsFirst = await run(theirs, false);
  expect(await run(ours, true), what === undefined ? undefined : inspect(what, { depth: 9 })).toEqual(theirsFirst);
}

describe('against real etcd 3.4.23', () => {
  it('answers random requests exactly like etcd, and HashKV agrees', async () => {
    // a value cache with room for a few keys only: reads take both the cache and LevelDB paths
    const h = await Harness.open({ valueCacheBytes: 1000 });
    try {
      for (const id of ['1', '2']) await etcd.call('lease', 'LeaseGrant', { ID: id, TTL: 100_000 });
      const opts: GenOptions = { leases: [0n, 0n, 1n, 2n], ignoreInTxn: false };
      const r = new Rng(Number(process.env.MVCC_ETCD_SEED ?? 7));
      let compactRev = -1;
      const hashes = async (at: number) =>
        both(
          async () => {
            const x = await h.store.hashKV(at);
            return { hash: x.hash, compact: x.compactRevision };
          },
          async () => {
            const x = await etcd.call('maint', 'HashKV', { revision: at });
            return { hash: x.hash, compact: Number(x.compact_revision) };
          },
        );
      for (let step = 0; step < Number(process.env.MVCC_ETCD_STEPS ?? 400); step++) {
        const g = gen(r, h.store.currentRevision, compactRev, opts);
        const k = r.int(20);
        if (k < 6) {
          const req = g.range();
          await both(async () => norm({ range: await h.store.range(req) }), async () => eRange(await etcd.call('kv', 'Range', pbRange(req))), req);
        } else if (k < 10) {
          const req = g.put();
          await both(
            async () => norm({ put: await h.store.put(req, ++h.index).finally(() => h.commit()) }),
            async () => ePut(await etcd.call('kv', 'Put', pbPut(req))),
          );
        } else if (k < 12) {
          const req = g.del();
          await both(
            async () => norm({ deleteRange: await h.store.deleteRange(req, ++h.index).finally(() => h.commit()) }),
            async () => eDel(await etcd.call('kv', 'DeleteRange', pbDel(req))),
          );
        } else if (k < 18) {
          const req = g.txn();
          await both(
            async () => norm({ txn: await h.store.txn(req, ++h.index).finally(() => h.commit()) }),
            async () => eTxn(await etcd.call('kv', 'Txn', pbTxn(req))),
          );
        } else if (k < 19) {
          const at = compactRev + r.int(h.store.currentRevision - compactRev + 2) - 1;
          await both(
            async () => {
              const { done } = await h.store.compact(at, ++h.index).finally(() => h.commit());
              await done;
              return null;
            },
            async () => {
              await etcd.call('kv', 'Compact', { revision: at, physical: true });
              return null;
            },
          );
          compactRev = h.store.compactRevision;
        } else if (k < 20 && r.chance(0.3)) {
          await h.reopen();
        } else {
          await hashes(0);
          await hashes(Math.max(1, compactRev + 1) + r.int(Math.max(1, h.store.currentRevision - compactRev)));
        }
      }
      await hashes(0);
      expect(h.store.currentRevision).toBeGreaterThan(100);
      // the whole history (after the compaction) through a watch, prev_kv included
      const from = Math.max(1, compactRev + 1);
      const upTo = h.store.currentRevision;
      const ours: WatchResponseOut[] = [];
      const ws = h.store.newWatchStream((x) => (ours.push(x), true));
      ws.watch({ key: Buffer.of(0), rangeEnd: Buffer.of(0), startRevision: from, prevKv: true });
      while (!ws.isSynced(0)) await new Promise((res) => setImmediate(res));
      const theirs = await etcd.watchAll(from, upTo);
      const ev = (type: string, kv: MKv, prev: MKv | undefined) => ({ type, kv, prev });
      expect(ours.flatMap((x) => x.events).map((e) => ev(e.type, mkv(e.kv), e.prevKv && mkv(e.prevKv)))).toEqual(
        theirs.map((e: any) => ev(e.type === 1 ? 'delete' : 'put', ekv(e.kv), e.prev_kv ? ekv(e.prev_kv) : undefined)),
      );
    } finally {
      await h.close();
    }
  }, 120_000);

});
