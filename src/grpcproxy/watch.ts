// etcdserverpb.Watch through the proxy (etcd's watchProxy): each client watcher is
// served by a broadcast (watch-broadcast.ts), so many clients watching one range cost
// the cluster one watch. Each create is checked first with a one-key serializable read
// under the client's token, as etcd's proxy checks permission.

import type * as grpc from '@grpc/grpc-js';
import type { ServiceImplementation, StreamCall } from '../server/grpc/call.js';
import { Errors } from '../server/errors.js';
import { GRPC_CODE_NAMES } from '../server/metrics.js';
import { type Int64, toNumber } from '../server/pb.js';
import type { LeaderMonitor } from './leader.js';
import type { Namespace } from './namespace.js';
import { forwardedMetadata, methodsOf, type Upstream } from './upstream.js';
import type { Receiver, WatchRanges } from './watch-broadcast.js';
import type { PbEvent, PbWatchResponse } from './watch-upstream.js';

const Range = methodsOf('etcdserverpb.KV').Range!;

const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;
const EVENT_PUT = 0;
/** etcd's InvalidWatchID */
const INVALID_WATCH_ID = -1;
/**
 * A client that takes no response for this long is cut off. etcd's proxy gives it 50 ms
 * (watcher.post); Node buffers what a slow client has not taken, so the bound is on time.
 */
const SLOW_CLIENT_MS = 5_000;

interface PbCreate {
  key: Buffer;
  range_end: Buffer;
  start_revision: Int64;
  progress_notify: boolean;
  filters: number[];
  prev_kv: boolean;
  watch_id: Int64;
}
interface PbWatchRequest {
  create_request?: PbCreate | null;
  cancel_request?: { watch_id: Int64 } | null;
}

export interface WatchProxyDeps {
  upstream: Upstream;
  ns: Namespace;
  ranges: WatchRanges;
  leader: LeaderMonitor;
}

export function watchProxy(deps: WatchProxyDeps): ServiceImplementation {
  return {
    Watch: (call: StreamCall<never, object>) => new WatchProxyStream(deps, call).start(),
  };
}

/** Go's text for a gRPC status error, which etcd's proxy puts in cancel_reason. */
function statusText(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== 'number') return String((err as Error)?.message ?? err);
  return `rpc error: code = ${GRPC_CODE_NAMES[e.code] ?? 'Unknown'} desc = ${e.details ?? ''}`;
}

/** etcd proxy's watchRange.valid: no end, an end after the key, or "\0" (everything from the key). */
function validRange(key: Buffer, end: Buffer): boolean {
  return end.length === 0 || Buffer.compare(end, key) > 0 || (end.length === 1 && end[0] === 0);
}

class WatchProxyStream {
  private readonly watchers = new Map<number, ClientWatcher>();
  private nextId = 0;
  private closed = false;
  /** creates wait for their permission check in the order they came */
  private queue: Promise<void> = Promise.resolve();
  private slowTimer: NodeJS.Timeout | undefined;
  private stopLeaderWatch: (() => void) | undefined;

  constructor(
    private readonly deps: WatchProxyDeps,
    readonly call: StreamCall<never, object>,
  ) {}

  start(): void {
    const { call, deps } = this;
    if (call.metadata.get('hasleader')[0] === 'true') {
      if (!deps.leader.hasLeader) return this.fail(Errors.noLeader);
      this.stopLeaderWatch = deps.leader.onLost(() => this.fail(Errors.noLeader));
    }
    call.on('data', (req: PbWatchRequest) => {
      this.queue = this.queue.then(() => this.onRequest(req));
    });
    call.on('drain', () => {
      clearTimeout(this.slowTimer);
      this.slowTimer = undefined;
    });
    call.on('error', () => this.close());
    call.on('cancelled', () => this.close());
  }

  private async onRequest(req: PbWatchRequest): Promise<void> {
    if (this.closed) return;
    if (req.create_request) await this.create(req.create_request);
    else if (req.cancel_request) this.cancel(toNumber(req.cancel_request.watch_id));
    // progress requests go unanswered, as by etcd's proxy
  }

  private async create(c: PbCreate): Promise<void> {
    const { ns, upstream, ranges } = this.deps;
    const key = c.key ?? Buffer.alloc(0);
    const end = c.range_end ?? Buffer.alloc(0);
    const refused = (reason: string): void =>
      void this.write({ header: {}, watch_id: INVALID_WATCH_ID, created: true, canceled: true, cancel_reason: reason });
    const [nsKey, nsEnd] = ns.empty ? [key, end] : ns.interval(key, end);
    try {
      // an empty key asks for the whole keyspace, which the check reads from "\0"
      const [checkKey, checkEnd] = key.length === 0 ? ns.interval(Buffer.of(0), Buffer.of(0)) : [nsKey, nsEnd];
      const check = { key: checkKey, range_end: checkEnd, serializable: true, count_only: true, limit: 1 };
      await upstream.unary(Range, check, forwardedMetadata(this.call.metadata));
    } catch (err) {
      return refused(statusText(err));
    }
    if (this.closed) return;
    if (!validRange(key, end)) return refused('');
    const requested = toNumber(c.watch_id);
    if (requested !== 0 && this.watchers.has(requested)) return refused('mvcc: duplicate watch ID provided on the WatchStream');
    let id = requested;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const filters = c.filters ?? [];
    const w = new ClientWatcher(this, id, nsKey, nsEnd, {
      startRevision: toNumber(c.start_revision),
      progress: c.progress_notify === true,
      prevKv: c.prev_kv === true,
      noPut: filters.includes(FILTER_NOPUT),
      noDelete: filters.includes(FILTER_NODELETE),
      token: String(this.call.metadata.get('token')[0] ?? ''),
    });
    this.watchers.set(id, w);
    ranges.add(w);
  }

  private cancel(id: number): void {
    const w = this.watchers.get(id);
    if (w === undefined) return;
    const header = this.deps.ranges.lastHeader(w) ?? {};
    this.deps.ranges.remove(w);
    this.watchers.delete(id);
    this.write({ header, watch_id: id, canceled: true });
  }

  forget(id: number): void {
    this.watchers.delete(id);
  }

  write(resp: object): void {
    if (this.closed) return;
    if (this.call.write(resp) || this.slowTimer !== undefined) return;
    this.slowTimer = setTimeout(() => this.fail({ code: 1, message: 'context canceled' }), SLOW_CLIENT_MS);
  }

  private fail(err: { code: number; message: string }): void {
    if (this.closed) return;
    this.close();
    this.call.emit('error', { code: err.code, details: err.message });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.slowTimer);
    this.stopLeaderWatch?.();
    for (const w of this.watchers.values()) this.deps.ranges.remove(w);
    this.watchers.clear();
  }
}

interface WatcherOptions {
  startRevision: number;
  progress: boolean;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  token: string;
}

class ClientWatcher implements Receiver {
  nextRevision = 0;
  /** the client has had its `created` */
  private createdSent = false;
  readonly startRevision: number;
  readonly token: string;

  constructor(
    private readonly stream: WatchProxyStream,
    readonly id: number,
    readonly key: Buffer,
    readonly rangeEnd: Buffer,
    private readonly opts: WatcherOptions,
  ) {
    this.startRevision = opts.startRevision;
    this.token = opts.token;
  }

  send(upstream: PbWatchResponse): void {
    // A shared watch created again on another member (its member failed) says `created`
    // again; a client hears it once: clientv3 panics on a `created` it did not ask for.
    const resp = upstream.created && this.createdSent && !upstream.canceled ? { ...upstream, created: false } : upstream;
    if (resp.created) this.createdSent = true;
    const rev = toNumber(resp.header?.revision);
    const upstreamEvents = resp.events ?? [];
    const compactRev = toNumber(resp.compact_revision);
    const isProgress = upstreamEvents.length === 0 && !resp.canceled && !resp.created && compactRev === 0 && rev !== 0;
    if (isProgress && !this.opts.progress) return;
    if (this.nextRevision > rev && upstreamEvents.length > 0) return;
    if (this.nextRevision === 0) this.nextRevision = rev + 1;
    const events: PbEvent[] = [];
    let lastRev = 0;
    for (const ev of upstreamEvents) {
      const modRev = toNumber(ev.kv?.mod_revision);
      // several events of one txn share a revision: move on only after all of them
      if (modRev < this.nextRevision) continue;
      lastRev = modRev;
      if (ev.type === EVENT_PUT ? this.opts.noPut : this.opts.noDelete) continue;
      events.push(this.opts.prevKv ? ev : { ...ev, prev_kv: null });
    }
    if (lastRev >= this.nextRevision) this.nextRevision = lastRev + 1;
    if (!isProgress && !resp.created && !resp.canceled && events.length === 0 && compactRev === 0) return;
    this.stream.write({
      header: resp.header,
      watch_id: this.id,
      created: resp.created,
      canceled: resp.canceled,
      compact_revision: resp.compact_revision,
      cancel_reason: resp.cancel_reason,
      events,
    });
  }

  ended(): void {
    this.stream.forget(this.id);
  }
}
