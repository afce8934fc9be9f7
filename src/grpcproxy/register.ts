// --resolver-prefix with --resolver-ttl: the proxy registers its --advertise-client-url
// under `<prefix>/<addr>` with a lease of that TTL, kept alive while it runs and made
// again if it is lost (etcd's grpcproxy.Register). The value is what etcd's endpoints
// manager writes, so etcd's proxies and etcd-ts's list each other.

import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type Int64, toNumber } from '../server/pb.js';
import type { KeepAliveCoalescer } from './lease.js';
import type { Namespace } from './namespace.js';
import { methodsOf, type Upstream } from './upstream.js';

const Lease = methodsOf('etcdserverpb.Lease');
const KV = methodsOf('etcdserverpb.KV');
/** etcd tries to register again once a second */
const RETRY_MS = 1_000;

/** The registration value (endpoints' internal.Update: Op 0 is Add; Metadata is JSON in a string). */
export function registrationValue(addr: string): string {
  return JSON.stringify({ Op: 0, Addr: addr, Metadata: JSON.stringify({ name: os.hostname() }) });
}

export interface RegisterOptions {
  upstream: Upstream;
  ns: Namespace;
  keepAlives: KeepAliveCoalescer;
  prefix: string;
  addr: string;
  ttlSeconds: number;
  log: Logger;
}

/** Registers until the returned function is called. */
export function register(o: RegisterOptions): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const md = new grpc.Metadata();

  const keepAlive = (lease: Int64): void => {
    if (stopped) return;
    o.keepAlives.keepAlive(lease, (resp) => {
      if (stopped) return;
      if (toNumber(resp.TTL) <= 0) {
        o.log.warn('session expired; possible network partition or server restart');
        o.log.warn('creating a new session to rejoin');
        return attempt();
      }
      // as clientv3's session: a keep-alive every third of the TTL
      timer = setTimeout(() => keepAlive(lease), (o.ttlSeconds * 1000) / 3);
    });
  };

  const attempt = (): void => {
    if (stopped) return;
    void (async () => {
      const grant = await o.upstream.unary<{ ID: Int64 }>(Lease.LeaseGrant!, { TTL: o.ttlSeconds, ID: 0 }, md);
      const key = o.ns.key(Buffer.from(`${o.prefix}/${o.addr}`));
      const put = { key, value: Buffer.from(registrationValue(o.addr)), lease: grant.ID };
      await o.upstream.unary(KV.Txn!, { compare: [], success: [{ request_put: put }], failure: [] }, md);
      o.log.info(`registered ${JSON.stringify(o.addr)} with ${o.ttlSeconds}-second lease`);
      keepAlive(grant.ID);
    })().catch((err: unknown) => {
      o.log.warn({ error: (err as grpc.ServiceError).details ?? String(err) }, 'failed to create a session');
      timer = setTimeout(attempt, RETRY_MS);
    });
  };

  attempt();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
