// Applying the requests of committed raft entries to the store, the lessor, the
// membership and the alarms: what each InternalRaftRequest means once raft has ordered it.

import type { Logger } from 'pino';
import type { MvccStore, RequestOp, ResponseOp, TxnRequest, TxnResponse } from '../mvcc/index.js';
import { ALARM_CORRUPT, AlarmType, type AlarmStore, encodeAlarmKey } from './alarms.js';
import { type PbTxnRequest, deleteRangeFromPb, putFromPb, txnFromPb } from './convert.js';
import { Errors } from './errors.js';
import { idHex } from './ids.js';
import { type Lessor, encodeLeaseRecord } from './lessor.js';
import type { Membership } from './membership.js';
import { parseVersion } from './cluster-version.js';
import { type AuthRequests, applyAuth, authInfoOf } from './auth/apply.js';
import { checkDeleteRange, checkLeases, checkPut, checkTxn, txnLeases } from './auth/request-perms.js';
import type { AuthStore } from './auth/store.js';
import { type Int64, toBigInt, toNumber } from './pb.js';
import { type V2Request, interpretV2 } from './v2request.js';
import { type V2Event, type V2Store, applyStoreRequest } from './v2store/index.js';

export interface ApplyTarget {
  /** the current store (a snapshot from the leader may replace it) */
  store(): MvccStore;
  readonly lessor: Lessor;
  readonly membership: Membership;
  readonly alarms: AlarmStore;
  readonly auth: AuthStore;
  readonly v2store: V2Store;
  readonly log: Logger;
  /** entries at or below this index are already in the store (its consistent index when opened) */
  storeIndexAtOpen(): number;
  /** a lease revoke was applied (the leader stops tracking its pending revoke) */
  onLeaseRevoked(id: bigint): void;
}

export class RequestApplier {
  constructor(private readonly t: ApplyTarget) {}

  async apply(req: InternalRequest, index: number): Promise<unknown> {
    // State outside the store (membership, alarms) is rebuilt from the snapshot and the
    // WAL after it, so those entries apply again; store entries apply only once.
    if (req.v2) return this.applyV2(req.v2, index);
    if (req.alarm) return this.applyAlarm(req.alarm);
    if (index <= this.t.storeIndexAtOpen()) return undefined;
    // etcd's applierV3Corrupt: once the corruption check raised CORRUPT, every member
    // refuses the writes, compactions and lease changes of the log until it is disarmed.
    if (this.t.alarms.has(ALARM_CORRUPT) && (req.put || req.delete_range || req.txn || req.compaction || req.lease_grant || req.lease_revoke)) {
      throw Errors.corrupt;
    }

    // Permissions are checked here, on every member at the same auth state, against
    // the credentials the proposer put in the header (etcd's authApplierV3).
    const who = authInfoOf(req.header);
    if (req.put) {
      const put = putFromPb(req.put);
      checkPut(this.t.auth, who, put);
      if (put.lease !== 0n) await checkLeases(this.t.auth, who, [put.lease], this.leaseKeys);
      if (put.lease !== 0n && !this.t.lessor.lookup(put.lease)) throw Errors.leaseNotFound;
      const r = await this.t.store().put(put, index);
      if (put.lease !== 0n) this.t.lessor.attach(put.lease, put.key);
      return r;
    }
    if (req.delete_range) {
      const del = deleteRangeFromPb(req.delete_range);
      checkDeleteRange(this.t.auth, who, del);
      return this.t.store().deleteRange(del, index);
    }
    if (req.txn) {
      const txn = txnFromPb(req.txn);
      checkTxn(this.t.auth, who, txn);
      if (this.t.auth.enabled) await checkLeases(this.t.auth, who, txnLeases(txn), this.leaseKeys);
      this.checkTxnLeases(txn);
      const r = await this.t.store().txn(txn, index);
      this.attachTxnLeases(txn, r);
      return r;
    }
    if (req.compaction) {
      const { done } = await this.t.store().compact(toNumber(req.compaction.revision), index);
      return { done };
    }
    if (req.lease_grant) {
      const id = toBigInt(req.lease_grant.ID);
      const lease = this.t.lessor.grant(id, toNumber(req.lease_grant.TTL));
      this.t.store().putLeaseRecord(id, encodeLeaseRecord(lease));
      return { id, ttl: lease.ttl };
    }
    if (req.lease_revoke) {
      const id = toBigInt(req.lease_revoke.ID);
      await checkLeases(this.t.auth, who, [id], this.leaseKeys);
      return this.applyLeaseRevoke(id, index);
    }
    if (req.lease_checkpoint) {
      for (const c of req.lease_checkpoint.checkpoints ?? []) {
        const id = toBigInt(c.ID);
        this.t.lessor.checkpoint(id, toNumber(c.remaining_TTL));
        // Kept in memory only unless persisting is asked for: etcd 3.4 resumes a lease
        // from its whole TTL after a restart then (its cluster version is below 3.6).
        const l = this.t.lessor.lookup(id);
        if (l && this.t.lessor.persistsCheckpoints) this.t.store().putLeaseRecord(id, encodeLeaseRecord(l));
      }
      return undefined;
    }
    const auth = applyAuth(this.t.auth, req, who, index);
    if (auth !== undefined) return auth;
    this.t.log.warn({ index }, 'raft entry carries no request etcd-ts knows; skipped');
    return undefined;
  }

  private readonly leaseKeys = (id: bigint): Promise<Buffer[]> => this.attachedKeys(id, [...(this.t.lessor.lookup(id)?.keys ?? [])]);

  /**
   * The v2 requests etcd 3.4 logs: member attributes and the cluster version (which
   * etcd also records in the v2 store's "/0" directory, so they count in its index),
   * and the v2 API's writes. A failed write throws its V2Error to the proposer.
   */
  private applyV2(req: V2Request, index: number): V2Event | undefined {
    const effect = interpretV2(req);
    switch (effect.kind) {
      case 'attributes':
        this.t.membership.setAttributes(effect.memberId, effect.name, effect.clientUrls);
        this.t.v2store.set(req.Path!, false, req.Val ?? '');
        return undefined;
      case 'clusterVersion':
        if (parseVersion(effect.version) === undefined) throw new Error(`cluster version ${JSON.stringify(effect.version)} is not a semantic version`);
        this.t.membership.setVersion(effect.version);
        this.t.v2store.set(req.Path!, false, effect.version);
        return undefined;
      case 'store':
        return applyStoreRequest(this.t.v2store, effect.request);
      case 'unsupported':
        this.t.log.warn({ index, method: effect.method, path: effect.path }, 'skipped a v2 request with an unknown method');
        return undefined;
    }
  }

  private checkTxnLeases(txn: TxnRequest): void {
    const visit = (ops: readonly RequestOp[]) => {
      for (const op of ops) {
        if ('put' in op && op.put.lease !== 0n && !this.t.lessor.lookup(op.put.lease)) throw Errors.leaseNotFound;
        if ('txn' in op) {
          visit(op.txn.success);
          visit(op.txn.failure);
        }
      }
    };
    visit(txn.success);
    visit(txn.failure);
  }

  private attachTxnLeases(txn: TxnRequest, r: TxnResponse): void {
    const ops = r.succeeded ? txn.success : txn.failure;
    ops.forEach((op, i) => {
      if ('put' in op && op.put.lease !== 0n) this.t.lessor.attach(op.put.lease, op.put.key);
      const inner: ResponseOp | undefined = r.responses[i];
      if ('txn' in op && inner && 'txn' in inner) this.attachTxnLeases(op.txn, inner.txn);
    });
  }

  private async applyLeaseRevoke(id: bigint, index: number): Promise<{ revision: number }> {
    const candidates = this.t.lessor.revoke(id);
    this.t.onLeaseRevoked(id);
    this.t.store().deleteLeaseRecord(id);
    const keys = await this.attachedKeys(id, candidates);
    if (keys.length === 0) return { revision: this.t.store().currentRevision };
    // One revision for all of them, in key order like etcd: attachment order differs
    // between members (a restart rebuilds it from the store) and sub-revisions, hence
    // HashKV, must not.
    keys.sort(Buffer.compare);
    const r = await this.t.store().txn(
      { compare: [], success: keys.map((key) => ({ deleteRange: { key } })), failure: [] },
      index,
    );
    return { revision: r.revision };
  }

  /**
   * Of the keys once attached to a lease, those that still are: keys re-put under
   * another lease (or deleted) since are not its, and members that restarted never
   * knew of them, so decisions must not depend on them.
   */
  private async attachedKeys(id: bigint, candidates: readonly string[]): Promise<Buffer[]> {
    const keys: Buffer[] = [];
    for (const k of candidates) {
      const key = Buffer.from(k, 'latin1');
      const r = await this.t.store().range({ key });
      if (r.kvs[0]?.lease === id) keys.push(key);
    }
    return keys;
  }

  /** Applies an alarm request; answers, as etcd does, with the alarm it raised or disarmed. */
  private applyAlarm(a: { action: number; memberID: Int64; alarm: number }): unknown {
    const memberId = toBigInt(a.memberID, true);
    const name = AlarmType[a.alarm] ?? a.alarm;
    // the store keeps the active alarms as etcd's `alarm` bucket does, so a bbolt
    // snapshot of it carries them
    if (a.action === 1) {
      if (this.t.alarms.activate(memberId, a.alarm)) this.t.log.warn({ alarm: name, from: idHex(memberId) }, 'alarm raised');
      this.t.store().putAlarmRecord(encodeAlarmKey({ memberId, alarm: a.alarm }));
      return [{ memberId, alarm: a.alarm }];
    }
    if (a.action === 2) {
      if (!this.t.alarms.deactivate(memberId, a.alarm)) return [];
      this.t.store().deleteAlarmRecord(encodeAlarmKey({ memberId, alarm: a.alarm }));
      this.t.log.warn({ alarm: name, from: idHex(memberId) }, 'alarm disarmed');
      return [{ memberId, alarm: a.alarm }];
    }
    return this.t.alarms.list(a.alarm, memberId);
  }
}

/** The decoded InternalRaftRequest fields the applier reads. */
export interface InternalRequest extends AuthRequests {
  header?: { ID: Int64; username?: string; auth_revision?: Int64 } | null;
  ID?: Int64;
  put?: Parameters<typeof putFromPb>[0] | null;
  delete_range?: Parameters<typeof deleteRangeFromPb>[0] | null;
  txn?: PbTxnRequest | null;
  compaction?: { revision: Int64; physical: boolean } | null;
  lease_grant?: { TTL: Int64; ID: Int64 } | null;
  lease_revoke?: { ID: Int64 } | null;
  lease_checkpoint?: { checkpoints?: Array<{ ID: Int64; remaining_TTL: Int64 }> } | null;
  alarm?: { action: number; memberID: Int64; alarm: number } | null;
  v2?: V2Request | null;
}
