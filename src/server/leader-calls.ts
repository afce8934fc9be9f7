// Requests only the leader can answer (lease keep-alive and time-to-live, learner
// promotion), made from any member: this member's own answer while it leads, otherwise
// a call over the peer port to the leader. Like etcd's follower (LeaseRenew, waitLeader)
// a call rides out a leader change: it waits for a leader, retries a forward that got no
// answer against whoever leads then, and only at its deadline fails, with etcd's errors,
// never with the socket error of the last attempt.

import type { Logger } from 'pino';
import { EtcdError, Errors } from './errors.js';
import { idHex16 } from './ids.js';
import { ForwardFailed, type LeaderRpc } from './transport/index.js';

export interface LeaderCallsDeps {
  /** the leader this member knows of; 0n while there is none */
  leader(): bigint;
  isLeader(): boolean;
  /** this member's own answers, valid while it leads */
  readonly local: LeaderRpc;
  /** one attempt at `leader` over the peer port, giving up after `timeoutMs` */
  remote(leader: bigint, timeoutMs: number): LeaderRpc;
  /** called whenever the known leader changes; returns the unsubscribe */
  onLeaderChange(fn: () => void): () => void;
  /** aborted when the member stops */
  readonly stopping: AbortSignal;
  /** how long a call may take in all (etcd's request timeout) */
  timeoutMs(): number;
  /** the pause before asking the same leader again after a failed attempt */
  retryMs(): number;
  log: Logger;
}

/** A leader that answers with one of these has lost its leadership meanwhile: ask again. */
const LEADERSHIP_LOST = new Set<string>([Errors.leaderChanged.message, Errors.noLeader.message, Errors.notLeader.message, Errors.stopped.message]);

function leadershipLost(err: unknown): boolean {
  return err instanceof EtcdError && LEADERSHIP_LOST.has(err.message);
}

export class LeaderCalls {
  constructor(private readonly deps: LeaderCallsDeps) {}

  /** Renews a lease at the leader; `signal` aborts the wait when the client goes away. */
  leaseRenew(id: bigint, signal?: AbortSignal): Promise<number> {
    return this.call('lease-renew', (rpc) => rpc.leaseRenew(id), signal);
  }

  leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }> {
    return this.call('lease-ttl', (rpc) => rpc.leaseTimeToLive(id, keys));
  }

  memberPromote(id: bigint): Promise<void> {
    return this.call('member-promote', (rpc) => rpc.memberPromote(id));
  }

  /**
   * Runs `fn` against the leader until it answers, the deadline passes (Errors.noLeader
   * without a leader, Errors.timeout with one) or `signal` aborts (Errors.canceled).
   * The leader's own refusals (an EtcdError) are the answer and end the call.
   */
  async call<T>(op: string, fn: (rpc: LeaderRpc) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const deadline = Date.now() + this.deps.timeoutMs();
    for (;;) {
      if (this.deps.stopping.aborted) throw Errors.stopped;
      if (signal?.aborted) throw Errors.canceled;
      const left = deadline - Date.now();
      const leader = this.deps.leader();
      if (left <= 0) throw leader === 0n ? Errors.noLeader : Errors.timeout;
      if (leader === 0n) {
        await this.leaderChangeOr(left, signal);
        continue;
      }
      const rpc = this.deps.isLeader() ? this.deps.local : this.deps.remote(leader, left);
      try {
        return await fn(rpc);
      } catch (err) {
        if (err instanceof ForwardFailed) {
          this.deps.log.warn({ 'remote-peer-id': idHex16(err.peer), op, error: err.reason }, 'failed to forward a request to the leader');
        } else if (!leadershipLost(err)) {
          throw err;
        }
      }
      // Ask again once the leader changes, or after a pause if it stays (its stream may
      // just be reconnecting); either way no sooner than the pause when nothing changed.
      if (this.deps.leader() === leader) await this.leaderChangeOr(Math.min(this.deps.retryMs(), deadline - Date.now()), signal);
    }
  }

  /** Resolves when the known leader changes, after `ms`, when `signal` aborts or the member stops. */
  private leaderChangeOr(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const signals = signal === undefined ? [this.deps.stopping] : [this.deps.stopping, signal];
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        for (const s of signals) s.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      const off = this.deps.onLeaderChange(done);
      for (const s of signals) s.addEventListener('abort', done);
    });
  }
}
