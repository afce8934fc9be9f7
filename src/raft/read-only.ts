// ReadOnly: the leader's queue of ReadIndex requests (Raft thesis §6.4).
//
// safe:        a read is served at the commit index it arrived at, once a quorum of
//              voters has answered a heartbeat sent after it arrived — proof that no
//              newer leader existed at that moment.
// lease-based: served at once, trusting that check-quorum keeps a deposed leader from
//              believing it leads for longer than an election timeout (relies on
//              bounded clock drift; faster, weaker).

import type { Message } from '../raftpb/index.js';
import { type VoteResult, voteResult } from './quorum.js';

export type ReadOnlyOption = 'safe' | 'lease-based';

export interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Map<bigint, boolean>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private readonly queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Queue a request (its context is entries[0].data) to be served at `index`. */
  addRequest(index: number, req: Message): void {
    const key = ctxKey(req.entries[0]!.data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req, index, acks: new Map() });
    this.queue.push(key);
  }

  /** A heartbeat carrying ctx was answered by id; returns whether ctx is still pending. */
  recvAck(id: bigint, ctx: Uint8Array): boolean {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return false;
    rs.acks.set(id, true);
    return true;
  }

  /** quorum state of the request tagged ctx */
  result(ctx: Uint8Array, voters: ReadonlySet<bigint>): VoteResult {
    const rs = this.pending.get(ctxKey(ctx));
    return rs === undefined ? 'pending' : voteResult(voters, rs.acks);
  }

  /**
   * The request tagged ctx is confirmed: dequeue and return it together with every
   * request queued before it (the same heartbeat round confirmed them too).
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      out.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return out;
  }

  /** context of the newest pending request, to piggyback on the next heartbeat */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.req.entries[0]!.data;
  }

  get pendingCount(): number {
    return this.queue.length;
  }
}

/** A Map key for an opaque request context. */
function ctxKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}
