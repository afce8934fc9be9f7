// Applying the requests of committed raft entries to the store, the lessor, the
// membership and the alarms: what each InternalRaftRequest means once raft has ordered it.

import type { Logger } from 'pino';
import type { MvccStore, PutRequest, RequestOp, ResponseOp, TxnRequest, TxnResponse } from '../mvcc/index.js';
import { AlarmAction, AlarmType, type AlarmStore, alarmName, encodeAlarmKey } from './alarms.js';
import { deleteRangeFromPb, putFromPb, rangeFromPb, txnFromPb } from './convert.js';
import { Errors } from './errors.js';
import { idHex } from './ids.js';
import { type Lessor, encodeLeaseRecord } from './lessor.js';
import type { Membership } from './membership.js';
import { parseVersion } from './cluster-version.js';
import { AuthApplier, authInfoOf } from './auth/apply.js';
import { checkDeleteRange, checkLeases, checkPut, checkRange, checkTxn, txnLeases } from './auth/request-perms.js';
import type { AuthInfo, AuthStore } from './auth/store.js';
import { toBigInt, toNumber } from './pb.js';
import type { ApplyResult, EntryRequest, RaftRequest, RequestBodies, RequestKind, RequestResults } from './raft-request.js';
import { interpretV2 } from './v2request.js';
import { type V2Store, applyStoreRequest } from './v2store/index.js';

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

/** Kinds refused while CORRUPT is raised (etcd's applierV3Corrupt). */
const REFUSED_WHILE_CORRUPT: ReadonlySet<RequestKind> = new Set(['put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke']);

/** RequestApplier.apply's switch names every kind: TypeScript refuses its call to this when one is missing. */
function unknownKind(r: never): never {
  throw new Error(`no applier for ${(r as { kind: string }).kind}`);
}

/**
 * The kinds of request that apply again to entries the store already holds (index at or
 * below its consistent index when it was opened): what they change is outside the store
 * (the v2 store, the alarms), rebuilt from the snapshot and the WAL after it. Every other
 * kind applies only once.
 */
export const REAPPLIED: ReadonlySet<RequestKind> = new Set(['v2', 'alarm']);

/** etcd's applierV3: one method per request kind, each with its kind's result. */
export class RequestApplier {
  private readonly authApplier: AuthApplier;

  constructor(private readonly t: ApplyTarget) {
    this.authApplier = new AuthApplier(t.auth);
  }

  /**
   * Applies an entry's request; undefined when the store already holds it. Permissions
   * are checked here, on every member at the same auth state, against the credentials
   * the proposer put in the header (etcd's authApplierV3). A put without a lease (nearly
   * every write) is applied at once, without a promise: the store's write is synchronous,
   * and the async frames and promises of the general path (here, in put and in the
   * applier's applyNormal) were 1.9 of the 16 KB a put allocated (bench/server/profiles.md).
   * Throws or rejects with the error to answer the proposer with.
   */
  apply({ header, request: r }: EntryRequest, index: number): ApplyResult | undefined | Promise<ApplyResult | undefined> {
    // the REAPPLIED kinds apply whatever the store holds
    if (r.kind === 'v2') return { kind: r.kind, result: this.v2(r.body, index) };
    if (r.kind === 'alarm') return { kind: r.kind, result: this.alarm(r.body) };
    if (index <= this.t.storeIndexAtOpen()) return undefined;
    if (REFUSED_WHILE_CORRUPT.has(r.kind) && this.t.alarms.has(AlarmType.CORRUPT)) throw Errors.corrupt;
    const who = authInfoOf(header);
    if (r.kind === 'put') {
      const put = putFromPb(r.body);
      if (put.lease === 0n) return { kind: r.kind, result: this.putWithoutLease(put, who, index) };
      return this.putWithLease(put, who, index).then((result) => ({ kind: 'put' as const, result }));
    }
    return this.applyAsync(r, who, index);
  }

  private async applyAsync(r: Exclude<RaftRequest, { kind: 'v2' | 'alarm' | 'put' }>, who: AuthInfo | undefined, index: number): Promise<ApplyResult | undefined> {
    const a = this.authApplier;
    switch (r.kind) {
      case 'range':
        return { kind: r.kind, result: await this.range(r.body, who) };
      case 'deleteRange':
        return { kind: r.kind, result: await this.deleteRange(r.body, who, index) };
      case 'txn':
        return { kind: r.kind, result: await this.txn(r.body, who, index) };
      case 'compaction':
        return { kind: r.kind, result: await this.compaction(r.body, index) };
      case 'leaseGrant':
        return { kind: r.kind, result: this.leaseGrant(r.body) };
      case 'leaseRevoke':
        return { kind: r.kind, result: await this.leaseRevoke(r.body, who, index) };
      case 'leaseCheckpoint':
        return { kind: r.kind, result: this.leaseCheckpoint(r.body) };
      case 'authEnable':
        return { kind: r.kind, result: a.authEnable(r.body, who) };
      case 'authDisable':
        return { kind: r.kind, result: a.authDisable(r.body, who) };
      case 'authenticate':
        return { kind: r.kind, result: a.authenticate(r.body, index) };
      case 'userAdd':
        return { kind: r.kind, result: a.userAdd(r.body, who) };
      case 'userDelete':
        return { kind: r.kind, result: a.userDelete(r.body, who) };
      case 'userGet':
        return { kind: r.kind, result: a.userGet(r.body, who) };
      case 'userChangePassword':
        return { kind: r.kind, result: a.userChangePassword(r.body, who) };
      case 'userGrantRole':
        return { kind: r.kind, result: a.userGrantRole(r.body, who) };
      case 'userRevokeRole':
        return { kind: r.kind, result: a.userRevokeRole(r.body, who) };
      case 'userList':
        return { kind: r.kind, result: a.userList(r.body, who) };
      case 'roleList':
        return { kind: r.kind, result: a.roleList(r.body, who) };
      case 'roleAdd':
        return { kind: r.kind, result: a.roleAdd(r.body, who) };
      case 'roleDelete':
        return { kind: r.kind, result: a.roleDelete(r.body, who) };
      case 'roleGet':
        return { kind: r.kind, result: a.roleGet(r.body, who) };
      case 'roleGrantPermission':
        return { kind: r.kind, result: a.roleGrantPermission(r.body, who) };
      case 'roleRevokePermission':
        return { kind: r.kind, result: a.roleRevokePermission(r.body, who) };
      default:
        return unknownKind(r);
    }
  }

  /** A range in the log (etcd 3.4 still applies one, though no member proposes it): read at the applied state. */
  range(req: RequestBodies['range'], who: AuthInfo | undefined): Promise<RequestResults['range']> {
    const range = rangeFromPb(req);
    checkRange(this.t.auth, who, range);
    return this.t.store().range(range);
  }

  private putWithoutLease(put: PutRequest, who: AuthInfo | undefined, index: number): RequestResults['put'] {
    checkPut(this.t.auth, who, put);
    return this.t.store().putSync(put, index);
  }

  private async putWithLease(put: PutRequest, who: AuthInfo | undefined, index: number): Promise<RequestResults['put']> {
    checkPut(this.t.auth, who, put);
    await checkLeases(this.t.auth, who, [put.lease], this.leaseKeys);
    if (!this.t.lessor.lookup(put.lease)) throw Errors.leaseNotFound;
    const r = this.t.store().putSync(put, index);
    this.t.lessor.attach(put.lease, put.key);
    return r;
  }

  deleteRange(req: RequestBodies['deleteRange'], who: AuthInfo | undefined, index: number): Promise<RequestResults['deleteRange']> {
    const del = deleteRangeFromPb(req);
    checkDeleteRange(this.t.auth, who, del);
    return this.t.store().deleteRange(del, index);
  }

  async txn(req: RequestBodies['txn'], who: AuthInfo | undefined, index: number): Promise<RequestResults['txn']> {
    const txn = txnFromPb(req);
    checkTxn(this.t.auth, who, txn);
    if (this.t.auth.enabled) await checkLeases(this.t.auth, who, txnLeases(txn), this.leaseKeys);
    this.checkTxnLeases(txn);
    const r = await this.t.store().txn(txn, index);
    this.attachTxnLeases(txn, r);
    return r;
  }

  compaction(req: RequestBodies['compaction'], index: number): Promise<RequestResults['compaction']> {
    return this.t.store().compact(toNumber(req.revision), index);
  }

  leaseGrant(req: RequestBodies['leaseGrant']): RequestResults['leaseGrant'] {
    const id = toBigInt(req.ID);
    const lease = this.t.lessor.grant(id, toNumber(req.TTL));
    this.t.store().putLeaseRecord(id, encodeLeaseRecord(lease));
    return { id, ttl: lease.ttl };
  }

  async leaseRevoke(req: RequestBodies['leaseRevoke'], who: AuthInfo | undefined, index: number): Promise<RequestResults['leaseRevoke']> {
    const id = toBigInt(req.ID);
    await checkLeases(this.t.auth, who, [id], this.leaseKeys);
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

  leaseCheckpoint(req: RequestBodies['leaseCheckpoint']): RequestResults['leaseCheckpoint'] {
    for (const c of req.checkpoints ?? []) {
      const id = toBigInt(c.ID);
      this.t.lessor.checkpoint(id, toNumber(c.remaining_TTL));
      // Kept in memory only unless persisting is asked for: etcd 3.4 resumes a lease
      // from its whole TTL after a restart then (its cluster version is below 3.6).
      const l = this.t.lessor.lookup(id);
      if (l && this.t.lessor.persistsCheckpoints) this.t.store().putLeaseRecord(id, encodeLeaseRecord(l));
    }
    return undefined;
  }

  /**
   * Raises or disarms an alarm; answers, as etcd does, with the alarm it raised or
   * disarmed. GET (and an action etcd-ts does not know) lists the matching alarms.
   */
  alarm(a: RequestBodies['alarm']): RequestResults['alarm'] {
    const memberId = toBigInt(a.memberID, true);
    const name = alarmName(a.alarm);
    // the store keeps the active alarms as etcd's `alarm` bucket does, so a bbolt
    // snapshot of it carries them
    switch (a.action) {
      case AlarmAction.ACTIVATE:
        if (this.t.alarms.activate(memberId, a.alarm)) this.t.log.warn({ alarm: name, from: idHex(memberId) }, 'alarm raised');
        this.t.store().putAlarmRecord(encodeAlarmKey({ memberId, alarm: a.alarm }));
        return [{ memberId, alarm: a.alarm }];
      case AlarmAction.DEACTIVATE:
        if (!this.t.alarms.deactivate(memberId, a.alarm)) return [];
        this.t.store().deleteAlarmRecord(encodeAlarmKey({ memberId, alarm: a.alarm }));
        this.t.log.warn({ alarm: name, from: idHex(memberId) }, 'alarm disarmed');
        return [{ memberId, alarm: a.alarm }];
      default:
        return this.t.alarms.list(a.alarm, memberId);
    }
  }

  private readonly leaseKeys = (id: bigint): Promise<Buffer[]> => this.attachedKeys(id, [...(this.t.lessor.lookup(id)?.keys ?? [])]);

  /**
   * The v2 requests etcd 3.4 logs: member attributes and the cluster version (which
   * etcd also records in the v2 store's "/0" directory, so they count in its index),
   * and the v2 API's writes. A failed write throws its V2Error to the proposer.
   */
  v2(req: RequestBodies['v2'], index: number): RequestResults['v2'] {
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
}
