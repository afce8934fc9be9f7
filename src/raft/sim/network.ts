// The simulated network: every message gets a delivery time; links can drop,
// delay (reordering falls out of random delays), duplicate, and be cut one way or
// both ways by partitions.

import type { Message } from '../../raftpb/index.js';
import type { Rng } from '../../pkg/rng.js';

export interface NetworkFaults {
  /** probability a message is lost */
  drop: number;
  /** probability a message is delivered twice */
  duplicate: number;
  /** delivery delay is uniform in [1, maxDelay] steps */
  maxDelay: number;
  /** probability of an extra long delay (up to longDelay steps): heavy reordering */
  longDelayRate: number;
  longDelay: number;
}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
}

export class SimNetwork {
  /** binary min-heap ordered by (at, seq) */
  private heap: InFlight[] = [];
  private seq = 0;
  /** cut links, as "from>to" */
  private readonly cut = new Set<string>();
  faults: NetworkFaults;
  sent = 0;
  dropped = 0;
  /** told about every lost message (the transport reports failed snapshot sends) */
  onLost: (m: Message) => void = () => {};

  constructor(
    private readonly rng: Rng,
    faults: NetworkFaults,
  ) {
    this.faults = faults;
  }

  isCut(from: bigint, to: bigint): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`);
  }

  cutLink(from: bigint, to: bigint): void {
    this.cut.add(`${from}>${to}`);
  }

  healAll(): void {
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }

  /** Put m on the wire at time now. Returns false when it is lost right away. */
  send(m: Message, now: number): boolean {
    this.sent++;
    const f = this.faults;
    if (this.isCut(m.from, m.to) || (f.drop > 0 && this.rng.chance(f.drop))) {
      this.dropped++;
      this.onLost(m);
      return false;
    }
    this.push(now + this.delay(), m);
    if (f.duplicate > 0 && this.rng.chance(f.duplicate)) this.push(now + this.delay(), m);
    return true;
  }

  private delay(): number {
    const f = this.faults;
    let d = 1 + this.rng.int(f.maxDelay);
    if (f.longDelayRate > 0 && this.rng.chance(f.longDelayRate)) d += this.rng.int(f.longDelay);
    return d;
  }

  /** Messages due by `now`, in delivery order; a link cut meanwhile loses them. */
  due(now: number): Message[] {
    const out: Message[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const { m } = this.pop();
      if (this.isCut(m.from, m.to)) {
        this.dropped++;
        this.onLost(m);
      } else {
        out.push(m);
      }
    }
    return out;
  }

  get inFlight(): number {
    return this.heap.length;
  }

  private push(at: number, m: Message): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, m });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): InFlight {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: InFlight, b: InFlight): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
