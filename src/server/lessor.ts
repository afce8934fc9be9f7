// Leases. Grants and revocations are raft entries applied on every member; expiry is
// decided only by the leader (the "primary" lessor), which then proposes a revoke.
// Keepalives are leader-local, as in etcd: they move the deadline without raft.
// Remaining TTLs reach the other members only as checkpoints, which etcd 3.4 sends only
// with --experimental-enable-lease-checkpoint: without them a new leader gives every
// lease its whole TTL again.

import type { MvccStore } from '../mvcc/index.js';
import { Reader, WireType, Writer } from '../raftpb/wire.js';
import { CheckpointQueue } from './checkpoint-queue.js';
import { Errors } from './errors.js';

/** etcd's upper bound on a lease TTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;

/**
 * The seconds a lessor that is not primary reports as any lease's remaining TTL: its
 * leases expire "forever", and etcd's Lease.Remaining() reports that as math.MaxInt64 ns,
 * which LeaseTimeToLive truncates to whole seconds. etcd answers it from a member that is
 * not (no longer, or not yet) the primary, e.g. over /leases/internal.
 */
export const FOREVER_TTL = 9_223_372_036;

/** etcd's defaultLeaseCheckpointInterval; etcd 3.4 has no flag to change it. */
export const LEASE_CHECKPOINT_INTERVAL_MS = 5 * 60_000;
/** etcd's maxLeaseCheckpointBatchSize: checkpoints in one raft entry at most. */
const MAX_LEASE_CHECKPOINT_BATCH = 1000;
/** etcd's leaseCheckpointRate / 2: batches one pass (every 500 ms) proposes at most. */
const MAX_CHECKPOINT_BATCHES_PER_PASS = 500;

export interface Lease {
  readonly id: bigint;
  /** granted TTL in seconds (after raising to the minimum) */
  readonly ttl: number;
  /** TTL to use at the next promotion (from a checkpoint), seconds; 0 = full ttl */
  remainingTtl: number;
  /** monotonic ms; Infinity while this member is not the primary */
  expiry: number;
  /**
   * Keys attached at some point (stale ones are filtered against the store when read);
   * absent until the first attach: most leases in a large cluster hold a key or none,
   * and an empty Set would double what each lease costs.
   */
  keys: Set<string> | undefined;
}

/** --experimental-enable-lease-checkpoint[-persist]: how the primary records remaining TTLs. */
export interface CheckpointPolicy {
  /** a lease is checkpointed this long after it was granted, promoted or last checkpointed */
  readonly intervalMs: number;
  /** applied checkpoints are written to the lease records too, so they survive a restart */
  readonly persist: boolean;
}

export interface LeaseCheckpoint {
  id: bigint;
  /** seconds; 0 clears the checkpoint (the lease resumes from its whole TTL) */
  remainingTtl: number;
}

/**
 * Proposes checkpoints through raft and resolves once they are applied (etcd's
 * Checkpointer). It never rejects: as in etcd, a checkpoint that fails is logged and the
 * lease's next one (or the next promotion) makes up for it.
 */
export type Checkpointer = (checkpoints: LeaseCheckpoint[]) => Promise<void>;

export interface LessorOptions {
  /** shortest TTL granted, seconds (etcd: ceil(1.5 × election timeout)) */
  minTtl: number;
  /** a monotonic clock, ms */
  now: () => number;
  /** absent: no checkpoints (etcd 3.4's default) */
  checkpoints?: CheckpointPolicy;
}

/** leasepb.Lease{ID=1, TTL=2, RemainingTTL=3}: the record persisted beside the keys. */
export function encodeLeaseRecord(l: Pick<Lease, 'id' | 'ttl' | 'remainingTtl'>): Buffer {
  const w = new Writer(32);
  w.tag(1, WireType.Varint).uint64(l.id);
  w.tag(2, WireType.Varint).uint53(l.ttl);
  if (l.remainingTtl > 0) w.tag(3, WireType.Varint).uint53(l.remainingTtl);
  return Buffer.from(w.finish());
}

export function decodeLeaseRecord(b: Uint8Array): { id: bigint; ttl: number; remainingTtl: number } {
  const r = new Reader(b);
  let id = 0n;
  let ttl = 0;
  let remainingTtl = 0;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) id = BigInt.asIntN(64, r.uint64());
    else if (f === 2) ttl = r.uint53();
    else if (f === 3) remainingTtl = r.uint53();
    else r.skip(wt);
  }
  return { id, ttl, remainingTtl };
}

/**
 * Rebuilds `lessor` from a store just opened or installed: the lease records, then the
 * keys attached to each lease. The attachments come from the key index alone: reading
 * every value of the store to learn its lease would hold the whole data set in memory
 * at once on each restart, and even a keys-only range builds a KeyValue for every key
 * (seconds for a million keys) to find the few that have a lease.
 */
export async function restoreLessor(lessor: Lessor, store: Pick<MvccStore, 'leaseRecords' | 'forEachLeasedKey'>): Promise<void> {
  for (const [id, record] of await store.leaseRecords()) {
    const rec = decodeLeaseRecord(record);
    lessor.restore(id, rec.ttl, rec.remainingTtl);
  }
  store.forEachLeasedKey((lease, key) => lessor.attach(lease, key));
}

/** What the lessor has done since start, for etcd's etcd_debugging_lease_* metrics (read at scrape). */
export class LessorStats {
  /** grants applied */
  granted = 0;
  /** revokes applied (expired leases included) */
  revoked = 0;
  /** renewals this member granted as leader */
  renewed = 0;
}

export class Lessor {
  readonly stats = new LessorStats();
  private grantListener: ((ttlSeconds: number) => void) | undefined;
  private readonly leases = new Map<bigint, Lease>();
  private primary = false;
  /** leases the primary checkpoints next, in due order */
  private readonly scheduled = new CheckpointQueue();
  private checkpointer: Checkpointer | undefined;
  /** a checkpoint pass is proposing: the next tick does not start another */
  private checkpointing = false;

  constructor(private readonly opts: LessorOptions) {}

  /** How checkpoints are proposed (the server's raft); used only when the policy turns them on. */
  setCheckpointer(cp: Checkpointer): void {
    this.checkpointer = cp;
  }

  /** Whether an applied checkpoint is written to the lease's record (etcd: checkpoint-persist). */
  get persistsCheckpoints(): boolean {
    return this.opts.checkpoints?.persist === true;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get minTtl(): number {
    return this.opts.minTtl;
  }

  lookup(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  ids(): bigint[] {
    return [...this.leases.keys()];
  }

  /** Calls `fn` with the TTL (seconds) of every lease granted from now on (etcd_debugging_lease_ttl_total). */
  onGrant(fn: (ttlSeconds: number) => void): void {
    this.grantListener = fn;
  }

  /** Applies a grant. Returns the lease, whose ttl may have been raised to the minimum. */
  grant(id: bigint, ttl: number): Lease {
    if (this.leases.has(id)) throw Errors.leaseExist;
    const granted = Math.max(ttl, this.opts.minTtl);
    const lease: Lease = {
      id,
      ttl: granted,
      remainingTtl: 0,
      expiry: this.primary ? this.opts.now() + granted * 1000 : Infinity,
      keys: undefined,
    };
    this.leases.set(id, lease);
    this.stats.granted++;
    this.grantListener?.(granted);
    if (this.primary) this.scheduleCheckpoint(lease);
    return lease;
  }

  /** Applies a revoke: forgets the lease and returns the keys that were attached to it. */
  revoke(id: bigint): string[] {
    const l = this.leases.get(id);
    if (l === undefined) throw Errors.leaseNotFound;
    this.leases.delete(id);
    this.stats.revoked++;
    return l.keys ? [...l.keys] : [];
  }

  /** Forgets every lease (before restoring them from a replaced store). */
  reset(): void {
    this.leases.clear();
    this.scheduled.clear();
  }

  /** Restores a lease read back from the store at startup. */
  restore(id: bigint, ttl: number, remainingTtl: number): void {
    this.leases.set(id, { id, ttl, remainingTtl, expiry: Infinity, keys: undefined });
  }

  attach(id: bigint, key: Buffer): void {
    const l = this.leases.get(id);
    if (l !== undefined) (l.keys ??= new Set()).add(key.toString('latin1'));
  }

  /** Keys attached to the lease at some point (latin1 strings), possibly stale. */
  attached(id: bigint): string[] {
    const keys = this.leases.get(id)?.keys;
    return keys ? [...keys] : [];
  }

  /** Drops a stale attachment (the key was deleted or re-put under another lease). */
  detach(id: bigint, key: string): void {
    const l = this.leases.get(id);
    if (l?.keys === undefined) return;
    l.keys.delete(key);
    if (l.keys.size === 0) l.keys = undefined;
  }

  /**
   * Leader-local renewal: returns the TTL granted again, or 0 for an unknown/expired lease.
   * With checkpoints on, a lease that carries one first has it cleared on every member
   * through raft, so a later leader does not resume the lease from before the renewal;
   * only then, so a lease kept alive costs at most two raft entries per interval (etcd's
   * reasoning).
   */
  async renew(id: bigint): Promise<number> {
    const l = this.leases.get(id);
    if (l === undefined || !this.primary) return 0;
    if (l.expiry <= this.opts.now()) return 0;
    if (l.remainingTtl > 0 && this.checkpointsOn()) {
      await this.checkpointer!([{ id, remainingTtl: 0 }]);
      if (!this.primary) throw Errors.leaderChanged;
      if (this.leases.get(id) !== l) return 0;
    }
    l.expiry = this.opts.now() + l.ttl * 1000;
    l.remainingTtl = 0;
    this.stats.renewed++;
    return l.ttl;
  }

  /** Whole seconds left (truncated, as etcd reports them); -1 when unknown, FOREVER_TTL unless primary. */
  remaining(id: bigint): number {
    const l = this.leases.get(id);
    if (l === undefined) return -1;
    if (l.expiry === Infinity) return FOREVER_TTL;
    return Math.max(0, Math.floor((l.expiry - this.opts.now()) / 1000));
  }

  /** Applies a checkpoint: the remaining TTL to resume from after a leader change or restart. */
  checkpoint(id: bigint, remainingTtl: number): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    l.remainingTtl = remainingTtl;
    if (this.primary) this.scheduleCheckpoint(l);
  }

  /** This member became leader: every lease gets a fresh deadline (plus `extendMs`). */
  promote(extendMs: number): void {
    this.primary = true;
    const now = this.opts.now();
    for (const l of this.leases.values()) {
      l.expiry = now + resumeTtl(l) * 1000 + extendMs;
      this.scheduleCheckpoint(l);
    }
  }

  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiry = Infinity;
    this.scheduled.clear();
  }

  /** Leases past their deadline (primary only), at most `limit` of them. */
  expired(limit: number): bigint[] {
    if (!this.primary) return [];
    const now = this.opts.now();
    const out: bigint[] = [];
    for (const l of this.leases.values()) {
      if (l.expiry <= now) {
        out.push(l.id);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /**
   * Proposes the checkpoints that are due, a batch at a time, each batch applied before the
   * next is taken (etcd's checkpointScheduledLeases, which the primary runs every 500 ms).
   */
  async checkpointScheduledLeases(): Promise<void> {
    if (this.checkpointing || !this.checkpointsOn()) return;
    this.checkpointing = true;
    try {
      for (let i = 0; i < MAX_CHECKPOINT_BATCHES_PER_PASS && this.primary; i++) {
        const batch = this.dueCheckpoints(MAX_LEASE_CHECKPOINT_BATCH);
        if (batch.length > 0) await this.checkpointer!(batch);
        if (batch.length < MAX_LEASE_CHECKPOINT_BATCH) return;
      }
    } finally {
      this.checkpointing = false;
    }
  }

  private checkpointsOn(): boolean {
    return this.opts.checkpoints !== undefined && this.checkpointer !== undefined;
  }

  /** Schedules the lease's next checkpoint, if it could still outlive the interval (as etcd). */
  private scheduleCheckpoint(l: Lease): void {
    const interval = this.opts.checkpoints?.intervalMs;
    if (interval === undefined || !this.checkpointsOn()) return;
    if (resumeTtl(l) * 1000 > interval) this.scheduled.push(l.id, this.opts.now() + interval);
  }

  /** Up to `limit` due checkpoints: remaining seconds rounded up, as etcd records them. */
  private dueCheckpoints(limit: number): LeaseCheckpoint[] {
    const now = this.opts.now();
    const out: LeaseCheckpoint[] = [];
    while (out.length < limit) {
      const id = this.scheduled.popDue(now);
      if (id === undefined) break;
      const l = this.leases.get(id);
      if (l === undefined || l.expiry <= now) continue;
      const remainingTtl = Math.ceil((l.expiry - now) / 1000);
      // Renewed since it was scheduled: nothing to record. etcd then leaves the lease
      // unscheduled until its next checkpoint or promotion, and so does this.
      if (remainingTtl >= l.ttl) continue;
      out.push({ id, remainingTtl });
    }
    return out;
  }
}

/** The TTL a lease resumes from under a new primary: its checkpoint, else its whole TTL. */
function resumeTtl(l: Lease): number {
  return l.remainingTtl > 0 ? l.remainingTtl : l.ttl;
}
