// The v2 requests etcd 3.4 puts in its raft log beside the v3 ones: a started member
// publishes its attributes, and the leader sets the cluster version, as PUTs into the
// v2 store's internal "/0" directory. etcd-ts proposes them the same way (wrapped in
// InternalRaftRequest.v2, which etcd 3.4 applies too) so that its log means what etcd's
// does; until the v2 API exists, other v2 requests are recognised and skipped.

import { idHex } from './ids.js';
import { type Int64, uint64 } from './pb.js';

const MEMBERS_PREFIX = '/0/members/';
const ATTRIBUTES_SUFFIX = '/attributes';
const CLUSTER_VERSION_PATH = '/0/version';

/** The decoded etcdserverpb.Request fields etcd-ts reads. */
export interface V2Request {
  ID?: Int64;
  Method?: string | null;
  Path?: string | null;
  Val?: string | null;
}

/** What an applied v2 request changes in etcd-ts's state. */
export type V2Effect =
  | { readonly kind: 'attributes'; readonly memberId: bigint; readonly name: string; readonly clientUrls: readonly string[] }
  | { readonly kind: 'clusterVersion'; readonly version: string }
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
  return { kind: 'unsupported', method, path };
}
