// A plain, exact etcd key-value executor: given the store at some revision,
// what does a request return and which events does it produce? Used to replay
// the reference history (reference.ts) and by the synthetic history generator.
// Independent of the checker's model on purpose: two implementations of the same
// semantics guard each other.

import type { Compare, KeyValue, KvRequest, TxnRequestOp, TxnResponseOp, WatchEvent } from './history.js';
import { inRange, NO_LEASE } from './model.js';

/** Read access to the store at one revision. */
export interface StoreView {
  get(key: string): KeyValue | null;
  /** keys present in [key, end), sorted */
  keysIn(key: string, end: string): string[];
}

export interface Execution {
  events: WatchEvent[];
  /** for a txn: whether the compares held */
  succeeded: boolean;
  /** the per-op responses of a txn, or the single response of other requests */
  results: TxnResponseOp[];
}

class Overlay implements StoreView {
  private readonly writes = new Map<string, KeyValue | null>();
  constructor(private readonly base: StoreView) {}
  get(key: string): KeyValue | null {
    return this.writes.has(key) ? this.writes.get(key)! : this.base.get(key);
  }
  keysIn(key: string, end: string): string[] {
    const keys = new Set(this.base.keysIn(key, end));
    for (const [k, v] of this.writes) {
      if (!inRange(k, key, end)) continue;
      if (v === null) keys.delete(k);
      else keys.add(k);
    }
    return [...keys].sort();
  }
  set(key: string, kv: KeyValue | null): void {
    this.writes.set(key, kv);
  }
}

function holds(view: StoreView, c: Compare): boolean {
  const kv = view.get(c.key);
  if (c.target === 'VALUE' && kv === null) return false;
  let a: number | string | bigint;
  let b: number | string | bigint;
  switch (c.target) {
    case 'VALUE':
      a = kv!.value;
      b = String(c.operand);
      break;
    case 'LEASE':
      a = BigInt(kv?.lease ?? NO_LEASE);
      b = BigInt(c.operand);
      break;
    case 'VERSION':
      a = kv?.version ?? 0;
      b = Number(c.operand);
      break;
    case 'CREATE':
      a = kv?.createRevision ?? 0;
      b = Number(c.operand);
      break;
    case 'MOD':
      a = kv?.modRevision ?? 0;
      b = Number(c.operand);
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return a === b;
    case 'NOT_EQUAL':
      return a !== b;
    case 'GREATER':
      return a > b;
    case 'LESS':
      return a < b;
  }
}

function runOps(view: Overlay, ops: TxnRequestOp[], rev: number, events: WatchEvent[]): TxnResponseOp[] {
  const results: TxnResponseOp[] = [];
  for (const op of ops) {
    switch (op.type) {
      case 'range': {
        const kvs = view.keysIn(op.key, op.end).map((k) => view.get(k)!);
        results.push({ type: 'range', kvs, count: kvs.length });
        break;
      }
      case 'put': {
        const prev = view.get(op.key);
        const kv: KeyValue = {
          key: op.key,
          value: op.value,
          createRevision: prev?.createRevision ?? rev,
          modRevision: rev,
          version: (prev?.version ?? 0) + 1,
          lease: op.lease,
        };
        view.set(op.key, kv);
        events.push({ type: 'PUT', kv, prevKv: prev });
        results.push({ type: 'put' });
        break;
      }
      case 'delete': {
        const keys = view.keysIn(op.key, op.end);
        for (const k of keys) {
          const prev = view.get(k)!;
          view.set(k, null);
          events.push({ type: 'DELETE', kv: deletedKv(k, rev), prevKv: prev });
        }
        results.push({ type: 'delete', deleted: keys.length });
        break;
      }
    }
  }
  return results;
}

/** etcd's DELETE event kv: only the key and the deletion revision. */
export function deletedKv(key: string, rev: number): KeyValue {
  return { key, value: '', createRevision: 0, modRevision: rev, version: 0, lease: NO_LEASE };
}

/**
 * Executes a request against `view` as if it created revision `rev` (if it writes
 * anything). Lease revokes need the attached keys: every key whose lease is `id`.
 * Lease existence is not tracked here (grants produce no events).
 */
export function execute(view: StoreView, input: KvRequest, rev: number): Execution {
  const overlay = new Overlay(view);
  const events: WatchEvent[] = [];
  switch (input.type) {
    case 'range':
      return { events, succeeded: true, results: runOps(overlay, [{ type: 'range', key: input.key, end: input.end }], rev, events) };
    case 'put':
    case 'delete':
      return { events, succeeded: true, results: runOps(overlay, [input.type === 'put' ? input : { type: 'delete', key: input.key, end: input.end }], rev, events) };
    case 'txn': {
      const succeeded = input.compare.every((c) => holds(view, c));
      const results = runOps(overlay, succeeded ? input.success : input.failure, rev, events);
      return { events, succeeded, results };
    }
    case 'leaseGrant':
      return { events, succeeded: true, results: [] };
    case 'leaseRevoke': {
      const attached = view.keysIn('\0', '\0').filter((k) => view.get(k)!.lease === input.id);
      for (const k of attached) events.push({ type: 'DELETE', kv: deletedKv(k, rev), prevKv: view.get(k) });
      return { events, succeeded: true, results: [] };
    }
  }
}

export function sameKv(a: KeyValue | null, b: KeyValue | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.key === b.key &&
    a.value === b.value &&
    a.createRevision === b.createRevision &&
    a.modRevision === b.modRevision &&
    a.version === b.version &&
    a.lease === b.lease
  );
}

/** Events are equal when type and kv are (prev_kv is validated separately). */
export function sameEvents(a: readonly WatchEvent[], b: readonly WatchEvent[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.type !== b[i]!.type || !sameKv(a[i]!.kv, b[i]!.kv)) return false;
  }
  return true;
}

/** The same events, possibly in another order. */
export function sameEventSet(a: readonly WatchEvent[], b: readonly WatchEvent[]): boolean {
  if (a.length !== b.length) return false;
  const order = (l: readonly WatchEvent[]): WatchEvent[] => [...l].sort((x, y) => (x.kv.key < y.kv.key ? -1 : x.kv.key > y.kv.key ? 1 : x.type < y.type ? -1 : x.type > y.type ? 1 : 0));
  return sameEvents(order(a), order(b));
}

export function describeEvents(events: readonly WatchEvent[]): string {
  return (
    '[' +
    events
      .map((e) => (e.type === 'PUT' ? `PUT ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}/c${e.kv.createRevision}/v${e.kv.version}` : `DELETE ${e.kv.key}@${e.kv.modRevision}`))
      .join(', ') +
    ']'
  );
}
