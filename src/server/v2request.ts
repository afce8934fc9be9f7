// The v2 requests etcd 3.4 puts in its raft log beside the v3 ones: a started member
// publishes its attributes, and the leader sets the cluster version, as PUTs into the
// v2 store's internal "/0" directory. etcd-ts proposes them the same way (wrapped in
// InternalRaftRequest.v2, which etcd 3.4 applies too) so that its log means what etcd's
// does. The v2 API's writes (and quorum reads, and the leader's SYNC that expires TTLs)
// travel the same way and are applied to the v2 store.

import { idHex } from './ids.js';
import { type Int64, int64, toBigInt, toNumber, uint64 } from './pb.js';
import type { StoreRequest } from './v2store/index.js';

const MEMBERS_PREFIX = '/0/members/';
const ATTRIBUTES_SUFFIX = '/attributes';
const CLUSTER_VERSION_PATH = '/0/version';

/** The decoded etcdserverpb.Request fields etcd-ts reads (proto2: unset optional fields are absent). */
export interface V2Request {
  ID?: Int64;
  Method?: string | null;
  Path?: string | null;
  Val?: string | null;
  Dir?: boolean | null;
  PrevValue?: string | null;
  PrevIndex?: Int64;
  PrevExist?: boolean | null;
  /** ns since the epoch */
  Expiration?: Int64;
  Recursive?: boolean | null;
  Sorted?: boolean | null;
  /** ns since the epoch (SYNC) */
  Time?: Int64;
  Refresh?: boolean | null;
}

/** What an applied v2 request changes in etcd-ts's state. */
export type V2Effect =
  | { readonly kind: 'attributes'; readonly memberId: bigint; readonly name: string; readonly clientUrls: readonly string[] }
  | { readonly kind: 'clusterVersion'; readonly version: string }
  | { readonly kind: 'store'; readonly request: StoreRequest }
  | { readonly kind: 'unsupported'; readonly method: string; readonly path: string };

/** etcd's membership.Attributes, as JSON in the v2 store. */
interface AttributesJson {
  name?: string;
  clientURLs?: string[];
}

export function attributesRequest(id: bigint, memberId: bigint, name: string, clientUrls: readonly string[]): V2Request {
  const attrs: AttributesJson = {};
  if (name !== '') attrs.name = name;
  if (clientUrls.length > 0) attrs.clientURLs = [...clientUrls];
  return { ID: uint64(id), Method: 'PUT', Path: `${MEMBERS_PREFIX}${idHex(memberId)}${ATTRIBUTES_SUFFIX}`, Val: JSON.stringify(attrs) };
}

export function clusterVersionRequest(id: bigint, version: string): V2Request {
  return { ID: uint64(id), Method: 'PUT', Path: CLUSTER_VERSION_PATH, Val: version };
}

/** Reads a v2 request from the log; throws on a member-attributes or version PUT that is malformed. */
export function interpretV2(req: V2Request): V2Effect {
  const method = req.Method ?? '';
  const path = req.Path ?? '';
  if (method === 'PUT' && path === CLUSTER_VERSION_PATH) return { kind: 'clusterVersion', version: req.Val ?? '' };
  if (method === 'PUT' && path.startsWith(MEMBERS_PREFIX) && path.endsWith(ATTRIBUTES_SUFFIX)) {
    const hex = path.slice(MEMBERS_PREFIX.length, -ATTRIBUTES_SUFFIX.length);
    if (!/^[0-9a-f]{1,16}$/.test(hex)) throw new Error(`bad member id in v2 path ${JSON.stringify(path)}`);
    const attrs = JSON.parse(req.Val ?? '') as AttributesJson;
    const clientUrls = attrs.clientURLs ?? [];
    if (!Array.isArray(clientUrls) || clientUrls.some((u) => typeof u !== 'string')) throw new Error(`bad clientURLs in ${path}`);
    return { kind: 'attributes', memberId: BigInt('0x' + hex), name: typeof attrs.name === 'string' ? attrs.name : '', clientUrls };
  }
  switch (method) {
    case 'POST':
    case 'PUT':
    case 'DELETE':
    case 'QGET':
      return { kind: 'store', request: storeRequest(method, path, req) };
    case 'SYNC':
      return { kind: 'store', request: { method, time: toBigInt(req.Time) } };
  }
  return { kind: 'unsupported', method, path };
}

/** A set optional field: present on the decoded message itself, not only as the prototype's default. */
function isSet(req: V2Request, field: keyof V2Request): boolean {
  return Object.prototype.hasOwnProperty.call(req, field) && req[field] !== null && req[field] !== undefined;
}

function storeRequest(method: 'POST' | 'PUT' | 'DELETE' | 'QGET', path: string, req: V2Request): StoreRequest {
  const expiration = toBigInt(req.Expiration);
  return {
    method,
    path,
    val: req.Val ?? '',
    dir: req.Dir === true,
    prevValue: req.PrevValue ?? '',
    prevIndex: toNumber(req.PrevIndex),
    prevExist: isSet(req, 'PrevExist') ? req.PrevExist === true : undefined,
    ttl: { expireTime: expiration !== 0n ? expiration : undefined, refresh: req.Refresh === true },
    recursive: req.Recursive === true,
    sorted: req.Sorted === true,
  };
}

/** The v2 request a StoreRequest travels as, with the proposal's ID. */
export function encodeStoreRequest(id: bigint, r: StoreRequest): V2Request {
  if (r.method === 'SYNC') return { ID: uint64(id), Method: 'SYNC', Time: int64(r.time) };
  const req: V2Request = { ID: uint64(id), Method: r.method, Path: r.path };
  if (r.val !== '') req.Val = r.val;
  if (r.dir) req.Dir = true;
  if (r.prevValue !== '') req.PrevValue = r.prevValue;
  if (r.prevIndex !== 0) req.PrevIndex = uint64(BigInt(r.prevIndex));
  if (r.prevExist !== undefined) req.PrevExist = r.prevExist;
  if (r.ttl.expireTime !== undefined) req.Expiration = int64(r.ttl.expireTime);
  if (r.ttl.refresh === true) req.Refresh = true;
  if (r.recursive) req.Recursive = true;
  if (r.sorted) req.Sorted = true;
  return req;
}
