// Synthetic histories of a correct etcd: N clients with the workload's request
// mix, each request taking effect at a random instant between its call and its
// return on an exact in-memory store. Some requests "time out": their outcome is
// hidden and they are applied or dropped at random. Recorder and client watch
// sessions are derived from the same store. Used to prove the checker accepts
// correct histories at scale (tests) and to measure its speed (bench.ts).

import { execute, type StoreView } from './executor.js';
import { Knowledge, RequestGenerator, groupPrefix, type KeySpace } from './generate.js';
import type { History, KeyValue, KvRequest, KvResponse, Operation, WatchEvent, WatchSession } from './history.js';
import { emptyHistory } from './history.js';
import { inRange, NO_LEASE } from './model.js';
import { prefixEnd } from './partition.js';
import { Rng } from './rng.js';

export interface SynthOptions {
  seed: number;
  clients: number;
  operations: number;
  space: KeySpace;
  /** share of requests whose outcome is unknown */
  failRate: number;
  /** client watch sessions to derive from the store */
  watches: number;
}

export const DEFAULT_SYNTH: SynthOptions = {
  seed: 1,
  clients: 8,
  operations: 2000,
  space: { groups: 8, keysPerGroup: 4 },
  failRate: 0.02,
  watches: 10,
};

class Store implements StoreView {
  rev = 1;
  readonly kvs = new Map<string, KeyValue>();
  readonly leases = new Set<string>();
  /** every revision's events, in order */
  readonly log: { rev: number; events: WatchEvent[] }[] = [];

  get(key: string): KeyValue | null {
    return this.kvs.get(key) ?? null;
  }
  keysIn(key: string, end: string): string[] {
    return [...this.kvs.keys()].filter((k) => inRange(k, key, end)).sort();
  }

  /** Applies a request; returns its response, or an error string (not applied). */
  apply(input: KvRequest): KvResponse | string {
    if (input.type === 'leaseGrant') {
      if (this.leases.has(input.id)) return 'etcdserver: lease already exists';
      this.leases.add(input.id);
      return { type: 'leaseGrant', revision: this.rev };
    }
    if (input.type === 'leaseRevoke' && !this.leases.has(input.id)) return 'etcdserver: requested lease not found';
    const usesLease = (l: string): boolean => l !== NO_LEASE && !this.leases.has(l);
    if (input.type === 'put' && usesLease(input.lease)) return 'etcdserver: requested lease not found';
    const exec = execute(this, input, this.rev + 1);
    if (input.type === 'txn') {
      const branch = exec.succeeded ? input.success : input.failure;
      if (branch.some((o) => o.type === 'put' && usesLease(o.lease))) return 'etcdserver: requested lease not found';
    }
    if (input.type === 'leaseRevoke') this.leases.delete(input.id);
    if (exec.events.length > 0) {
      this.rev++;
      this.log.push({ rev: this.rev, events: exec.events });
      for (const e of exec.events) {
        if (e.type === 'PUT') this.kvs.set(e.kv.key, e.kv);
        else this.kvs.delete(e.kv.key);
      }
    }
    const r = this.rev;
    switch (input.type) {
      case 'range': {
        const res = exec.results[0]!;
        if (res.type !== 'range') throw new Error('synth: range result expected');
        return { type: 'range', revision: r, kvs: res.kvs, count: res.count };
      }
      case 'put':
        return { type: 'put', revision: r };
      case 'delete': {
        const res = exec.results[0]!;
        return { type: 'delete', revision: r, deleted: res.type === 'delete' ? res.deleted : 0 };
      }
      case 'txn':
        return { type: 'txn', revision: r, succeeded: exec.succeeded, results: exec.results };
      case 'leaseRevoke':
        return { type: 'leaseRevoke', revision: r };
    }
  }
}

/** A binary min-heap of timed events. */
class Queue<T> {
  private readonly items: { t: number; seq: number; v: T }[] = [];
  private seq = 0;
  get size(): number {
    return this.items.length;
  }
  push(t: number, v: T): void {
    const a = this.items;
    a.push({ t, seq: this.seq++, v });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.t < a[i]!.t || (a[p]!.t === a[i]!.t && a[p]!.seq < a[i]!.seq)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): { t: number; v: T } {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        const less = (x: number, y: number): boolean => a[x]!.t < a[y]!.t || (a[x]!.t === a[y]!.t && a[x]!.seq < a[y]!.seq);
        if (l < a.length && less(l, m)) m = l;
        if (r < a.length && less(r, m)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return { t: top.t, v: top.v };
  }
}

type SimEvent = { kind: 'call'; client: number } | { kind: 'apply'; op: Operation; hidden: boolean } | { kind: 'return'; op: Operation; response: KvResponse | string };

export function synthesizeHistory(options: Partial<SynthOptions> = {}): History {
  const o = { ...DEFAULT_SYNTH, ...options };
  const rng = new Rng(o.seed);
  const store = new Store();
  const history = emptyHistory();
  const knowledge = Array.from({ length: o.clients }, () => new Knowledge());
  const generators = Array.from({ length: o.clients }, (_, c) => new RequestGenerator(new Rng(o.seed * 1000 + c), o.space, c));
  const q = new Queue<SimEvent>();
  const responses = new Map<Operation, KvResponse | string>();
  for (let c = 0; c < o.clients; c++) q.push(rng.uniform(0, 1), { kind: 'call', client: c });
  let issued = 0;
  let now = 0;
  while (q.size > 0) {
    const { t, v: ev } = q.pop();
    now = t;
    switch (ev.kind) {
      case 'call': {
        if (issued >= o.operations) break;
        const input = generators[ev.client]!.next(knowledge[ev.client]!);
        const op: Operation = { id: issued++, client: ev.client, endpoint: 'sim', input, call: t, return: Infinity, output: null };
        history.operations.push(op);
        const duration = rng.uniform(0.2, 3);
        if (rng.chance(o.failRate)) {
          // Timed out: maybe applied, possibly after the client gave up.
          op.error = 'context deadline exceeded';
          if (rng.chance(0.5)) q.push(t + rng.uniform(0, duration * 3), { kind: 'apply', op, hidden: true });
          q.push(t + duration, { kind: 'call', client: ev.client });
        } else {
          q.push(t + rng.uniform(0, duration), { kind: 'apply', op, hidden: false });
          q.push(t + duration, { kind: 'return', op, response: '' });
        }
        break;
      }
      case 'apply': {
        const res = store.apply(ev.op.input);
        if (!ev.hidden) responses.set(ev.op, res);
        break;
      }
      case 'return': {
        const op = ev.op;
        const res = responses.get(op)!;
        op.return = t;
        if (typeof res === 'string') op.error = res;
        else {
          op.output = res;
          knowledge[op.client]!.observe(op);
        }
        q.push(t + rng.uniform(0, 0.3), { kind: 'call', client: op.client });
        break;
      }
    }
  }
  history.watches.push(recorder(store, now));
  for (let i = 0; i < o.watches; i++) history.watches.push(clientWatch(i + 1, store, rng, o.space, now));
  return history;
}

function recorder(store: Store, end: number): WatchSession {
  return {
    id: 0,
    client: -1,
    endpoint: 'sim',
    recorder: true,
    request: { key: '\0', end: '\0', startRevision: 1, prevKv: false, progressNotify: false, filters: [] },
    opened: 0,
    closed: end,
    end: 'canceled',
    responses: [
      { time: 0, headerRevision: 1, watchId: '0', created: true, canceled: false, compactRevision: 0, cancelReason: '', progress: false, events: [] },
      ...store.log.map((l) => ({
        time: 0,
        headerRevision: l.rev,
        watchId: '0',
        created: false,
        canceled: false,
        compactRevision: 0,
        cancelReason: '',
        progress: false,
        events: l.events.map((e) => ({ ...e, prevKv: null })),
      })),
    ],
  };
}

/** A watch on one group from a random revision, with prev_kv, over a random window of the log. */
function clientWatch(id: number, store: Store, rng: Rng, space: KeySpace, end: number): WatchSession {
  const g = rng.int(0, space.groups - 1);
  const last = store.rev;
  const start = rng.int(1, Math.max(1, last));
  const stop = rng.int(start, Math.max(start, last));
  const key = groupPrefix(g);
  const session: WatchSession = {
    id,
    client: -1 - id,
    endpoint: 'sim',
    recorder: false,
    request: { key, end: prefixEnd(key), startRevision: start, prevKv: true, progressNotify: false, filters: [] },
    opened: 0,
    closed: end,
    end: 'canceled',
    responses: [{ time: 0, headerRevision: start, watchId: '0', created: true, canceled: false, compactRevision: 0, cancelReason: '', progress: false, events: [] }],
  };
  for (const l of store.log) {
    if (l.rev < start || l.rev > stop) continue;
    const events = l.events.filter((e) => inRange(e.kv.key, key, prefixEnd(key)));
    if (events.length > 0) {
      session.responses.push({ time: 0, headerRevision: l.rev, watchId: '0', created: false, canceled: false, compactRevision: 0, cancelReason: '', progress: false, events });
    }
  }
  session.responses.push({ time: 0, headerRevision: stop, watchId: '-1', created: false, canceled: false, compactRevision: 0, cancelReason: '', progress: true, events: [] });
  return session;
}
