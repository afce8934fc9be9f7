// A member's proposals and their waits (etcd's processInternalRaftRequestOnce, its conf
// change counterpart and wait.Wait): a request becomes a raft entry under a fresh ID,
// and its proposer waits on that ID until the applier answers with the result of the
// request's kind, or the deadline passes.

import type { Logger } from 'pino';
import type { ConfChange, ConfChangeType } from '../raftpb/types.js';
import type { AuthInfo } from './auth/store.js';
import { Errors } from './errors.js';
import type { Member } from './membership.js';
import { uint64 } from './pb.js';
import { type ApplyResult, type PbRequestHeader, type RaftRequest, type RequestKind, type ResultOf, encodeRaftRequest, resultOf } from './raft-request.js';
import { type V2Request, encodeStoreRequest } from './v2request.js';
import type { StoreRequest, V2Event } from './v2store/index.js';
import { type TimeoutView, timeoutError } from './timeout-cause.js';
import { WaitRegistry } from './wait.js';

/** etcd refuses new proposals when apply lags commit by more than this. */
const MAX_GAP_BETWEEN_APPLY_AND_COMMIT = 5000;

/** What proposing needs of the member. */
export interface ProposalsParts {
  readonly memberId: bigint;
  /** the raft driver; throws when raft drops the proposal */
  readonly raft: { propose(data: Uint8Array): void; proposeConfChange(cc: ConfChange): void };
  /** the current leader (0n: none) */
  leader(): bigint;
  committed(): number;
  applied(): number;
  /** whether a message to the peer would go out now */
  canSendTo(id: bigint): boolean;
  onLeaderChange(fn: () => void): () => void;
  /** aborted when the member stops */
  readonly stopping: AbortSignal;
  nextId(): bigint;
  readonly heartbeatMs: number;
  readonly maxRequestBytes: number;
  requestTimeoutMs(): number;
  /** what a timed-out proposal's error is chosen from, as etcd chooses it */
  readonly timeouts: TimeoutView;
  readonly log: Logger;
}

/** resultOf for each kind, made once: the wait of a proposal of that kind hands over its result. */
const resultReaders = new Map<ApplyResult['kind'], (applied: ApplyResult) => unknown>();

function resultReader<K extends RequestKind>(kind: K): (applied: ApplyResult) => ResultOf<K> {
  let read = resultReaders.get(kind);
  if (read === undefined) resultReaders.set(kind, (read = (applied) => resultOf(kind, applied)));
  return read as (applied: ApplyResult) => ResultOf<K>;
}

export class Proposals {
  /** proposals waiting for their entry's result; the applier answers them */
  readonly wait = new WaitRegistry<ApplyResult>();
  /** proposals dropped or timed out since start (etcd_server_proposals_failed_total) */
  failed = 0;

  constructor(private readonly p: ProposalsParts) {}

  /**
   * Proposes a request and resolves with its result once applied here. `who`: the
   * client's credentials, which every member checks when it applies the entry
   * (undefined: the client sent none, or auth is off).
   */
  propose<K extends RequestKind>(request: RaftRequest<K>, who?: AuthInfo, timeoutMs = this.p.requestTimeoutMs()): Promise<ResultOf<K>> {
    const id = this.p.nextId();
    const header: PbRequestHeader = who === undefined ? { ID: uint64(id) } : { ID: uint64(id), username: who.username, auth_revision: who.revision };
    return this.proposeEntry(id, header, request, timeoutMs);
  }

  /** Proposes a v2 request, which carries the proposal's ID itself (as etcd's do). */
  proposeV2(make: (id: bigint) => V2Request, timeoutMs = this.p.requestTimeoutMs()): Promise<ResultOf<'v2'>> {
    const id = this.p.nextId();
    return this.proposeEntry(id, { ID: uint64(id) }, { kind: 'v2', body: make(id) }, timeoutMs);
  }

  /**
   * A v2 API write (or quorum read) through raft; resolves with its event once applied
   * here, or rejects with the store's V2Error.
   */
  async proposeV2Store(r: StoreRequest): Promise<V2Event> {
    const event = await this.proposeV2((id) => encodeStoreRequest(id, r));
    // only a PUT of member attributes or of the cluster version answers with no event
    if (event === undefined) throw new Error(`the v2 ${r.method} of ${'path' in r ? r.path : ''} was taken for a cluster update`);
    return event;
  }

  /** Proposes a membership change; resolves with the members after it applied. */
  async proposeConfChange(type: ConfChangeType, nodeId: bigint, context: Uint8Array): Promise<Member[]> {
    if (this.p.stopping.aborted) throw Errors.stopped;
    const id = this.p.nextId();
    const startedAt = Date.now();
    const deadline = startedAt + this.p.requestTimeoutMs();
    await this.awaitReachableLeader(deadline);
    const applied = this.wait.register(id, startedAt, deadline, this.timedOut);
    try {
      this.p.raft.proposeConfChange({ id, type, nodeId, context });
    } catch (err) {
      this.wait.fail(id, this.p.leader() === 0n ? Errors.noLeader : Errors.timeout);
      this.p.log.debug({ error: (err as Error).message }, 'conf change dropped');
    }
    return resultOf('confChange', await applied);
  }

  /**
   * Not an async function: a write's path from the handler to raft is synchronous, and an
   * async frame, its promise and the `await` of the wait were a good part of what every
   * proposal allocated; the one promise is the wait's, which hands over the typed result.
   */
  private proposeEntry<K extends RequestKind>(id: bigint, header: PbRequestHeader, request: RaftRequest<K>, timeoutMs: number): Promise<ResultOf<K>> {
    if (this.p.stopping.aborted) return Promise.reject(Errors.stopped);
    if (this.p.committed() - this.p.applied() > MAX_GAP_BETWEEN_APPLY_AND_COMMIT) return Promise.reject(Errors.tooManyRequests);
    let data: Uint8Array;
    try {
      data = encodeRaftRequest(header, request);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (data.length > this.p.maxRequestBytes) return Promise.reject(Errors.requestTooLarge);
    const startedAt = Date.now();
    const deadline = startedAt + timeoutMs;
    // checked here first: with a leader in reach (nearly always) the wait's own async call,
    // promise and await would be three more microtask turns on every write for nothing
    if (!this.leaderReachable()) return this.awaitReachableLeader(deadline).then(() => this.enter(id, data, request.kind, startedAt, deadline));
    return this.enter(id, data, request.kind, startedAt, deadline);
  }

  /** Registers the proposal's wait and hands its entry to raft. */
  private enter<K extends RequestKind>(id: bigint, data: Uint8Array, kind: K, startedAt: number, deadline: number): Promise<ResultOf<K>> {
    const applied = this.wait.register(id, startedAt, deadline, this.timedOut, resultReader(kind));
    try {
      this.p.raft.propose(data);
    } catch (err) {
      this.failed++;
      this.wait.fail(id, this.p.leader() === 0n ? Errors.noLeader : Errors.timeout);
      this.p.log.debug({ error: (err as Error).message }, 'proposal dropped');
    }
    return applied;
  }

  /** The error of a proposal whose deadline passed before it applied (one function for all of them). */
  private readonly timedOut = (startedAt: number): Error => {
    this.failed++;
    return timeoutError(this.p.timeouts, startedAt);
  };

  /** A leader is known and this member is it, or its stream to it is up. */
  private leaderReachable(): boolean {
    const lead = this.p.leader();
    return lead !== 0n && (lead === this.p.memberId || this.p.canSendTo(lead));
  }

  /**
   * Holds a proposal while no member leads, as etcd's raft node does (it takes no
   * proposals until a leader is known), and also while this follower's stream to the
   * leader is down (or not up yet, on a member that just joined): raft would forward
   * the proposal into a dropped message and the client would wait out its whole
   * timeout for nothing. Held here, before raft sees it, a proposal cannot be applied
   * twice; it goes to whichever leader is reachable first.
   * Past the deadline it fails as etcd's does: DeadlineExceeded without a leader, and
   * "connection lost" with an unreachable one.
   */
  private async awaitReachableLeader(deadline: number): Promise<void> {
    const { stopping } = this.p;
    for (;;) {
      if (stopping.aborted) throw Errors.stopped;
      if (this.leaderReachable()) return;
      const lead = this.p.leader();
      const left = deadline - Date.now();
      if (left <= 0) {
        this.failed++;
        throw lead === 0n ? Errors.proposalDeadline : Errors.timeoutDueToConnectionLost;
      }
      // a leader change wakes the wait; a stream coming back is seen on the next heartbeat
      const wait = lead === 0n ? left : Math.min(left, this.p.heartbeatMs);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          off();
          stopping.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        const off = this.p.onLeaderChange(done);
        stopping.addEventListener('abort', done);
      });
    }
  }
}
