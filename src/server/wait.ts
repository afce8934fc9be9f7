// Waiters for proposals, keyed by request ID: a client request waits here until its
// entry is applied (or its deadline passes). Deadlines are swept by the server's tick
// rather than armed as one timer per request.

import { probe } from './probe.js';

interface Pending<V> {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  /** when the request began (ms, Date.now()), for the error its timeout gets */
  startedAt: number;
  deadline: number;
  onTimeout: (startedAt: number) => unknown;
  /** what the waiter gets of the value (a throw rejects it); undefined: the value itself */
  map: ((v: V) => unknown) | undefined;
}

export class WaitRegistry<V> {
  private readonly pending = new Map<bigint, Pending<V>>();

  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers `id` for a request that began at `startedAt`; `onTimeout` makes the error it
   * is rejected with once `deadline` passes. `map` turns the value into what the waiter
   * gets, in place of a `then` on every wait.
   */
  register(id: bigint, startedAt: number, deadline: number, onTimeout: (startedAt: number) => unknown): Promise<V>;
  register<R>(id: bigint, startedAt: number, deadline: number, onTimeout: (startedAt: number) => unknown, map: (v: V) => R): Promise<R>;
  register(id: bigint, startedAt: number, deadline: number, onTimeout: (startedAt: number) => unknown, map?: (v: V) => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, startedAt, deadline, onTimeout, map });
    });
  }

  trigger(id: bigint, value: V): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    probe?.mark('applied');
    if (p.map === undefined) return p.resolve(value);
    let mapped: unknown;
    try {
      mapped = p.map(value);
    } catch (err) {
      return p.reject(err);
    }
    p.resolve(mapped);
  }

  fail(id: bigint, err: unknown): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    p.reject(err);
  }

  /** Rejects every waiter whose deadline is at or before `now`. */
  sweep(now: number): void {
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        p.reject(p.onTimeout(p.startedAt));
      }
    }
  }

  failAll(err: unknown): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
