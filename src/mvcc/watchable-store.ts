// Watchers (etcd's watchableStore): a synced group that gets each commit's events as
// they happen, and an unsynced group that catches up from history (recent events in
// memory, older ones from LevelDB) until it reaches the present.
//
// The KV store behind it can be swapped (a member installing a leader's snapshot):
// watchers then catch up from the new store's history, from the next revision each
// still needs, as etcd's watchableStore.Restore does; their streams stay open.
//
// Back-pressure replaces etcd's victim buffers: when a stream's sink reports it is
// full, nothing more is sent to it; its watchers that miss events drop to the
// unsynced group (remembering only the next revision they need) and catch up from
// history after resume(). So a stalled receiver costs no memory and never slows
// writes; if it falls behind compaction it gets the compacted revision, as in etcd.

import { HISTORY_BYTES, type RecentHistory } from './history.js';
import { inRange, toRangeBounds, type RangeEnd } from './tree-index.js';
import type { Event, KeyValue } from './types.js';

/** Most revisions in one response (etcd's watchBatchMaxRevs). */
const MAX_REVS_PER_RESPONSE = 1000;
/** Unsynced watchers served by one history read (etcd's maxWatchersPerSync). */
const MAX_WATCHERS_PER_SYNC = 512;
/** Events read from LevelDB per catch-up pass. */
const MAX_EVENTS_PER_SYNC = 10_000;

export interface WatchResponseOut {
  /** -1 for a progress notification answering requestProgress() */
  watchId: number;
  events: Event[];
  /** store revision the response reflects; 0 on a compaction cancel, as in etcd */
  revision: number;
  /** set when the watcher's start revision was compacted; the watcher is then gone */
  compactRevision?: number;
}

/** Receives responses; returns false when full: nothing more is sent until resume(). */
export type WatchSink = (r: WatchResponseOut) => boolean;

export interface WatchRequest {
  /** empty means "\0" (the smallest key), as etcd's watch server does */
  key: Buffer;
  rangeEnd?: Buffer;
  /** 0 = from the next revision; otherwise history from this revision, inclusive */
  startRevision: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  /** client-chosen id; 0 or absent = the stream's next free id, counting from 0 */
  watchId?: number;
}

export type WatchCreateResult =
  | { watchId: number }
  /** duplicate-watch-id: "mvcc: duplicate watch ID provided on the WatchStream";
   *  empty-range: "mvcc: watcher range is empty" (key >= range end) */
  | { error: 'duplicate-watch-id' | 'empty-range' };

export interface WatchStream {
  watch(req: WatchRequest): WatchCreateResult;
  /** false when no such watcher (never existed, cancelled, or removed after compaction) */
  cancel(watchId: number): boolean;
  /** sends {watchId: -1, events: [], revision} once every watcher on the stream is synced */
  requestProgress(): void;
  isSynced(watchId: number): boolean;
  /** the receiver has room again */
  resume(): void;
  close(): void;
}

/** What the watchable store needs from the KV store. */
export interface HistorySource {
  currentRevision(): number;
  compactRevision(): number;
  /** highest revision whose events were handed to synced watchers (LevelDB may not have them yet) */
  notifiedRevision(): number;
  /** highest revision whose events are in LevelDB (readHistory reads no further) */
  landedRevision(): number;
  readHistory(from: number, to: number, max: number): Promise<{ events: Event[]; last: number }>;
  kvAt(key: Buffer, rev: number): Promise<KeyValue | undefined>;
  readonly history: RecentHistory;
}

class Watcher {
  synced = false;
  removed = false;
  constructor(
    readonly id: number,
    readonly stream: Stream,
    readonly from: string,
    readonly to: RangeEnd,
    readonly prevKv: boolean,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    /** next revision this watcher needs */
    public minRev: number,
  ) {}

  /**
   * Events this watcher should get. prevKv is dropped unless asked for, and when its
   * revision (modRevision-1) is compacted: etcd looks it up at send time and finds nothing.
   */
  select(events: Event[], compactRev: number): Event[] {
    const out: Event[] = [];
    for (const ev of events) {
      if (ev.kv.modRevision < this.minRev) continue;
      if (ev.type === 'put' ? this.noPut : this.noDelete) continue;
      if (!inRange(ev.kv.key.toString('latin1'), this.from, this.to)) continue;
      const keepPrev = this.prevKv && ev.kv.modRevision - 1 >= compactRev;
      out.push(keepPrev || !ev.prevKv ? ev : { type: ev.type, kv: ev.kv });
    }
    return out;
  }
}

/** Synced watchers indexed for fan-out: single keys by key, ranges in a list. */
class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();

  add(w: Watcher): void {
    if (w.to === undefined) {
      let s = this.byKey.get(w.from);
      if (!s) this.byKey.set(w.from, (s = new Set()));
      s.add(w);
    } else this.ranges.add(w);
  }

  delete(w: Watcher): void {
    if (w.to === undefined) {
      const s = this.byKey.get(w.from);
      if (s?.delete(w) && s.size === 0) this.byKey.delete(w.from);
    } else this.ranges.delete(w);
  }

  isEmpty(): boolean {
    return this.byKey.size === 0 && this.ranges.size === 0;
  }

  /** Removes every watcher, calling fn for each. */
  drain(fn: (w: Watcher) => void): void {
    for (const s of this.byKey.values()) for (const w of s) fn(w);
    for (const w of this.ranges) fn(w);
    this.byKey.clear();
    this.ranges.clear();
  }

  forEachMatch(key: string, fn: (w: Watcher) => void): void {
    const s = this.byKey.get(key);
    if (s) for (const w of s) fn(w);
    for (const w of this.ranges) if (inRange(key, w.from, w.to)) fn(w);
  }
}

class Stream implements WatchStream {
  readonly watchers = new Map<number, Watcher>();
  private nextId = 0;
  blocked = false;
  closed = false;
  progressPending = false;

  constructor(
    private readonly store: WatchableStore,
    private readonly sink: WatchSink,
  ) {}

  watch(req: WatchRequest): WatchCreateResult {
    if (this.closed) throw new Error('mvcc: watch stream is closed');
    const key = req.key.length === 0 ? Buffer.of(0) : req.key;
    const { from, to } = toRangeBounds(key, req.rangeEnd);
    if (typeof to === 'string' && from >= to) return { error: 'empty-range' };
    let id = req.watchId ?? 0;
    if (id !== 0) {
      if (this.watchers.has(id)) return { error: 'duplicate-watch-id' };
    } else {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const w = new Watcher(id, this, from, to, !!req.prevKv, !!req.noPut, !!req.noDelete, req.startRevision);
    this.watchers.set(id, w);
    this.store.add(w);
    return { watchId: id };
  }

  cancel(watchId: number): boolean {
    const w = this.watchers.get(watchId);
    if (!w) return false;
    this.store.remove(w);
    return true;
  }

  requestProgress(): void {
    this.progressPending = true;
    this.store.progressRequested(this);
  }

  isSynced(watchId: number): boolean {
    return this.watchers.get(watchId)?.synced ?? false;
  }

  allSynced(): boolean {
    for (const w of this.watchers.values()) if (!w.synced) return false;
    return true;
  }

  resume(): void {
    if (this.closed || !this.blocked) return;
    this.blocked = false;
    this.store.resumed(this);
  }

  close(): void {
    if (this.closed) return;
    for (const w of [...this.watchers.values()]) this.store.remove(w);
    this.closed = true;
    this.progressPending = false;
    this.store.streamClosed();
  }

  /** Sends one response; a throwing sink is treated as a dead receiver. */
  send(r: WatchResponseOut): void {
    let ok: boolean;
    try {
      ok = this.sink(r);
    } catch {
      this.close();
      return;
    }
    if (!ok) this.blocked = true;
  }
}

/** What the watchers are doing, for etcd's etcd_debugging_mvcc_watch* metrics (read at scrape). */
export class WatchStats {
  /** open watch streams */
  streams = 0;
  /** live watchers on them */
  watchers = 0;
  /** events handed to watchers since start */
  eventsSent = 0;
}

export class WatchableStore {
  readonly stats = new WatchStats();
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new Set<Watcher>();
  private readonly progressWaiting = new Set<Stream>();
  private syncQueued = false;
  private syncing = false;
  /** the store watchers read from; none between a store's close and its successor's open */
  private src: HistorySource | undefined = undefined;
  /** the last source's revision when it closed: what "now" means until the next one attaches */
  private detachedRev = 0;

  newStream(sink: WatchSink): WatchStream {
    this.stats.streams++;
    return new Stream(this, sink);
  }

  /** Watchers catching up from history rather than hearing commits as they happen (etcd's slow watchers). */
  get unsyncedWatchers(): number {
    return this.unsynced.size;
  }

  /** A stream closed (once per stream). */
  streamClosed(): void {
    this.stats.streams--;
  }

  /**
   * Serves watchers from `src`. Watchers synced with the previous source move to the
   * unsynced group: the new store may be ahead of what they were sent.
   */
  attach(src: HistorySource): void {
    this.src = src;
    this.synced.drain((w) => {
      w.synced = false;
      this.unsynced.add(w);
    });
    this.scheduleSync();
  }

  /** `src` is closing: nothing is served until another source attaches. */
  detach(src: HistorySource): void {
    if (this.src !== src) return;
    this.detachedRev = src.currentRevision();
    this.src = undefined;
  }

  add(w: Watcher): void {
    this.stats.watchers++;
    if (!this.src) {
      // "from now" is after the closed store's revision (the one its created response
      // reports); the successor serves it from there, or reports it compacted
      if (w.minRev === 0) w.minRev = this.detachedRev + 1;
      this.unsynced.add(w);
      return;
    }
    const cur = this.src.currentRevision();
    if (w.minRev === 0 || w.minRev > cur) {
      w.minRev = Math.max(w.minRev, cur + 1);
      this.toSynced(w);
    } else {
      this.unsynced.add(w);
      this.scheduleSync();
    }
  }

  remove(w: Watcher): void {
    if (w.removed) return;
    w.removed = true;
    this.stats.watchers--;
    w.stream.watchers.delete(w.id);
    if (w.synced) this.synced.delete(w);
    else this.unsynced.delete(w);
  }

  /** One commit's events (revision order, all revisions up to `rev`), on their way to LevelDB. */
  notify(src: HistorySource, events: Event[], rev: number): void {
    if (src !== this.src) return;
    src.history.append(events);
    this.trimHistory(src);
    if (this.synced.isEmpty()) return;
    const batches = new Map<Watcher, Event[]>();
    for (const ev of events) {
      this.synced.forEachMatch(ev.kv.key.toString('latin1'), (w) => {
        if (ev.kv.modRevision < w.minRev) return;
        const b = batches.get(w);
        if (b) b.push(ev);
        else batches.set(w, [ev]);
      });
    }
    for (const [w, evs] of batches) {
      if (w.removed) continue;
      const selected = w.select(evs, src.compactRevision());
      if (selected.length === 0) continue;
      if (w.stream.blocked) {
        // stop here; catch up from history after resume()
        w.minRev = selected[0]!.kv.modRevision;
        this.toUnsynced(w);
        continue;
      }
      if (!this.sendEvents(w, selected, rev)) this.toUnsynced(w);
      else w.minRev = rev + 1;
    }
  }

  /** A write of `src`'s landed in LevelDB: what the ring held only for that may go. */
  landed(src: HistorySource): void {
    if (src === this.src) this.trimHistory(src);
  }

  /** The ring keeps landed events only for watchers that may need to catch up. */
  private trimHistory(src: HistorySource): void {
    src.history.trim(src.landedRevision(), this.stats.watchers === 0 ? 0 : HISTORY_BYTES);
  }

  progressRequested(s: Stream): void {
    this.progressWaiting.add(s);
    this.flushProgress();
  }

  resumed(s: Stream): void {
    for (const w of s.watchers.values()) {
      if (!w.synced) {
        this.scheduleSync();
        return;
      }
    }
    this.flushProgress();
  }

  private toSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.synced = true;
    this.synced.add(w);
  }

  private toUnsynced(w: Watcher): void {
    if (w.removed) return;
    if (w.synced) this.synced.delete(w);
    w.synced = false;
    this.unsynced.add(w);
    this.scheduleSync();
  }

  /**
   * Sends events in responses of at most MAX_REVS_PER_RESPONSE revisions, never
   * splitting one. Returns false if the stream filled up before all were sent
   * (minRev then points at the first unsent revision).
   */
  private sendEvents(w: Watcher, events: Event[], revision: number): boolean {
    let i = 0;
    while (i < events.length) {
      if (w.stream.blocked || w.removed) {
        w.minRev = events[i]!.kv.modRevision;
        return false;
      }
      let j = i;
      let revs = 0;
      let last = -1;
      while (j < events.length) {
        const r = events[j]!.kv.modRevision;
        if (r !== last) {
          if (revs === MAX_REVS_PER_RESPONSE) break;
          revs++;
          last = r;
        }
        j++;
      }
      w.stream.send({ watchId: w.id, events: events.slice(i, j), revision });
      this.stats.eventsSent += j - i;
      w.minRev = last + 1;
      i = j;
    }
    return !w.removed;
  }

  private scheduleSync(): void {
    if (this.syncQueued || !this.src) return;
    this.syncQueued = true;
    setImmediate(() => {
      this.syncQueued = false;
      void this.syncLoop();
    });
  }

  private async syncLoop(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (let src = this.src; src; src = this.src) {
        const ready = [...this.unsynced].filter((w) => !w.stream.blocked);
        if (ready.length === 0) break;
        const fromDb = this.syncFromMemory(src, ready);
        if (fromDb.length > 0) await this.syncFromDb(src, fromDb.slice(0, MAX_WATCHERS_PER_SYNC));
      }
    } finally {
      this.syncing = false;
    }
    this.flushProgress();
  }

  /** Handles compacted, caught-up and recent-history watchers; returns those needing LevelDB. */
  private syncFromMemory(src: HistorySource, ready: Watcher[]): Watcher[] {
    const notified = src.notifiedRevision();
    const compactRev = src.compactRevision();
    const history = src.history;
    const rest: Watcher[] = [];
    for (const w of ready) {
      if (w.removed || w.synced || w.stream.blocked) continue;
      if (w.minRev < compactRev) {
        w.stream.send({ watchId: w.id, events: [], revision: 0, compactRevision: compactRev });
        this.remove(w);
      } else if (w.minRev > notified) {
        this.toSynced(w);
      } else if (w.minRev >= history.startRev) {
        if (this.sendEvents(w, w.select(history.range(w.minRev, notified), compactRev), notified)) {
          w.minRev = notified + 1;
          this.toSynced(w);
        }
      } else {
        rest.push(w);
      }
    }
    return rest;
  }

  /**
   * One LevelDB read for a batch of unsynced watchers. Reads from a source that was
   * swapped out meanwhile are dropped (and their errors: the store was closed under
   * them); the next pass serves the watchers from the new source.
   */
  private async syncFromDb(src: HistorySource, batch: Watcher[]): Promise<void> {
    try {
      const upTo = src.notifiedRevision();
      const from = Math.max(1, Math.min(...batch.map((w) => w.minRev)));
      const { events, last } = await src.readHistory(from, upTo, MAX_EVENTS_PER_SYNC);
      if (src !== this.src) return;
      const prevKvs = new Map<string, Promise<KeyValue | undefined>>();
      for (const w of batch) {
        if (w.removed || w.synced || w.stream.blocked) continue;
        let selected = w.select(events, src.compactRevision());
        if (w.prevKv && selected.length > 0) {
          selected = await this.withPrevKv(src, selected, prevKvs);
          if (src !== this.src) return;
        }
        if (w.removed || w.synced || w.stream.blocked) continue;
        if (w.minRev < src.compactRevision()) continue; // the next pass reports the compaction
        if (this.sendEvents(w, selected, upTo)) w.minRev = Math.max(w.minRev, last + 1);
      }
    } catch (e) {
      if (src === this.src) throw e;
    }
  }

  /** etcd looks prevKv up at modRevision-1; creates have none, compacted ones are left out. */
  private async withPrevKv(src: HistorySource, events: Event[], cache: Map<string, Promise<KeyValue | undefined>>): Promise<Event[]> {
    return Promise.all(
      events.map(async (ev) => {
        if (ev.type === 'put' && ev.kv.createRevision === ev.kv.modRevision) return ev;
        const id = `${ev.kv.modRevision}:${ev.kv.key.toString('latin1')}`;
        let p = cache.get(id);
        if (!p) cache.set(id, (p = src.kvAt(ev.kv.key, ev.kv.modRevision - 1)));
        const prevKv = await p;
        return prevKv ? { ...ev, prevKv } : ev;
      }),
    );
  }

  private flushProgress(): void {
    const src = this.src;
    if (!src) return;
    for (const s of this.progressWaiting) {
      if (s.closed || !s.progressPending) {
        this.progressWaiting.delete(s);
        continue;
      }
      if (s.blocked || !s.allSynced()) continue;
      s.progressPending = false;
      this.progressWaiting.delete(s);
      s.send({ watchId: -1, events: [], revision: src.notifiedRevision() });
    }
  }
}
