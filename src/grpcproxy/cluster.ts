// etcdserverpb.Cluster through the proxy (etcd's clusterProxy). With an advertise
// address (the default is 127.0.0.1:23790) the member list is the proxies: the ones
// registered under --resolver-prefix when there are any, else this proxy alone, named
// after the host, so clients that sync their endpoints from it keep using proxies.
// Membership changes pass through; promoting a learner is not implemented, as in etcd.

import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServiceImplementation } from '../server/grpc/call.js';
import { prefixEnd } from '../server/concurrency/ops.js';
import { toNumber } from '../server/pb.js';
import { proxied } from './call.js';
import type { Namespace } from './namespace.js';
import { passThrough } from './passthrough.js';
import { methodsOf, type Upstream } from './upstream.js';
import type { PbWatchResponse, UpstreamWatch, UpstreamWatchStream, WatchTarget } from './watch-upstream.js';

const KV = methodsOf('etcdserverpb.KV');
const RETRY_MS = 1_000;
const EVENT_DELETE = 1;

interface Registered { addr: string; name: string }

/** A registration value as etcd's endpoints manager writes it; undefined when it is not one. */
function parseRegistration(value: Buffer): Registered | undefined {
  try {
    const v = JSON.parse(value.toString()) as { Addr?: unknown; Metadata?: unknown };
    if (typeof v.Addr !== 'string') return undefined;
    const meta = typeof v.Metadata === 'string' ? (JSON.parse(v.Metadata) as { name?: unknown }) : {};
    return { addr: v.Addr, name: typeof meta.name === 'string' ? meta.name : '' };
  } catch {
    return undefined;
  }
}

/** The proxies registered under a prefix, read once and then followed by a watch. */
export class RegisteredProxies implements WatchTarget {
  readonly members = new Map<string, Registered>();
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  private rev = 0;
  private watch: UpstreamWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly stream: UpstreamWatchStream,
    ns: Namespace,
    prefix: string,
    private readonly log: Logger,
  ) {
    this.key = ns.key(Buffer.from(prefix));
    this.rangeEnd = prefixEnd(this.key);
  }

  start(): void {
    if (this.stopped) return;
    const req = { key: this.key, range_end: this.rangeEnd, serializable: true };
    this.upstream.unary<{ header: { revision: number }; kvs: Array<{ key: Buffer; value: Buffer }> }>(KV.Range!, req, new grpc.Metadata()).then(
      (resp) => {
        this.members.clear();
        for (const kv of resp.kvs) this.update(kv.key, kv.value);
        this.rev = toNumber(resp.header.revision) + 1;
        if (!this.stopped) this.watch = this.stream.watch(this);
      },
      (err: grpc.ServiceError) => this.retry(err.details),
    );
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watch?.cancel();
  }

  resumeRevision(): number {
    return this.rev;
  }

  onResponse(resp: PbWatchResponse): void {
    if (resp.canceled) return this.retry(resp.cancel_reason);
    for (const ev of resp.events ?? []) {
      if (!ev.kv) continue;
      if (ev.type === EVENT_DELETE) this.members.delete(ev.kv.key.toString('latin1'));
      else this.update(ev.kv.key, (ev.kv as { value?: Buffer }).value ?? Buffer.alloc(0));
      this.rev = toNumber(ev.kv.mod_revision) + 1;
    }
  }

  private update(key: Buffer, value: Buffer): void {
    const r = parseRegistration(value);
    if (r === undefined) this.log.warn({ key: key.toString() }, 'unmarshal endpoint update failed');
    else this.members.set(key.toString('latin1'), r);
  }

  private retry(why: string): void {
    this.log.warn({ prefix: this.key.toString(), error: why }, 'failed to resolve registered proxies; retrying');
    this.watch = undefined;
    this.timer = setTimeout(() => this.start(), RETRY_MS);
  }
}

export function clusterProxy(upstream: Upstream, advertise: string, registered: RegisteredProxies | undefined): ServiceImplementation {
  const pass = passThrough(upstream, 'etcdserverpb.Cluster');
  return {
    ...pass,
    MemberList: advertise === ''
      ? pass.MemberList!
      : proxied(async () => {
          const proxies = [...(registered?.members.values() ?? [])];
          if (proxies.length > 0) return { members: proxies.map((p) => ({ name: p.name, clientURLs: [p.addr] })) };
          return { members: [{ name: os.hostname(), clientURLs: [advertise] }] };
        }),
    MemberPromote: proxied(() => Promise.reject({ code: grpc.status.UNKNOWN, details: 'not implemented' })),
  };
}
