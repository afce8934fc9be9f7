// What a member does as leader besides raft: revoking expired leases and checkpointing
// their TTLs (etcd's lessor loop and revokeExpiredLeases), expiring v2 TTL keys (etcd's
// SYNC requests), and answering what only the leader may answer — lease renewals and
// time-to-live, learner promotion — for itself and for forwarding followers.

import type { Logger } from 'pino';
import type { MvccStore } from '../mvcc/index.js';
import { ConfChangeType } from '../raftpb/types.js';
import type { RawNode } from '../raft/index.js';
import { type AuthStore, ROOT_USER } from './auth/store.js';
import { Errors } from './errors.js';
import { idHex16 } from './ids.js';
import type { LeaseCheckpoint, Lessor } from './lessor.js';
import { type Membership, encodeMemberContext } from './membership.js';
import { int64 } from './pb.js';
import type { Proposals } from './proposals.js';
import type { LeaderRpc } from './transport/index.js';
import { encodeStoreRequest } from './v2request.js';
import { type V2Store, nowNanos } from './v2store/index.js';

/** Leases revoked per second at most, as etcd's lessor. */
const LEASE_REVOKE_RATE = 1000;
/** How often the leader looks for expired leases and checkpoints due. */
const LEASE_CHECK_INTERVAL_MS = 500;
/** A learner may be promoted once its log is within this share of the leader's (etcd's readyPercent). */
const LEARNER_READY_PERCENT = 0.9;
/** The leader expires v2 TTLs this often, through raft (etcd's SYNC requests). */
const V2_SYNC_INTERVAL_MS = 500;

export interface LeaderDutiesParts {
  readonly memberId: bigint;
  readonly proposals: Proposals;
  readonly lessor: Lessor;
  readonly membership: Membership;
  readonly auth: AuthStore;
  readonly v2store: V2Store;
  readonly isLeader: () => boolean;
  /** raft's view of the followers' logs */
  readonly raftStatus: () => ReturnType<RawNode['status']>;
  readonly committed: () => number;
  /** a client read on the store, riding out a snapshot's store swap */
  readonly read: <T>(fn: (store: MvccStore) => Promise<T>) => Promise<T>;
  readonly log: Logger;
}

export class LeaderDuties {
  /** expired leases this member revoked as leader (etcd_debugging_server_lease_expired_total) */
  leasesExpired = 0;
  /** learners this member promoted as leader (etcd_server_learner_promote_successes) */
  learnerPromotions = 0;
  /** expired leases whose revoke is proposed and not applied yet */
  private readonly revoking = new Set<bigint>();
  private lastLeaseCheck = 0;
  private lastV2Sync = 0;

  constructor(private readonly p: LeaderDutiesParts) {}

  /** Called on every raft tick; does what is due when this member leads. */
  tick(now: number): void {
    if (!this.p.isLeader()) return;
    if (now - this.lastLeaseCheck >= LEASE_CHECK_INTERVAL_MS) {
      this.lastLeaseCheck = now;
      this.revokeExpiredLeases(now);
      void this.p.lessor.checkpointScheduledLeases();
    }
    if (now - this.lastV2Sync >= V2_SYNC_INTERVAL_MS && this.p.v2store.hasTtlKeys()) {
      this.lastV2Sync = now;
      this.p.proposals.proposeV2((id) => encodeStoreRequest(id, { method: 'SYNC', time: nowNanos() })).catch((err: Error) =>
        this.p.log.warn({ error: err.message }, 'failed to expire v2 TTL keys (SYNC)'),
      );
    }
  }

  /** A lease revoke was applied: its expiry is no longer pending here. */
  leaseRevoked(id: bigint): void {
    this.revoking.delete(id);
  }

  /** What this member answers as leader, for itself and for forwarding followers. */
  readonly rpc: LeaderRpc = {
    leaseRenew: async (id) => {
      // a new leader's lessor is primary once it applied its term's first entry: until then
      // the renewal is asked again (over the peer port etcd answers "not a primary lessor")
      if (!this.p.isLeader() || !this.p.lessor.isPrimary) throw Errors.leaderChanged;
      return this.p.lessor.renew(id);
    },
    // Answered by any member, as etcd's leasehttp does: a follower that a forwarded call
    // reaches after it lost the leadership reports its own lessor, every lease "forever"
    // (the caller cannot tell; etcd's followers pass that answer on as it is).
    leaseTimeToLive: async (id, keys) => {
      const lease = this.p.lessor.lookup(id);
      if (!lease) return { ttl: -1, grantedTtl: 0, keys: [] };
      return { ttl: this.p.lessor.remaining(id), grantedTtl: lease.ttl, keys: keys ? await this.attachedKeys(id) : [] };
    },
    memberPromote: async (id) => {
      if (!this.p.isLeader()) throw Errors.leaderChanged;
      const existing = this.p.membership.validateExisting(id);
      if (!existing.isLearner) throw Errors.memberNotLearner;
      this.checkLearnerReady(id);
      await this.p.proposals.proposeConfChange(ConfChangeType.AddNode, id, encodeMemberContext({ ...existing, isLearner: false }));
      this.learnerPromotions++;
    },
  };

  /** The lessor's checkpoints as raft entries; a failure is logged, as etcd ignores it. */
  readonly proposeLeaseCheckpoints = async (checkpoints: LeaseCheckpoint[]): Promise<void> => {
    try {
      const body = { checkpoints: checkpoints.map((c) => ({ ID: int64(c.id), remaining_TTL: c.remainingTtl })) };
      await this.p.proposals.propose({ kind: 'leaseCheckpoint', body });
    } catch (err) {
      this.p.log.warn({ error: (err as Error).message, leases: checkpoints.length }, 'failed to checkpoint lease TTLs');
    }
  };

  private revokeExpiredLeases(now: number): void {
    const { auth, lessor, proposals, log } = this.p;
    const budget = Math.max(1, Math.floor(LEASE_REVOKE_RATE / 2));
    for (const id of lessor.expired(budget)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      // as root, like etcd's WithRoot: expiry must delete the lease's keys whoever wrote them
      const root = auth.enabled ? { username: ROOT_USER, revision: auth.revision } : undefined;
      proposals.propose({ kind: 'leaseRevoke', body: { ID: int64(id) } }, root).then(
        () => void this.leasesExpired++,
        (err: Error) => {
          this.revoking.delete(id);
          log.warn({ 'lease-id': idHex16(id), error: err.message, at: now }, 'failed to revoke lease');
        },
      );
    }
  }

  /** Keys still attached to the lease; stale attachments are dropped on the way. */
  private async attachedKeys(id: bigint): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const k of this.p.lessor.attached(id)) {
      const key = Buffer.from(k, 'latin1');
      const r = await this.p.read((store) => store.range({ key }));
      if (r.kvs[0]?.lease === id) out.push(key);
      else this.p.lessor.detach(id, k);
    }
    return out.sort(Buffer.compare);
  }

  /** A learner may be promoted once its log is within 90% of the leader's (etcd's readyPercent). */
  private checkLearnerReady(id: bigint): void {
    const progress = this.p.raftStatus().progress;
    const learner = progress?.get(id);
    const leaderMatch = progress?.get(this.p.memberId)?.match ?? this.p.committed();
    if (!learner || learner.match < leaderMatch * LEARNER_READY_PERCENT) throw Errors.learnerNotReady;
  }
}
