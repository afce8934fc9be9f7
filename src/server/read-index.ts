// Linearizable reads through raft's ReadIndex, batched as etcd's linearizableReadLoop
// does: every read that arrives while one ReadIndex round is in flight shares the next
// round, so a thousand concurrent reads cost one heartbeat quorum, not a thousand.

import { Errors } from './errors.js';

/** A read waits until the member has applied `index`, the commit index its round returned. */
interface Round {
  ctx: Buffer;
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
  sentAt: number;
  index?: number;
}

export interface ReadIndexDeps {
  /** asks raft for a read index under `ctx` (the answer comes to onReadState) */
  requestReadIndex(ctx: Uint8Array): void;
  /** a unique id, used as the round's context */
  nextId(): bigint;
  hasLeader(): boolean;
  appliedIndex(): number;
  /** how long a round may wait for its answer before its reads fail */
  timeoutMs(): number;
  /** a round got no answer in time and its reads failed */
  timedOut(timeoutMs: number): void;
}

/** A round without an answer after this long is asked again (the leader may have changed). */
const RETRY_MS = 500;

export class ReadIndexQueue {
  private pending: Round | undefined;
  private inFlight: Round | undefined;
  /** answered rounds whose index is not applied yet, in index order */
  private readonly waitingApply: Round[] = [];

  constructor(private readonly deps: ReadIndexDeps) {}

  /** Resolves once everything committed before the call is applied on this member. */
  read(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending ??= { ctx: Buffer.alloc(8), waiters: [], sentAt: 0 };
      this.pending.waiters.push({ resolve, reject });
      this.send();
    });
  }

  private send(): void {
    if (this.inFlight || !this.pending) return;
    const round = this.pending;
    this.pending = undefined;
    round.ctx.writeBigUInt64BE(this.deps.nextId());
    round.sentAt = Date.now();
    this.inFlight = round;
    this.deps.requestReadIndex(round.ctx);
  }

  /** Raft answered a ReadIndex request. */
  onReadState(index: number, ctx: Uint8Array): void {
    const round = this.inFlight;
    if (!round || Buffer.compare(round.ctx, ctx) !== 0) return;
    this.inFlight = undefined;
    round.index = index;
    if (index <= this.deps.appliedIndex()) for (const w of round.waiters) w.resolve();
    else this.waitingApply.push(round);
    this.send();
  }

  /** The member applied more entries. */
  onApplied(applied: number): void {
    while (this.waitingApply.length > 0 && this.waitingApply[0]!.index! <= applied) {
      for (const w of this.waitingApply.shift()!.waiters) w.resolve();
    }
  }

  /** Called on every tick: re-asks a silent round while there is a leader, fails one that waited too long. */
  tick(now: number): void {
    const round = this.inFlight;
    if (!round) return;
    if (now - round.sentAt >= this.deps.timeoutMs()) {
      this.inFlight = undefined;
      this.deps.timedOut(this.deps.timeoutMs());
      for (const w of round.waiters) w.reject(Errors.timeout);
      this.send();
    } else if (now - round.sentAt >= RETRY_MS && this.deps.hasLeader()) {
      this.deps.requestReadIndex(round.ctx);
    }
  }

  /**
   * A leader was elected: the round in flight is asked again at once, of the new leader.
   * A leader change does not fail reads (etcd's fail with "leader changed" and leave the
   * retry to the client): a read index from any leader after the read began is as good.
   */
  leaderFound(): void {
    const round = this.inFlight;
    if (round) this.deps.requestReadIndex(round.ctx);
  }

  /** Every waiting read fails with `err` (the member stops). */
  failAll(err: unknown): void {
    for (const round of [this.pending, this.inFlight, ...this.waitingApply.splice(0)]) {
      for (const w of round?.waiters ?? []) w.reject(err);
    }
    this.pending = undefined;
    this.inFlight = undefined;
  }
}
