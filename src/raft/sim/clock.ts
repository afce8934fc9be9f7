// A member's clock in the simulator: the simulation fires its tickers at raft-tick
// steps, its timeouts once the step they are due at comes, and runs its immediates
// when it lets the members work, so everything the RaftNode and the Applier schedule
// happens at a step the seed decides. One step is one virtual millisecond.

import type { RaftClock } from '../../server/raft-node.js';
import type { ApplierClock } from '../../server/applier.js';

export class SimClock implements RaftClock, ApplierClock {
  private readonly tickers = new Map<number, () => void>();
  private readonly timeouts = new Map<number, { due: number; fn: () => void }>();
  private nextTimer = 1;
  private immediates: Array<() => void> = [];

  constructor(readonly now: () => number) {}

  setInterval(fn: () => void): number {
    const id = this.nextTimer++;
    this.tickers.set(id, fn);
    return id;
  }

  clearInterval(timer: unknown): void {
    this.tickers.delete(timer as number);
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextTimer++;
    this.timeouts.set(id, { due: this.now() + ms, fn });
    return id;
  }

  clearTimeout(timer: unknown): void {
    this.timeouts.delete(timer as number);
  }

  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  /** One interval period passes: every ticker fires. */
  tick(): void {
    for (const fn of this.tickers.values()) fn();
  }

  /** Fires the timeouts due by now, in the order they were set. */
  fireDue(): void {
    const now = this.now();
    for (const [id, t] of this.timeouts) {
      if (t.due > now) continue;
      this.timeouts.delete(id);
      t.fn();
    }
  }

  /** Runs the immediates queued so far (not those they queue); false when there were none. */
  runImmediates(): boolean {
    const due = this.immediates;
    if (due.length === 0) return false;
    this.immediates = [];
    for (const fn of due) fn();
    return true;
  }
}
