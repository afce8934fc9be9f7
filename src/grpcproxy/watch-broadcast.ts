// Watch coalescing, as etcd's watch_broadcast(s).go: client watchers on the same key range
// share one upstream watch (a broadcast). A new watcher joins a broadcast that will not
// make it miss an event: one still waiting for its `created` that starts where (or
// before) the watcher does, or one already running whose next revision is not past the
// watcher's start ("from now" watchers join any running one, at its next revision).
// Otherwise it gets a broadcast of its own, which is merged into an older one of the same
// range as soon as that one is not ahead of any of its watchers. Every watcher drops the
// events below its own next revision, so a broadcast that is behind never repeats one.

import type { ProxyMetrics } from './metrics.js';
import type { Namespace } from './namespace.js';
import type { PbHeader, PbWatchResponse, UpstreamWatch, UpstreamWatchStream, WatchTarget } from './watch-upstream.js';
import { toNumber } from '../server/pb.js';

/** A client's watcher, as the broadcasts see it (watch.ts implements it). */
export interface Receiver {
  /** range as the cluster knows it (namespace applied) */
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  /** the revision the client asked to start from; 0: from now */
  readonly startRevision: number;
  /** the least revision of the next event it may get; 0 until it is created "from now" */
  nextRevision: number;
  /** the auth token its upstream watch is opened with, if it opens one */
  readonly token: string;
  /** Filters one upstream response for the client and sends what is left (etcd's watcher.send). */
  send(resp: PbWatchResponse): void;
  /** Its broadcast was cancelled by the cluster (after the cancel was sent): it is gone. */
  ended(): void;
}

class Broadcast implements WatchTarget {
  readonly receivers = new Set<Receiver>();
  /** etcd's nextrev: the header revision + 1 of the last response, or the start before one */
  nextRevision: number;
  /** where a watch opened again would start without losing or repeating an event */
  private resumeRev: number;
  private responses = 0;
  lastHeader: PbHeader | undefined;
  private readonly handle: UpstreamWatch;

  constructor(
    readonly group: BroadcastGroup,
    readonly startRevision: number,
    stream: UpstreamWatchStream,
  ) {
    this.nextRevision = startRevision;
    this.resumeRev = startRevision;
    this.handle = stream.watch(this);
  }

  get key(): Buffer {
    return this.group.key;
  }

  get rangeEnd(): Buffer {
    return this.group.rangeEnd;
  }

  get created(): boolean {
    return this.responses > 0;
  }

  /** The revision from which this broadcast sends every event from now on. */
  resumeRevision(): number {
    return this.resumeRev;
  }

  onResponse(resp: PbWatchResponse): void {
    this.group.ns.events(resp.events);
    const rev = toNumber(resp.header?.revision);
    if (resp.canceled) {
      for (const r of this.receivers) r.send(resp);
      this.group.ended(this);
      return;
    }
    // as etcd: the start a watcher asked for holds until its first response
    if (this.responses > 0 || this.nextRevision === 0) this.nextRevision = rev + 1;
    const events = resp.events ?? [];
    if (events.length > 0) this.resumeRev = Math.max(this.resumeRev, toNumber(events[events.length - 1]!.kv?.mod_revision) + 1);
    else if (resp.created ? this.resumeRev === 0 : rev > 0) this.resumeRev = Math.max(this.resumeRev, rev + 1); // created "now", or a progress notification
    this.lastHeader = resp.header ?? undefined;
    this.responses++;
    for (const r of this.receivers) r.send(resp);
    if (events.length > 0 && this.receivers.size > 1) this.group.metrics.eventsCoalescing.inc(this.receivers.size - 1);
    this.group.coalesce(this);
  }

  /** Whether `r` can be served from here without missing an event; adds it if so. */
  join(r: Receiver): boolean {
    if (!this.created) {
      // waiting for `created`: the watcher gets it from the cluster with the others
      const fits = this.startRevision === 0 ? r.startRevision === 0 : r.startRevision >= this.startRevision;
      if (!fits) return false;
      r.nextRevision = r.startRevision;
      this.receivers.add(r);
      return true;
    }
    const start = r.startRevision === 0 ? this.nextRevision : r.startRevision;
    if (start < this.nextRevision) return false;
    r.nextRevision = start;
    this.receivers.add(r);
    // the cluster said `created` long ago: the proxy says it, as of the revision it has seen
    r.send({
      header: { ...this.lastHeader, revision: this.nextRevision - 1 },
      watch_id: 0,
      created: true,
      canceled: false,
      compact_revision: 0,
      cancel_reason: '',
      fragment: false,
      events: [],
    });
    return true;
  }

  stop(): void {
    this.handle.cancel();
  }
}

/** The broadcasts of one key range. */
class BroadcastGroup {
  readonly broadcasts = new Set<Broadcast>();

  constructor(
    private readonly owner: WatchRanges,
    readonly id: string,
    readonly key: Buffer,
    readonly rangeEnd: Buffer,
    readonly ns: Namespace,
    readonly metrics: ProxyMetrics,
  ) {}

  add(r: Receiver): Broadcast {
    for (const b of this.broadcasts) if (b.join(r)) return b;
    const b = new Broadcast(this, r.startRevision, this.owner.streamFor(r.token));
    r.nextRevision = r.startRevision;
    b.receivers.add(r);
    this.broadcasts.add(b);
    this.owner.broadcasts++;
    return b;
  }

  /** `b` just answered: if an older broadcast of the range is not ahead of any of its watchers, they move there. */
  coalesce(b: Broadcast): void {
    if (this.broadcasts.size < 2 || b.receivers.size === 0) return;
    let lowest = Infinity;
    for (const r of b.receivers) lowest = Math.min(lowest, r.nextRevision);
    for (const other of this.broadcasts) {
      if (other === b || !other.created || other.resumeRevision() > lowest) continue;
      for (const r of b.receivers) {
        other.receivers.add(r);
        this.owner.moved(r, other);
      }
      b.receivers.clear();
      this.drop(b);
      return;
    }
  }

  remove(r: Receiver, b: Broadcast): void {
    b.receivers.delete(r);
    if (b.receivers.size === 0) this.drop(b);
  }

  /** The cluster cancelled `b`: its watchers are gone. */
  ended(b: Broadcast): void {
    const gone = [...b.receivers];
    b.receivers.clear();
    this.broadcasts.delete(b);
    this.owner.broadcasts--;
    for (const r of gone) this.owner.forget(r);
    this.owner.changed(this);
    for (const r of gone) r.ended();
  }

  private drop(b: Broadcast): void {
    b.stop();
    this.broadcasts.delete(b);
    this.owner.broadcasts--;
    this.owner.changed(this);
  }
}

/** Every client watcher of the proxy, grouped by range into broadcasts. */
export class WatchRanges {
  private readonly groups = new Map<string, BroadcastGroup>();
  private readonly of = new Map<Receiver, Broadcast>();
  private readonly streams = new Map<string, UpstreamWatchStream>();
  /** broadcasts open: the watches the proxy holds on the cluster */
  broadcasts = 0;

  constructor(
    private readonly ns: Namespace,
    private readonly metrics: ProxyMetrics,
    private readonly openStream: (token: string) => UpstreamWatchStream,
  ) {}

  add(r: Receiver): void {
    const id = `${r.key.toString('hex')}:${r.rangeEnd.toString('hex')}`;
    let g = this.groups.get(id);
    if (g === undefined) {
      g = new BroadcastGroup(this, id, r.key, r.rangeEnd, this.ns, this.metrics);
      this.groups.set(id, g);
    }
    this.of.set(r, g.add(r));
    this.changed(g);
  }

  remove(r: Receiver): void {
    const b = this.of.get(r);
    if (b === undefined) return;
    this.of.delete(r);
    b.group.remove(r, b);
    this.changed(b.group);
  }

  /** The last header the watcher's broadcast saw (for the answer to a cancel). */
  lastHeader(r: Receiver): PbHeader | undefined {
    return this.of.get(r)?.lastHeader;
  }

  streamFor(token: string): UpstreamWatchStream {
    let s = this.streams.get(token);
    if (s === undefined) {
      s = this.openStream(token);
      this.streams.set(token, s);
    }
    return s;
  }

  moved(r: Receiver, to: Broadcast): void {
    this.of.set(r, to);
  }

  forget(r: Receiver): void {
    this.of.delete(r);
  }

  /** Keeps the gauges true and lets go of a range nobody watches. */
  changed(g: BroadcastGroup): void {
    if (g.broadcasts.size === 0) this.groups.delete(g.id);
    this.metrics.upstreamWatchers.set(this.broadcasts);
    this.metrics.watchersCoalescing.set(this.of.size - this.broadcasts);
  }

  close(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}
