// etcdserverpb.Lease through the proxy (etcd's leaseProxy). Grant, revoke, time-to-live
// and the lease list pass through. Keep-alives are coalesced per lease: however many
// clients keep one lease alive through the proxy, at most one keep-alive for it is on
// its way to the cluster at a time, and its answer answers every request that waited.

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServiceImplementation, StreamCall } from '../server/grpc/call.js';
import { Errors } from '../server/errors.js';
import { type Int64, toBigInt } from '../server/pb.js';
import { proxied } from './call.js';
import type { LeaderMonitor } from './leader.js';
import type { Namespace } from './namespace.js';
import { forwardedMetadata, methodsOf, type Upstream } from './upstream.js';

const Lease = methodsOf('etcdserverpb.Lease');

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

interface KeepAliveResponse { ID: Int64; TTL: Int64 }
type Waiter = (resp: KeepAliveResponse) => void;

/** The keep-alives of one auth token, on one upstream stream. */
export class KeepAliveCoalescer {
  private stream: grpc.ClientDuplexStream<object, object> | undefined;
  /** per lease, the requests waiting for its next answer */
  private readonly waiting = new Map<bigint, Waiter[]>();
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly metadata: grpc.Metadata,
    private readonly log: Logger,
  ) {}

  /** `waiter` gets the cluster's next answer for lease `id`. */
  keepAlive(id: Int64, waiter: Waiter): void {
    const lease = toBigInt(id);
    const waiters = this.waiting.get(lease);
    if (waiters !== undefined) {
      waiters.push(waiter); // one is on its way already
      return;
    }
    this.waiting.set(lease, [waiter]);
    if (this.stream !== undefined) this.stream.write({ ID: id });
    else if (this.retryTimer === undefined) this.open();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
  }

  private open(): void {
    if (this.closed) return;
    const stream = this.upstream.bidi(Lease.LeaseKeepAlive!, this.metadata);
    this.stream = stream;
    for (const lease of this.waiting.keys()) stream.write({ ID: lease.toString() });
    stream.on('data', (resp: KeepAliveResponse) => {
      this.retryMs = RETRY_MIN_MS;
      const lease = toBigInt(resp.ID);
      const waiters = this.waiting.get(lease);
      this.waiting.delete(lease);
      for (const w of waiters ?? []) w(resp);
    });
    const broken = (why: string): void => {
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      if (this.waiting.size === 0) return; // opened again by the next keep-alive
      this.log.warn({ error: why, 'retry-in-ms': this.retryMs }, 'upstream lease keep-alive stream broke; sending again on the next endpoint');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.open();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    };
    stream.on('error', (err: grpc.ServiceError) => broken(err.details || err.message));
    stream.on('end', () => broken('the stream ended'));
  }
}

export interface LeaseProxyDeps {
  upstream: Upstream;
  ns: Namespace;
  leader: LeaderMonitor;
  keepAlives: (token: string) => KeepAliveCoalescer;
}

export function leaseProxy(deps: LeaseProxyDeps): ServiceImplementation {
  const { upstream, ns } = deps;
  const pass = (method: string) =>
    proxied((req: object, call, cancelled) => upstream.unary<object>(Lease[method]!, req, forwardedMetadata(call.metadata), cancelled));
  return {
    LeaseGrant: pass('LeaseGrant'),
    LeaseRevoke: pass('LeaseRevoke'),
    LeaseLeases: pass('LeaseLeases'),
    LeaseTimeToLive: proxied(async (req: object, call, cancelled) => {
      const resp = await upstream.unary<{ keys: Buffer[] }>(Lease.LeaseTimeToLive!, req, forwardedMetadata(call.metadata), cancelled);
      if (!ns.empty) resp.keys = (resp.keys ?? []).map((k) => ns.strip(k));
      return resp;
    }),
    LeaseKeepAlive: (call: StreamCall<never, object>) => keepAliveStream(deps, call),
  };
}

/** One client's keep-alive stream: each request answered once, in the order answers come. */
function keepAliveStream(deps: LeaseProxyDeps, call: StreamCall<never, object>): void {
  let closed = false;
  let stopLeaderWatch: (() => void) | undefined;
  const close = (): void => {
    closed = true;
    stopLeaderWatch?.();
  };
  const fail = (): void => {
    if (closed) return;
    close();
    call.emit('error', { code: Errors.noLeader.code, details: Errors.noLeader.message });
  };
  if (call.metadata.get('hasleader')[0] === 'true') {
    if (!deps.leader.hasLeader) return fail();
    stopLeaderWatch = deps.leader.onLost(fail);
  }
  const coalescer = deps.keepAlives(String(call.metadata.get('token')[0] ?? ''));
  call.on('data', (req: { ID: Int64 }) => {
    if (closed) return;
    coalescer.keepAlive(req.ID, (resp) => {
      if (!closed) call.write(resp);
    });
  });
  // a client that half-closes has said all it will: the stream ends as etcd's does
  call.on('end', () => {
    if (closed) return;
    close();
    call.end();
  });
  call.on('error', close);
  call.on('cancelled', close);
}
