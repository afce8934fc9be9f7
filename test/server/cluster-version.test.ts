// Deciding the cluster version (the lowest member version holds it down) and the v2
// requests that carry it and a member's attributes through the raft log.

import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ClusterVersionMonitor, decideClusterVersion, isUpgrade, majorMinor } from '../../src/server/cluster-version.js';
import type { Member } from '../../src/server/membership.js';
import { InternalRaftRequest, root, uint64 } from '../../src/server/pb.js';
import { attributesRequest, clusterVersionRequest, interpretV2, type V2Request } from '../../src/server/v2request.js';

const member = (id: bigint): Member => ({ id, name: `m${id}`, peerUrls: [`http://127.0.0.1:${id}`], clientUrls: [], isLearner: false });
const silent = pino({ level: 'silent' });

describe('decideClusterVersion', () => {
  it('takes the lowest server version as MAJOR.MINOR.0', () => {
    expect(decideClusterVersion(['3.4.23', '3.4.23', '3.4.23'])).toBe('3.4.0');
    expect(decideClusterVersion(['3.4.23', '3.3.25', '3.5.0'])).toBe('3.3.0');
    expect(decideClusterVersion(['3.5.1-alpha.0'])).toBe('3.5.0');
  });

  it('decides nothing while a member is unknown or unreadable', () => {
    expect(decideClusterVersion(['3.4.23', undefined])).toBeUndefined();
    expect(decideClusterVersion(['3.4.23', 'three'])).toBeUndefined();
    expect(decideClusterVersion([])).toBeUndefined();
  });

  it('raises, never lowers', () => {
    expect(isUpgrade(undefined, '3.0.0')).toBe(true);
    expect(isUpgrade('3.0.0', '3.4.0')).toBe(true);
    expect(isUpgrade('3.4.0', '3.4.0')).toBe(false);
    expect(isUpgrade('3.4.0', '3.3.0')).toBe(false);
    expect(majorMinor('3.4.0')).toBe('3.4');
  });
});

describe('ClusterVersionMonitor', () => {
  async function run(opts: { current?: string; versions: Map<bigint, string | undefined>; leader?: boolean }): Promise<string[]> {
    const proposed: string[] = [];
    const members = [...opts.versions.keys()].map(member);
    const monitor = new ClusterVersionMonitor({
      localId: 1n,
      serverVersion: '3.4.23',
      log: silent,
      isLeader: () => opts.leader ?? true,
      members: () => members,
      current: () => opts.current,
      fetchServerVersion: async (m) => opts.versions.get(m.id),
      propose: async (v) => void proposed.push(v),
    });
    monitor.check();
    await new Promise((r) => setTimeout(r, 10));
    return proposed;
  }

  it('sets the minimum when a member cannot be asked and there is no version yet', async () => {
    expect(await run({ versions: new Map([[1n, '3.4.23'], [2n, undefined]]) })).toEqual(['3.0.0']);
  });

  it('is held down by a member with a lower version', async () => {
    expect(await run({ versions: new Map([[1n, '3.4.23'], [2n, '3.3.25'], [3n, '3.4.23']]) })).toEqual(['3.3.0']);
    expect(await run({ current: '3.3.0', versions: new Map([[1n, '3.4.23'], [2n, '3.3.25']]) })).toEqual([]);
  });

  it('raises the version once every member runs a higher one, and only on the leader', async () => {
    const all = new Map<bigint, string | undefined>([[1n, '3.4.23'], [2n, '3.4.23']]);
    expect(await run({ current: '3.0.0', versions: all })).toEqual(['3.4.0']);
    expect(await run({ current: '3.4.0', versions: all })).toEqual([]);
    expect(await run({ current: '3.0.0', versions: all, leader: false })).toEqual([]);
  });
});

describe('v2 requests in the raft log', () => {
  const roundTrip = (req: V2Request): V2Request =>
    (InternalRaftRequest.decode(InternalRaftRequest.encode({ header: { ID: uint64(7n) }, v2: req }).finish()) as unknown as { v2: V2Request }).v2;

  it('carries a member publish as etcd 3.4 writes it: PUT /0/members/<hex id>/attributes', () => {
    const req = attributesRequest(7n, 0xbdae9bbc11dd390dn, 'infra1', ['http://127.0.0.1:2379']);
    expect(req.Path).toBe('/0/members/bdae9bbc11dd390d/attributes');
    expect(req.Val).toBe('{"name":"infra1","clientURLs":["http://127.0.0.1:2379"]}');
    expect(interpretV2(roundTrip(req))).toEqual({ kind: 'attributes', memberId: 0xbdae9bbc11dd390dn, name: 'infra1', clientUrls: ['http://127.0.0.1:2379'] });
  });

  it('carries the cluster version as PUT /0/version', () => {
    const req = clusterVersionRequest(7n, '3.4.0');
    expect(interpretV2(roundTrip(req))).toEqual({ kind: 'clusterVersion', version: '3.4.0' });
  });

  it('decodes the bytes etcd 3.4 encodes for a v2 request (proto2, etcdserverpb.Request)', () => {
    // etcd's gogoproto marshals every non-nullable field, zero or not: ID, Method, Path, Val, Dir, ...
    const Request = root.lookupType('etcdserverpb.Request');
    const bytes = Request.encode({ ID: uint64(1n), Method: 'PUT', Path: '/0/version', Val: '3.4.0', Dir: false, PrevValue: '', PrevIndex: uint64(0n) }).finish();
    expect(interpretV2(Request.decode(bytes) as unknown as V2Request)).toEqual({ kind: 'clusterVersion', version: '3.4.0' });
  });

  it('reads a v2 API write as etcd 3.4 encodes it: prevExist only when given', () => {
    const Request = root.lookupType('etcdserverpb.Request');
    const decode = (fields: object) => Request.decode(Request.encode({ ID: uint64(7n), Dir: false, PrevValue: '', PrevIndex: uint64(0n), ...fields }).finish()) as unknown as V2Request;
    const create = interpretV2(decode({ Method: 'PUT', Path: '/1/k', Val: 'v', PrevExist: false, Expiration: uint64(5_000_000_000n) }));
    expect(create).toEqual({
      kind: 'store',
      request: { method: 'PUT', path: '/1/k', val: 'v', dir: false, prevValue: '', prevIndex: 0, prevExist: false, ttl: { expireTime: 5_000_000_000n, refresh: false }, recursive: false, sorted: false },
    });
    const set = interpretV2(decode({ Method: 'PUT', Path: '/1/k', Val: 'v' }));
    expect(set.kind === 'store' && set.request.method === 'PUT' && set.request.prevExist).toBe(undefined);
    expect(interpretV2(decode({ Method: 'SYNC', Time: uint64(9n) }))).toEqual({ kind: 'store', request: { method: 'SYNC', time: 9n } });
  });

  it('names what it does not apply, and refuses a malformed publish', () => {
    expect(interpretV2({ Method: 'HEAD', Path: '/1/foo' })).toEqual({ kind: 'unsupported', method: 'HEAD', path: '/1/foo' });
    expect(() => interpretV2({ Method: 'PUT', Path: '/0/members/zz/attributes', Val: '{}' })).toThrow(/bad member id/);
    expect(() => interpretV2({ Method: 'PUT', Path: '/0/members/1/attributes', Val: '{"clientURLs":[1]}' })).toThrow(/bad clientURLs/);
  });
});
