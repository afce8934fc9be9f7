// The typed apply path: an entry is encoded once from a typed proposal (a body the gRPC
// edge decoded goes in as the client's bytes), decoded into one request kind by its
// field, and applied by that kind's method on a real store, lessor and auth store; the
// result carries its kind, so a proposer of one kind never gets another's result.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { AlarmAction, AlarmStore, AlarmType } from '../../src/server/alarms.js';
import { RequestApplier } from '../../src/server/apply.js';
import { SimpleTokens } from '../../src/server/auth/simple-token.js';
import { AuthStore } from '../../src/server/auth/store.js';
import { Errors } from '../../src/server/errors.js';
import { Lessor } from '../../src/server/lessor.js';
import { Membership } from '../../src/server/membership.js';
import { InternalRaftRequest, int64, serviceDefinition, uint64 } from '../../src/server/pb.js';
import { type ApplyResult, type RaftRequest, decodeEntryRequest, encodeRaftRequest, entryRequestKind, resultOf } from '../../src/server/raft-request.js';
import { V2RequestType } from '../../src/server/pb.js';
import { V2Store } from '../../src/server/v2store/index.js';
import { bytesField, concat, tag, varint, varintField } from '../e2e/raw-grpc.js';

const silent = pino({ level: 'silent' });
const header = { ID: uint64(42n) };

/** A request as the gRPC edge decodes it from `bytes`. */
function fromClient(method: string, bytes: Buffer): object {
  const def = serviceDefinition('etcdserverpb.KV')[method]!;
  return def.requestDeserialize(bytes) as object;
}

describe('raft entries', () => {
  it("put a body decoded at the gRPC edge in as the client's bytes", () => {
    // value before key and a field etcd does not know: encoding the decoded message again gives other bytes
    const client = concat(bytesField(2, 'v'), bytesField(1, 'k'), varintField(99, 7));
    const body = fromClient('Put', client) as RaftRequest<'put'>['body'];
    const data = Buffer.from(encodeRaftRequest(header, { kind: 'put', body }));
    expect(data.subarray(-(client.length + 2))).toEqual(concat(tag(4, 2), varint(client.length), client));
    const { id, request } = decodeEntryRequest(data);
    expect(id).toBe(42n);
    expect(request.kind).toBe('put');
    if (request.kind !== 'put') return;
    expect(Buffer.from(request.body.key).toString()).toBe('k');
    expect(Buffer.from(request.body.value).toString()).toBe('v');
  });

  it('encode a body made on the member, and every kind comes back as the field it went in', () => {
    const proposals: RaftRequest[] = [
      { kind: 'leaseGrant', body: { TTL: int64(5n), ID: int64(7n) } },
      { kind: 'alarm', body: { action: AlarmAction.ACTIVATE, memberID: uint64(3n), alarm: AlarmType.NOSPACE } },
      { kind: 'authEnable', body: {} },
      { kind: 'roleRevokePermission', body: { role: 'r', key: Buffer.from('a'), range_end: Buffer.from('b') } },
      { kind: 'v2', body: { ID: uint64(42n), Method: 'PUT', Path: '/0/version', Val: '3.4.0' } },
    ];
    for (const p of proposals) {
      const data = encodeRaftRequest(header, p);
      // etcd's own decoder reads the same request
      const plain = InternalRaftRequest.toObject(InternalRaftRequest.decode(data), { longs: String }) as Record<string, unknown>;
      expect(Object.keys(plain).sort()).toEqual(['header', fieldOf(p.kind)].sort());
      expect(decodeEntryRequest(data).request.kind).toBe(p.kind);
      // and its tags alone say so, as a restart reads the entries the store already holds
      expect(entryRequestKind(data)).toBe(p.kind);
    }
  });

  it('read a bare v2 Request as etcd 3.4 proposes publish, under its own ID', () => {
    const data = V2RequestType.encode({ ID: uint64(9n), Method: 'PUT', Path: '/0/version', Val: '3.4.0' }).finish();
    const e = decodeEntryRequest(data);
    expect(e.id).toBe(9n);
    expect(e.request.kind).toBe('v2');
    expect(entryRequestKind(data)).toBe('v2');
  });

  it('refuse an entry with no request, or with two, rather than guess', () => {
    const onlyHeader = InternalRaftRequest.encode({ header }).finish();
    expect(() => decodeEntryRequest(onlyHeader)).toThrow(/no request/);
    const two = InternalRaftRequest.encode({ header, put: { key: Buffer.from('k') }, lease_revoke: { ID: int64(1n) } }).finish();
    expect(() => decodeEntryRequest(two)).toThrow(/two requests \(put and leaseRevoke\)/);
    expect(() => entryRequestKind(onlyHeader)).toThrow(/no request/);
    expect(() => entryRequestKind(two)).toThrow(/two requests \(put and leaseRevoke\)/);
  });

  it("give a waiter its own kind's result, and call anything else a bug", () => {
    const applied: ApplyResult = { kind: 'leaseRevoke', result: { revision: 3 } };
    expect(resultOf('leaseRevoke', applied)).toEqual({ revision: 3 });
    expect(() => resultOf('put', applied)).toThrow(/a put proposal was answered by a leaseRevoke entry/);
  });
});

function fieldOf(kind: RaftRequest['kind']): string {
  const names: Partial<Record<RaftRequest['kind'], string>> = {
    leaseGrant: 'lease_grant',
    alarm: 'alarm',
    authEnable: 'auth_enable',
    roleRevokePermission: 'auth_role_revoke_permission',
    v2: 'v2',
  };
  return names[kind]!;
}

describe('RequestApplier', () => {
  let dir: string;
  let store: MvccStore;
  let alarms: AlarmStore;
  let applier: RequestApplier;
  let lessor: Lessor;
  let index = 0;
  /** the store's consistent index when it was opened */
  let openedAt = 0;

  beforeEach(async () => {
    openedAt = 0;
    dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-apply-'));
    store = await MvccStore.open({ dir });
    alarms = new AlarmStore();
    lessor = new Lessor({ minTtl: 1, now: () => Date.now() });
    applier = new RequestApplier({
      store: () => store,
      lessor,
      membership: new Membership(1n, 1n),
      alarms,
      auth: new AuthStore(() => store, new SimpleTokens(60_000), silent),
      v2store: new V2Store(),
      log: silent,
      storeIndexAtOpen: () => openedAt,
      onLeaseRevoked: () => undefined,
    });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Applies `request` as the entry a proposal of it makes, at the next index (a throw becomes a rejection). */
  async function apply(request: RaftRequest): Promise<ApplyResult | undefined> {
    return applier.apply(decodeEntryRequest(encodeRaftRequest(header, request)), ++index);
  }

  it('answers a range in the log (etcd 3.4 applies one) with the range at that point', async () => {
    await apply({ kind: 'put', body: { key: Buffer.from('a'), value: Buffer.from('1') } as RaftRequest<'put'>['body'] });
    const r = await apply({ kind: 'range', body: { key: Buffer.from('a') } as RaftRequest<'range'>['body'] });
    expect(r?.kind).toBe('range');
    const kvs = resultOf('range', r!).kvs;
    expect(kvs.map((kv) => Buffer.from(kv.value).toString())).toEqual(['1']);
  });

  it('raises, lists and disarms alarms by their named actions, and CORRUPT stops writes', async () => {
    const corrupt = { memberID: uint64(0n), alarm: AlarmType.CORRUPT };
    expect(resultOf('alarm', (await apply({ kind: 'alarm', body: { action: AlarmAction.ACTIVATE, ...corrupt } }))!)).toEqual([{ memberId: 0n, alarm: AlarmType.CORRUPT }]);
    expect(alarms.has(AlarmType.CORRUPT)).toBe(true);
    const listed = await apply({ kind: 'alarm', body: { action: AlarmAction.GET, memberID: uint64(0n), alarm: AlarmType.NONE } });
    expect(resultOf('alarm', listed!)).toEqual([{ memberId: 0n, alarm: AlarmType.CORRUPT }]);
    await expect(apply({ kind: 'leaseGrant', body: { TTL: int64(5n), ID: int64(1n) } })).rejects.toBe(Errors.corrupt);
    await apply({ kind: 'alarm', body: { action: AlarmAction.DEACTIVATE, ...corrupt } });
    expect(resultOf('leaseGrant', (await apply({ kind: 'leaseGrant', body: { TTL: int64(5n), ID: int64(1n) } }))!)).toEqual({ id: 1n, ttl: 5 });
  });

  it('applies a put without a lease at once (no promise), one with a lease after its checks', async () => {
    const put = (lease: bigint): RaftRequest => ({ kind: 'put', body: { key: Buffer.from('k'), value: Buffer.from('v'), lease: int64(lease) } as RaftRequest<'put'>['body'] });
    const now = applier.apply(decodeEntryRequest(encodeRaftRequest(header, put(0n))), ++index);
    expect(now).not.toBeInstanceOf(Promise);
    expect(resultOf('put', now as ApplyResult).revision).toBe(2);
    await apply({ kind: 'leaseGrant', body: { TTL: int64(60n), ID: int64(7n) } });
    const later = applier.apply(decodeEntryRequest(encodeRaftRequest(header, put(7n))), ++index);
    expect(later).toBeInstanceOf(Promise);
    expect(resultOf('put', (await later)!).revision).toBe(3);
    expect(lessor.attached(7n)).toEqual(['k']);
    // a failed put answers its proposer with the error either way: thrown at once, or rejected
    expect(() => applier.apply(decodeEntryRequest(encodeRaftRequest(header, { kind: 'put', body: { key: Buffer.from('x'), ignore_value: true } as RaftRequest<'put'>['body'] })), ++index)).toThrow();
    await expect(apply(put(8n))).rejects.toBe(Errors.leaseNotFound);
    expect((await store.range({ key: Buffer.from('k') })).kvs[0]?.lease).toBe(7n);
  });

  it('applies a store entry once: one the store held when opened answers nobody', async () => {
    openedAt = 5;
    const put = { kind: 'put', body: { key: Buffer.from('a'), value: Buffer.from('1') } } as RaftRequest;
    expect(await applier.apply(decodeEntryRequest(encodeRaftRequest(header, put)), 5)).toBeUndefined();
    expect((await store.range({ key: Buffer.from('a') })).kvs).toEqual([]);
    expect((await applier.apply(decodeEntryRequest(encodeRaftRequest(header, put)), 6))?.kind).toBe('put');
  });
});
