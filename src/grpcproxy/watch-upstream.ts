// The proxy's watches on the cluster: many on one Watch stream, as clientv3 multiplexes
// them. Creates are answered in order, so the n-th `created` belongs to the n-th create
// sent. When the stream breaks (the member died, the connection dropped) every watch is
// created again on the next endpoint from where its owner says it resumes, so no event
// is lost and none repeated.

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type Int64, toNumber } from '../server/pb.js';
import { methodsOf, type Upstream } from './upstream.js';

const Watch = methodsOf('etcdserverpb.Watch').Watch!;

/** How long to wait before opening the stream again after it broke, doubling up to the max. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

export interface PbHeader { cluster_id?: Int64; member_id?: Int64; revision: Int64; raft_term?: Int64 }
export interface PbKeyValue { key: Buffer; mod_revision: Int64 }
export interface PbEvent { type: number; kv?: PbKeyValue | null; prev_kv?: PbKeyValue | null }
export interface PbWatchResponse {
  header?: PbHeader | null;
  watch_id: Int64;
  created: boolean;
  canceled: boolean;
  compact_revision: Int64;
  cancel_reason: string;
  fragment: boolean;
  events: PbEvent[];
}

/** The owner of one upstream watch. */
export interface WatchTarget {
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  /** The revision to (re)start from: 0 for "from now". Asked at every create. */
  resumeRevision(): number;
  /** Every response for the watch, `created` first; after a `canceled` one, no more. */
  onResponse(resp: PbWatchResponse): void;
}

interface Entry {
  target: WatchTarget;
  /** the cluster's id for it, once created on the current stream */
  id: number | undefined;
  cancelled: boolean;
}

export interface UpstreamWatch {
  cancel(): void;
}

/** Watches under one caller's auth token share a stream. */
export class UpstreamWatchStream {
  private stream: grpc.ClientDuplexStream<object, object> | undefined;
  private readonly entries = new Set<Entry>();
  private pendingCreates: Entry[] = [];
  private readonly byId = new Map<number, Entry>();
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly metadata: grpc.Metadata,
    private readonly log: Logger,
  ) {}

  watch(target: WatchTarget): UpstreamWatch {
    const entry: Entry = { target, id: undefined, cancelled: false };
    this.entries.add(entry);
    if (this.stream !== undefined) this.create(entry);
    else if (this.retryTimer === undefined) this.open();
    // else: created with the others when the stream opens again
    return { cancel: () => this.cancel(entry) };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  private cancel(entry: Entry): void {
    if (entry.cancelled) return;
    entry.cancelled = true;
    this.entries.delete(entry);
    if (entry.id !== undefined) {
      this.byId.delete(entry.id);
      this.stream?.write({ cancel_request: { watch_id: entry.id } });
    }
    // one still waiting for `created` is cancelled when that arrives
  }

  private create(entry: Entry): void {
    const { target } = entry;
    this.pendingCreates.push(entry);
    this.stream!.write({
      create_request: {
        key: target.key,
        range_end: target.rangeEnd,
        start_revision: target.resumeRevision(),
        // as etcd's watch broadcast asks: every client watcher's options can be served from it
        progress_notify: true,
        prev_kv: true,
      },
    });
  }

  private open(): void {
    if (this.closed) return;
    const stream = this.upstream.bidi(Watch, this.metadata);
    this.stream = stream;
    this.byId.clear();
    this.pendingCreates = [];
    for (const e of this.entries) {
      e.id = undefined;
      this.create(e);
    }
    stream.on('data', (resp: PbWatchResponse) => {
      if (this.stream === stream) this.onResponse(resp);
    });
    stream.on('error', (err: grpc.ServiceError) => this.broken(stream, err.details || err.message));
    stream.on('end', () => this.broken(stream, 'the stream ended'));
  }

  private onResponse(resp: PbWatchResponse): void {
    this.retryMs = RETRY_MIN_MS;
    if (resp.created) {
      const entry = this.pendingCreates.shift();
      if (entry === undefined) return;
      const id = toNumber(resp.watch_id);
      if (entry.cancelled) {
        if (!resp.canceled) this.stream?.write({ cancel_request: { watch_id: id } });
        return;
      }
      if (resp.canceled) this.entries.delete(entry);
      else {
        entry.id = id;
        this.byId.set(id, entry);
      }
      entry.target.onResponse(resp);
      return;
    }
    const id = toNumber(resp.watch_id);
    const entry = this.byId.get(id);
    if (entry === undefined) return; // cancelled by us, or a progress reply for the stream
    if (resp.canceled) {
      this.byId.delete(id);
      this.entries.delete(entry);
    }
    entry.target.onResponse(resp);
  }

  private broken(stream: grpc.ClientDuplexStream<object, object>, why: string): void {
    if (this.stream !== stream || this.closed) return;
    this.stream = undefined;
    if (this.entries.size === 0) return; // opened again by the next watch
    this.log.warn({ error: why, 'retry-in-ms': this.retryMs }, 'upstream watch stream broke; watching again on the next endpoint');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
