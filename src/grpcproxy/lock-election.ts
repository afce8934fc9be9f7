// v3lockpb.Lock and v3electionpb.Election through the proxy: passed to the cluster, with
// lock and election names (and the keys that come back) inside --namespace. etcd's
// proxy passes them without the namespace, so its locks and elections are shared
// across namespaces; here a namespace holds its own.

import type { ServiceImplementation, StreamCall } from '../server/grpc/call.js';
import { proxied } from './call.js';
import type { Namespace } from './namespace.js';
import { pipeServerStream } from './passthrough.js';
import { forwardedMetadata, methodsOf, type Upstream } from './upstream.js';

const Lock = methodsOf('v3lockpb.Lock');
const Election = methodsOf('v3electionpb.Election');

interface LeaderKey { name: Buffer; key: Buffer }
interface KvHolder { kv?: { key: Buffer } | null }

export function lockProxy(upstream: Upstream, ns: Namespace): ServiceImplementation {
  return {
    Lock: proxied(async (req: { name: Buffer }, call, cancelled) => {
      const resp = await upstream.unary<{ key: Buffer }>(Lock.Lock!, { ...req, name: ns.key(req.name) }, forwardedMetadata(call.metadata), cancelled);
      resp.key = ns.strip(resp.key);
      return resp;
    }),
    Unlock: proxied((req: { key: Buffer }, call, cancelled) =>
      upstream.unary<object>(Lock.Unlock!, { ...req, key: ns.key(req.key) }, forwardedMetadata(call.metadata), cancelled),
    ),
  };
}

export function electionProxy(upstream: Upstream, ns: Namespace): ServiceImplementation {
  const inside = (l: LeaderKey | null | undefined): LeaderKey | null => (l ? { ...l, name: ns.key(l.name), key: ns.key(l.key) } : null);
  const outside = (l: LeaderKey | null | undefined): void => {
    if (!l) return;
    l.name = ns.strip(l.name);
    l.key = ns.strip(l.key);
  };
  const stripKv = (r: KvHolder): KvHolder => {
    ns.kv(r.kv);
    return r;
  };
  return {
    Campaign: proxied(async (req: { name: Buffer }, call, cancelled) => {
      const resp = await upstream.unary<{ leader?: LeaderKey | null }>(Election.Campaign!, { ...req, name: ns.key(req.name) }, forwardedMetadata(call.metadata), cancelled);
      outside(resp.leader);
      return resp;
    }),
    Proclaim: proxied((req: { leader?: LeaderKey | null }, call, cancelled) =>
      upstream.unary<object>(Election.Proclaim!, { ...req, leader: inside(req.leader) }, forwardedMetadata(call.metadata), cancelled),
    ),
    Leader: proxied(async (req: { name: Buffer }, call, cancelled) =>
      stripKv(await upstream.unary<KvHolder>(Election.Leader!, { ...req, name: ns.key(req.name) }, forwardedMetadata(call.metadata), cancelled)),
    ),
    Observe: (call: StreamCall<{ name: Buffer }, object>) =>
      pipeServerStream(upstream, Election.Observe!, { ...call.request, name: ns.key(call.request.name) }, call, (r) => stripKv(r as KvHolder)),
    Resign: proxied((req: { leader?: LeaderKey | null }, call, cancelled) =>
      upstream.unary<object>(Election.Resign!, { ...req, leader: inside(req.leader) }, forwardedMetadata(call.metadata), cancelled),
    ),
  };
}
