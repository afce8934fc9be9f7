// A member's clock in the simulator: the simulation fires its tickers at raft-tick
// steps and runs its immediates when it lets the members work, so everything the
// RaftNode schedules happens at a step the seed decides.

import type { RaftClock } from '../../server/raft-node.js';

export class SimClock implements RaftClock {
  private readonly tickers = new Map<number, () => void>();
  private nextTimer = 1;
  private immediates: Array<() => void> = [];

  setInterval(fn: () => void): number {
    const id = this.nextTimer++;
    this.tickers.set(id, fn);
    return id;
  }

  clearInterval(timer: unknown): void {
    this.tickers.delete(timer as number);
  }

  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  /** One interval period passes: every ticker fires. */
  tick(): void {
    for (const fn of this.tickers.values()) fn();
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
