// The gateway's paths and the RPCs behind them, as etcd 3.4 registers them (the
// google.api.http annotations of rpc.proto, v3election.proto and v3lock.proto).

import type protobuf from 'protobufjs';
import { root } from '../pb.js';

/** How an RPC's messages flow; the gateway bridges each kind differently. */
export type RpcKind = 'unary' | 'server-stream' | 'bidi-stream';

export interface GatewayRpc {
  /** e.g. 'etcdserverpb.KV' */
  readonly service: string;
  /** e.g. 'Range' */
  readonly method: string;
  readonly kind: RpcKind;
  readonly requestType: protobuf.Type;
  readonly responseType: protobuf.Type;
}

const KV = 'etcdserverpb.KV';
const WATCH = 'etcdserverpb.Watch';
const LEASE = 'etcdserverpb.Lease';
const CLUSTER = 'etcdserverpb.Cluster';
const MAINTENANCE = 'etcdserverpb.Maintenance';
const AUTH = 'etcdserverpb.Auth';
const ELECTION = 'v3electionpb.Election';
const LOCK = 'v3lockpb.Lock';

const TABLE: ReadonlyArray<readonly [path: string, service: string, method: string]> = [
  ['/v3/kv/range', KV, 'Range'],
  ['/v3/kv/put', KV, 'Put'],
  ['/v3/kv/deleterange', KV, 'DeleteRange'],
  ['/v3/kv/txn', KV, 'Txn'],
  ['/v3/kv/compaction', KV, 'Compact'],
  ['/v3/watch', WATCH, 'Watch'],
  ['/v3/lease/grant', LEASE, 'LeaseGrant'],
  ['/v3/lease/revoke', LEASE, 'LeaseRevoke'],
  ['/v3/kv/lease/revoke', LEASE, 'LeaseRevoke'],
  ['/v3/lease/keepalive', LEASE, 'LeaseKeepAlive'],
  ['/v3/lease/timetolive', LEASE, 'LeaseTimeToLive'],
  ['/v3/kv/lease/timetolive', LEASE, 'LeaseTimeToLive'],
  ['/v3/lease/leases', LEASE, 'LeaseLeases'],
  ['/v3/kv/lease/leases', LEASE, 'LeaseLeases'],
  ['/v3/cluster/member/add', CLUSTER, 'MemberAdd'],
  ['/v3/cluster/member/remove', CLUSTER, 'MemberRemove'],
  ['/v3/cluster/member/update', CLUSTER, 'MemberUpdate'],
  ['/v3/cluster/member/list', CLUSTER, 'MemberList'],
  ['/v3/cluster/member/promote', CLUSTER, 'MemberPromote'],
  ['/v3/maintenance/alarm', MAINTENANCE, 'Alarm'],
  ['/v3/maintenance/status', MAINTENANCE, 'Status'],
  ['/v3/maintenance/defragment', MAINTENANCE, 'Defragment'],
  // Hash and HashKV share this path; etcd 3.4's gateway answers it with Hash.
  ['/v3/maintenance/hash', MAINTENANCE, 'Hash'],
  ['/v3/maintenance/snapshot', MAINTENANCE, 'Snapshot'],
  ['/v3/maintenance/transfer-leadership', MAINTENANCE, 'MoveLeader'],
  ['/v3/auth/enable', AUTH, 'AuthEnable'],
  ['/v3/auth/disable', AUTH, 'AuthDisable'],
  ['/v3/auth/authenticate', AUTH, 'Authenticate'],
  ['/v3/auth/user/add', AUTH, 'UserAdd'],
  ['/v3/auth/user/get', AUTH, 'UserGet'],
  ['/v3/auth/user/list', AUTH, 'UserList'],
  ['/v3/auth/user/delete', AUTH, 'UserDelete'],
  ['/v3/auth/user/changepw', AUTH, 'UserChangePassword'],
  ['/v3/auth/user/grant', AUTH, 'UserGrantRole'],
  ['/v3/auth/user/revoke', AUTH, 'UserRevokeRole'],
  ['/v3/auth/role/add', AUTH, 'RoleAdd'],
  ['/v3/auth/role/get', AUTH, 'RoleGet'],
  ['/v3/auth/role/list', AUTH, 'RoleList'],
  ['/v3/auth/role/delete', AUTH, 'RoleDelete'],
  ['/v3/auth/role/grant', AUTH, 'RoleGrantPermission'],
  ['/v3/auth/role/revoke', AUTH, 'RoleRevokePermission'],
  ['/v3/election/campaign', ELECTION, 'Campaign'],
  ['/v3/election/proclaim', ELECTION, 'Proclaim'],
  ['/v3/election/leader', ELECTION, 'Leader'],
  ['/v3/election/observe', ELECTION, 'Observe'],
  ['/v3/election/resign', ELECTION, 'Resign'],
  ['/v3/lock/lock', LOCK, 'Lock'],
  ['/v3/lock/unlock', LOCK, 'Unlock'],
];

function rpcOf(service: string, method: string): GatewayRpc {
  const m = root.lookupService(service).methods[method];
  if (m === undefined) throw new Error(`proto/ has no method ${service}/${method}`);
  m.resolve();
  const kind: RpcKind = m.requestStream ? 'bidi-stream' : m.responseStream ? 'server-stream' : 'unary';
  return { service, method, kind, requestType: m.resolvedRequestType!, responseType: m.resolvedResponseType! };
}

/** Path (under /v3/) → the RPC it calls. */
export function gatewayRpcs(): ReadonlyMap<string, GatewayRpc> {
  return new Map(TABLE.map(([path, service, method]) => [path, rpcOf(service, method)]));
}
