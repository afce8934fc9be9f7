// Watch traffic and the recorders.
//
// Workload watchers open watches at past, current and future revisions on
// random members, over a group, one key or everything, with random prev_kv,
// filters and progress notifications, keep them for a few seconds, and record
// every response. When a stream breaks, the next watch resumes from the last
// delivered revision + 1 (exercising "resumable").
//
// Recorders watch everything from revision 1 and resume on the next member after
// a failure; together they give the reference history (reference.ts). Their
// progress bounds compaction so they never lose history.

import { EtcdClient, fromPbEvent, toRevision, type PbWatchResponse, type RpcError } from './client.js';
import { groupPrefix, keyName, type KeySpace } from './generate.js';
import type { WatchRequestParams, WatchResponseRecord, WatchSession } from './history.js';
import { prefixEnd } from './partition.js';
import { Rng } from './rng.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WatchersOptions {
  watchers: number;
  recorders: number;
  space: KeySpace;
  seed: number;
  /** endpoints of the members, for choosing where to watch */
  endpoints: string[];
  /** endpoints recorders use (the real members, never a fault-injecting client proxy) */
  recorderEndpoints: string[];
  clock(): number;
  /** the newest revision the workload has seen, for choosing start revisions */
  currentRevision(): number;
  /**
   * Send WatchProgressRequests. etcd 3.4.23 answers them out of band with the
   * store's current revision, which can overtake events still queued for the
   * watcher (etcd-io/etcd#15220, fixed in 3.4.25/3.5.8), so they are only
   * validated against servers with the fix. Timed progress notifications
   * (progress_notify) go through the watcher's queue and are always used.
   */
  progressRequests: boolean;
  /**
   * Open watches beyond the member's own revision. etcd 3.4.23 resets such a
   * watcher's start to the store revision + 1 when the member restores a
   * snapshot, so it delivers events below the requested start (the class of
   * etcd-io/etcd#20221). Off: a start revision is clamped to the member's
   * revision + 1, asked just before the watch is created.
   */
  futureWatches: boolean;
}

interface Running {
  session: WatchSession;
  done: Promise<void>;
  close(): void;
  /** highest revision delivered (events or progress) */
  last(): number;
}

/** Opens one watch and records it until closed or broken. */
function openWatch(client: EtcdClient, session: WatchSession, clock: () => number, progressEveryMs: number): Running {
  let last = session.request.startRevision - 1;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let timer: NodeJS.Timeout | null = null;
  const finish = (end: string): void => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    if (session.closed === 0) {
      session.closed = clock();
      session.end = end;
    }
    resolveDone();
  };
  const stream = client.watch(
    (r: PbWatchResponse) => {
      try {
        const rec = toRecord(r, clock());
        session.responses.push(rec);
        for (const e of rec.events) last = Math.max(last, e.kv.modRevision);
        if (rec.progress) last = Math.max(last, rec.headerRevision);
        if (rec.canceled) {
          stream.close();
          finish(`canceled by server: ${rec.cancelReason || 'compacted at ' + rec.compactRevision}`);
        }
      } catch (e) {
        stream.close();
        finish(`undecodable response: ${String(e)}`);
      }
    },
    (err: RpcError | null) => finish(err === null ? 'stream ended' : `stream error: ${err.message}`),
  );
  stream.create(session.request);
  if (progressEveryMs > 0) timer = setInterval(() => stream.requestProgress(), progressEveryMs);
  return {
    session,
    done,
    close: () => {
      if (timer !== null) clearInterval(timer);
      timer = null;
      if (session.closed === 0) {
        session.closed = clock();
        session.end = 'canceled';
      }
      stream.close();
      resolveDone();
    },
    last: () => last,
  };
}

function toRecord(r: PbWatchResponse, time: number): WatchResponseRecord {
  const events = r.events.map(fromPbEvent);
  const compactRevision = toRevision(r.compact_revision);
  return {
    time,
    headerRevision: r.header === null ? 0 : toRevision(r.header.revision),
    watchId: r.watch_id,
    created: r.created,
    canceled: r.canceled,
    compactRevision,
    cancelReason: r.cancel_reason,
    progress: !r.created && !r.canceled && compactRevision === 0 && events.length === 0,
    events,
  };
}

export class Watchers {
  readonly sessions: WatchSession[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly clients = new Map<string, EtcdClient>();
  private readonly open = new Set<Running>();
  private readonly recorderProgress: number[] = [];

  constructor(private readonly o: WatchersOptions) {}

  private client(endpoint: string): EtcdClient {
    let c = this.clients.get(endpoint);
    if (c === undefined) this.clients.set(endpoint, (c = new EtcdClient([endpoint])));
    return c;
  }

  private newSession(client: number, endpoint: string, recorder: boolean, request: WatchRequestParams): WatchSession {
    const s: WatchSession = { id: this.sessions.length, client, endpoint, recorder, request, opened: this.o.clock(), closed: 0, end: '', responses: [] };
    this.sessions.push(s);
    return s;
  }

  startRecorders(): void {
    for (let r = 0; r < this.o.recorders; r++) {
      this.recorderProgress.push(0);
      this.loops.push(this.recorderLoop(r));
    }
  }

  startWatchers(): void {
    for (let w = 0; w < this.o.watchers; w++) this.loops.push(this.watcherLoop(w));
  }

  /** Compaction must stay below this: the lowest revision every recorder has received. */
  recordersReached(): number {
    return this.recorderProgress.length === 0 ? Infinity : Math.min(...this.recorderProgress);
  }

  /** Waits until every recorder received events up to `rev`. */
  async awaitRecorders(rev: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.recordersReached() >= rev) return true;
      await sleep(100);
    }
    return false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.open) r.close();
    await Promise.all(this.loops);
    for (const c of this.clients.values()) c.close();
  }

  private async recorderLoop(r: number): Promise<void> {
    const endpoints = this.o.recorderEndpoints;
    let next = r % endpoints.length;
    let from = 1;
    while (!this.stopped) {
      const endpoint = endpoints[next]!;
      const session = this.newSession(-100 - r, endpoint, true, { key: '\0', end: '\0', startRevision: from, prevKv: false, progressNotify: false, filters: [] });
      const running = openWatch(this.client(endpoint), session, this.o.clock, 0);
      this.open.add(running);
      const poll = setInterval(() => (this.recorderProgress[r] = Math.max(this.recorderProgress[r]!, running.last())), 50);
      await running.done;
      clearInterval(poll);
      this.open.delete(running);
      this.recorderProgress[r] = Math.max(this.recorderProgress[r]!, running.last());
      from = Math.max(from, running.last() + 1);
      next = (next + 1) % endpoints.length;
      if (!this.stopped) await sleep(100);
    }
  }

  private async watcherLoop(w: number): Promise<void> {
    const rng = new Rng(this.o.seed * 104729 + w);
    let resumeFrom = 0;
    let resumeRequest: WatchRequestParams | null = null;
    while (!this.stopped) {
      const endpoint = rng.pick(this.o.endpoints);
      let request: WatchRequestParams = resumeRequest !== null ? { ...resumeRequest, startRevision: resumeFrom } : this.randomRequest(rng);
      if (!this.o.futureWatches && request.startRevision > 0) {
        const member = await this.client(endpoint).status(1000).catch(() => null);
        request = { ...request, startRevision: member === null ? 0 : Math.min(request.startRevision, member.revision + 1) };
      }
      const session = this.newSession(-1 - w, endpoint, false, request);
      const progressEvery = this.o.progressRequests && rng.chance(0.5) ? rng.int(300, 900) : 0;
      const running = openWatch(this.client(endpoint), session, this.o.clock, progressEvery);
      this.open.add(running);
      const hold = sleep(rng.int(1000, 5000));
      await Promise.race([running.done, hold]);
      const brokeByItself = session.closed !== 0;
      running.close();
      this.open.delete(running);
      // A broken stream is resumed where it stopped, once.
      if (brokeByItself && resumeRequest === null && !session.end.startsWith('canceled') && running.last() >= 1) {
        resumeRequest = request;
        resumeFrom = running.last() + 1;
        await sleep(rng.int(50, 300));
      } else {
        resumeRequest = null;
      }
    }
  }

  private randomRequest(rng: Rng): WatchRequestParams {
    const g = rng.int(0, this.o.space.groups - 1);
    const scope = rng.weighted({ group: 6, key: 3, all: 1 });
    const [key, end] =
      scope === 'group' ? [groupPrefix(g), prefixEnd(groupPrefix(g))] : scope === 'key' ? [keyName(g, rng.int(0, this.o.space.keysPerGroup - 1)), ''] : ['\0', '\0'];
    const current = this.o.currentRevision();
    const when = rng.weighted({ past: 4, now: 3, future: 2 });
    const startRevision = when === 'past' ? Math.max(1, current - rng.int(1, 100)) : when === 'now' ? 0 : current + rng.int(1, 30);
    const filter = rng.weighted({ none: 8, NOPUT: 1, NODELETE: 1 });
    return {
      key,
      end,
      startRevision,
      prevKv: rng.chance(0.5),
      progressNotify: rng.chance(0.5),
      filters: filter === 'none' ? [] : [filter],
    };
  }
}
