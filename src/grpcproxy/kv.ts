// etcdserverpb.KV through the proxy (etcd's kvProxy): serializable ranges answered from
// the cache when it has them, everything else sent to the cluster; linearizable answers
// are cached as serializable ones, writes drop what they touch.

import type { ServiceImplementation } from '../server/grpc/call.js';
import { type Int64, toNumber, type } from '../server/pb.js';
import type { RangeCache } from './cache.js';
import { proxied } from './call.js';
import type { ProxyMetrics } from './metrics.js';
import type { Namespace, TxnReq, TxnResp } from './namespace.js';
import { forwardedMetadata, methodsOf, type Upstream } from './upstream.js';

const KV = methodsOf('etcdserverpb.KV');
const RangeRequest = type('etcdserverpb.RangeRequest');
const TxnRequest = type('etcdserverpb.TxnRequest');

interface RangeReq { key: Buffer; range_end: Buffer; revision: Int64; serializable: boolean }
interface KeyValues { kvs: Array<{ key: Buffer }> }
interface DeleteReq { key: Buffer; range_end: Buffer }
interface TxnOps {
  success: Array<{ request_range?: RangeReq | null; request_put?: { key: Buffer } | null; request_delete_range?: DeleteReq | null }>;
  failure: TxnOps['success'];
  compare: Array<{ key: Buffer; range_end: Buffer }>;
}
interface TxnResponse { succeeded: boolean; responses: Array<{ response_range?: KeyValues | null }> }

/**
 * The cache key of a range: the request as a serializable one, and the caller's token,
 * so that with auth on one user never reads what another was allowed to (etcd's cache
 * ignores the token).
 */
function cacheId(req: RangeReq, token: string): string {
  return `${token}\n${Buffer.from(RangeRequest.encode({ ...req, serializable: true }).finish()).toString('latin1')}`;
}

export function kvProxy(upstream: Upstream, ns: Namespace, cache: RangeCache, metrics: ProxyMetrics): ServiceImplementation {
  const tokenOf = (md: { get(k: string): Array<string | Buffer> }): string => String(md.get('token')[0] ?? '');
  const cached = (): void => metrics.cacheKeys.set(cache.size);

  /** Updates the cache from a txn's answer (etcd's txnToCache): the branch that ran. */
  const txnToCache = (req: TxnOps, resp: TxnResponse, token: string): void => {
    const ops = resp.succeeded ? req.success : req.failure;
    resp.responses.forEach((r, i) => {
      const op = ops[i];
      if (op?.request_put) cache.invalidate(op.request_put.key, undefined);
      else if (op?.request_delete_range) cache.invalidate(op.request_delete_range.key, op.request_delete_range.range_end);
      else if (op?.request_range && r.response_range) cache.add(cacheId(op.request_range, token), op.request_range, r.response_range);
    });
  };

  return {
    Range: proxied(async (req: RangeReq, call, cancelled) => {
      const token = tokenOf(call.metadata);
      const id = cacheId(req, token);
      if (req.serializable) {
        const hit = cache.get(id, req);
        if (hit !== undefined) {
          metrics.cacheHits.inc();
          return hit;
        }
        metrics.cacheMisses.inc();
      }
      const out = { ...req };
      ns.range(out);
      const resp = await upstream.unary<KeyValues>(KV.Range!, out, forwardedMetadata(call.metadata), cancelled);
      ns.kvs(resp.kvs);
      // a linearizable answer is as good as a serializable one
      cache.add(id, req, resp);
      cached();
      return resp;
    }),

    Put: proxied(async (req: { key: Buffer }, call, cancelled) => {
      cache.invalidate(req.key, undefined);
      cached();
      const out = { ...req };
      ns.put(out);
      const resp = await upstream.unary<{ prev_kv?: { key: Buffer } | null }>(KV.Put!, out, forwardedMetadata(call.metadata), cancelled);
      ns.kv(resp.prev_kv);
      return resp;
    }),

    DeleteRange: proxied(async (req: DeleteReq, call, cancelled) => {
      cache.invalidate(req.key, req.range_end);
      cached();
      const out = { ...req };
      ns.range(out);
      const resp = await upstream.unary<{ prev_kvs: Array<{ key: Buffer }> }>(KV.DeleteRange!, out, forwardedMetadata(call.metadata), cancelled);
      ns.kvs(resp.prev_kvs);
      return resp;
    }),

    Txn: proxied(async (req: TxnOps, call, cancelled) => {
      // the request as the client wrote it stays for the cache; the copy gets the namespace
      const out = ns.empty ? req : (TxnRequest.decode(TxnRequest.encode(req).finish()) as unknown as TxnOps);
      ns.txn(out as unknown as TxnReq);
      const resp = await upstream.unary<TxnResponse>(KV.Txn!, out, forwardedMetadata(call.metadata), cancelled);
      ns.txnResp(resp as unknown as TxnResp);
      // a txn may claim an outdated key is current: what it compared goes too
      for (const c of req.compare ?? []) cache.invalidate(c.key, c.range_end);
      txnToCache(req, resp, tokenOf(call.metadata));
      cached();
      return resp;
    }),

    Compact: proxied(async (req: { revision: Int64 }, call, cancelled) => {
      const resp = await upstream.unary<object>(KV.Compact!, req, forwardedMetadata(call.metadata), cancelled);
      cache.compact(toNumber(req.revision));
      return resp;
    }),
  };
}
