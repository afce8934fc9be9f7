// etcdserverpb.Watch: one bidirectional stream carries many watchers. Creates are
// answered in order with `created` before any event of that watcher; events come from
// the store's watch stream, which stops feeding a stream whose socket is full.

import type { status as Code } from '@grpc/grpc-js';
import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import type { WatchResponseOut, WatchStream } from '../../mvcc/index.js';
import { buf, eventToPb } from '../convert.js';
import { type EtcdError, Errors } from '../errors.js';
import { type Int64, toNumber, type } from '../pb.js';
import type { EtcdServer } from '../server.js';
import { type Headers, requiresLeader } from './common.js';
import type { AuthGate } from '../auth/gate.js';
import { GRPC_OVERHEAD_BYTES } from '../grpc/server.js';

interface PbWatchRequest {
  create_request?: {
    key: Buffer;
    range_end: Buffer;
    start_revision: Int64;
    progress_notify: boolean;
    filters: number[];
    prev_kv: boolean;
    watch_id: Int64;
    fragment: boolean;
  } | null;
  cancel_request?: { watch_id: Int64 } | null;
  progress_request?: object | null;
}

/** Why a watch may be refused, with grpc-go's name of its code; anything else is permission denied. */
const WATCH_REFUSALS: ReadonlyArray<readonly [EtcdError, string]> = [
  [Errors.permissionDenied, 'PermissionDenied'],
  [Errors.invalidAuthToken, 'Unauthenticated'],
  [Errors.authOldRevision, 'InvalidArgument'],
  [Errors.userEmpty, 'InvalidArgument'],
];

const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;
const WatchResponse = type('etcdserverpb.WatchResponse');

export function watchService(
  server: EtcdServer,
  headers: Headers,
  gate: AuthGate,
  progressNotifyIntervalMs: number,
): ServiceImplementation {
  // etcd fragments a watcher's response once it reaches max-request-bytes plus the gRPC overhead
  const fragmentBytes = server.config.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  return {
    Watch: (call: StreamCall<never, object>) => {
      new WatchSession(server, headers, gate, call, progressNotifyIntervalMs, fragmentBytes).start();
    },
  };
}

class WatchSession {
  private readonly ws: WatchStream;
  /** responses produced while a create is being answered: they must follow `created` */
  private held: WatchResponseOut[] | undefined;
  private readonly progressIds = new Set<number>();
  /** watchers that accept responses split into fragments */
  private readonly fragmentIds = new Set<number>();
  /** watchers that got events since the last timed progress notification */
  private readonly recentlySent = new Set<number>();
  private progressTimer: NodeJS.Timeout | undefined;
  private unsubscribeLeader: (() => void) | undefined;
  private closed = false;
  /** requests waiting behind a create whose permission check is under way */
  private authQueue: Promise<void> | undefined;

  constructor(
    private readonly server: EtcdServer,
    private readonly headers: Headers,
    private readonly gate: AuthGate,
    private readonly call: StreamCall<never, object>,
    private readonly progressIntervalMs: number,
    private readonly fragmentBytes: number,
  ) {
    this.ws = server.store.newWatchStream((r) => this.deliver(r));
  }

  start(): void {
    const { call } = this;
    if (requiresLeader(call.metadata)) {
      if (this.server.leader === 0n) return this.fail(Errors.noLeader);
      this.unsubscribeLeader = this.server.onLeaderChange(() => {
        if (this.server.leader === 0n) this.fail(Errors.noLeader);
      });
    }
    call.on('data', (req: PbWatchRequest) => this.onRequest(req));
    call.on('drain', () => this.ws.resume());
    // A client that half-closes still gets its events, as from etcd: the stream ends when
    // the client goes away (counted as Canceled), not when it stops sending requests.
    call.on('error', () => this.close());
    call.on('cancelled', () => this.close());
  }

  private onRequest(req: PbWatchRequest): void {
    if (this.closed) return;
    // With auth on, a create waits for the caller's credentials; requests after it wait their turn.
    if (this.authQueue !== undefined || (req.create_request && this.gate.store.enabled)) {
      const queued = (this.authQueue ?? Promise.resolve()).then(() => this.onRequestInOrder(req));
      this.authQueue = queued;
      void queued.finally(() => {
        if (this.authQueue === queued) this.authQueue = undefined;
      });
      return;
    }
    this.handle(req);
  }

  private async onRequestInOrder(req: PbWatchRequest): Promise<void> {
    if (this.closed) return;
    if (req.create_request) {
      const refusal = await this.watchRefusal(req.create_request);
      if (this.closed) return;
      if (refusal !== undefined) {
        this.write({ header: this.headers.make(), watch_id: -1, created: true, canceled: true, cancel_reason: refusal });
        return;
      }
    }
    this.handle(req);
  }

  /**
   * Why the caller may not watch this range (etcd's isWatchPermitted): permission is
   * checked once, when the watcher is created. etcd's cancel reason is the gRPC status
   * error's text ("rpc error: code = PermissionDenied desc = ..."), which clients print.
   */
  private async watchRefusal(c: NonNullable<PbWatchRequest['create_request']>): Promise<string | undefined> {
    const key = buf(c.key).length > 0 ? buf(c.key) : Buffer.from([0]);
    try {
      this.gate.store.checkKeys(await this.gate.caller(this.call), 'read', key, buf(c.range_end));
      return undefined;
    } catch (err) {
      const [e, codeName] = WATCH_REFUSALS.find(([known]) => known === err) ?? WATCH_REFUSALS[0]!;
      return `rpc error: code = ${codeName} desc = ${e.message}`;
    }
  }

  private handle(req: PbWatchRequest): void {
    if (req.create_request) this.create(req.create_request);
    else if (req.cancel_request) {
      const id = toNumber(req.cancel_request.watch_id);
      if (this.ws.cancel(id)) {
        this.progressIds.delete(id);
        this.fragmentIds.delete(id);
        this.write({ header: this.headers.make(), watch_id: id, canceled: true });
      }
    } else if (req.progress_request) this.ws.requestProgress();
  }

  private create(c: NonNullable<PbWatchRequest['create_request']>): void {
    // An empty key means "from the first key" (etcd rewrites it to "\0").
    const requestedKey = buf(c.key);
    const key = requestedKey.length > 0 ? requestedKey : Buffer.from([0]);
    const rangeEnd = buf(c.range_end);
    const filters = c.filters ?? [];
    const requested = toNumber(c.watch_id);
    this.held = [];
    const res = this.ws.watch({
      key,
      rangeEnd: rangeEnd.length > 0 ? rangeEnd : undefined,
      startRevision: toNumber(c.start_revision),
      prevKv: c.prev_kv === true,
      noPut: filters.includes(FILTER_NOPUT),
      noDelete: filters.includes(FILTER_NODELETE),
      ...(requested !== 0 ? { watchId: requested } : {}),
    });
    const held = this.held;
    this.held = undefined;
    if ('error' in res) {
      this.write({
        header: this.headers.make(),
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
      });
      return;
    }
    this.write({ header: this.headers.make(), watch_id: res.watchId, created: true });
    if (c.progress_notify) this.progressIds.add(res.watchId);
    if (c.fragment) this.fragmentIds.add(res.watchId);
    this.armProgressTimer();
    for (const r of held) this.deliver(r);
  }

  /** The store's sink: returns false when the socket is full (the store then holds back). */
  private deliver(r: WatchResponseOut): boolean {
    if (this.closed) return false;
    if (this.held) {
      this.held.push(r);
      return true;
    }
    if (r.compactRevision !== undefined) {
      // the store already dropped the watcher; etcd 3.4 gives no cancel_reason here,
      // clients (clientv3's ErrCompacted) tell a compaction by compact_revision
      this.progressIds.delete(r.watchId);
      this.fragmentIds.delete(r.watchId);
      return this.write({
        header: { ...this.headers.make(), revision: 0 },
        watch_id: r.watchId,
        canceled: true,
        compact_revision: r.compactRevision,
      });
    }
    if (r.events.length > 0) this.recentlySent.add(r.watchId);
    const resp = { header: this.headers.make(r.revision), watch_id: r.watchId, events: r.events.map(eventToPb) };
    if (this.fragmentIds.has(r.watchId) && resp.events.length > 1) return this.writeFragmented(resp);
    return this.write(resp);
  }

  /** Splits a large response into pieces below the limit; all but the last say `fragment`. */
  private writeFragmented(resp: { header: object; watch_id: number; events: object[] }): boolean {
    if (WatchResponse.encode(resp).len < this.fragmentBytes) return this.write(resp);
    let ok = true;
    let piece: object[] = [];
    let size = 0;
    for (const ev of resp.events) {
      const evSize = WatchResponse.encode({ events: [ev] }).len;
      if (piece.length > 0 && size + evSize >= this.fragmentBytes) {
        ok = this.write({ ...resp, events: piece, fragment: true }) && ok;
        piece = [];
        size = 0;
      }
      piece.push(ev);
      size += evSize;
    }
    return this.write({ ...resp, events: piece }) && ok;
  }

  private write(resp: object): boolean {
    if (this.closed) return false;
    return this.call.write(resp);
  }

  /** Timed progress notifications for watchers that asked (skipped right after events). */
  private armProgressTimer(): void {
    if (this.progressTimer || this.progressIds.size === 0) return;
    this.progressTimer = setInterval(() => {
      for (const id of this.progressIds) {
        if (this.recentlySent.has(id) || !this.ws.isSynced(id)) continue;
        this.write({ header: this.headers.make(), watch_id: id });
      }
      this.recentlySent.clear();
    }, this.progressIntervalMs);
    this.progressTimer.unref();
  }

  private fail(err: { code: Code; message: string }): void {
    if (this.closed) return;
    this.close();
    this.call.emit('error', { code: err.code, details: err.message });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.unsubscribeLeader?.();
    this.ws.close();
  }
}
