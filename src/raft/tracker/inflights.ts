// Inflights: flow control for one follower in StateReplicate. A ring buffer of the
// last entry index of each MsgApp sent but not yet acknowledged, bounded by count.

export class Inflights {
  private start = 0;
  private n = 0;
  private readonly buffer: number[] = [];

  constructor(
    /** MaxInflightMsgs */
    readonly size: number,
  ) {}

  get count(): number {
    return this.n;
  }

  full(): boolean {
    return this.n === this.size;
  }

  /** Record a sent MsgApp whose last entry is `index` (indexes must increase). */
  add(index: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights');
    let next = this.start + this.n;
    if (next >= this.size) next -= this.size;
    this.buffer[next] = index;
    this.n++;
  }

  /** The follower acknowledged everything up to `to`: free those messages. */
  freeLE(to: number): void {
    if (this.n === 0 || to < this.buffer[this.start]!) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.n; i++) {
      if (to < this.buffer[idx]!) break;
      if (++idx >= this.size) idx -= this.size;
    }
    this.n -= i;
    this.start = this.n === 0 ? 0 : idx;
  }

  reset(): void {
    this.start = 0;
    this.n = 0;
  }
}
