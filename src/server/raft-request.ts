// The requests raft orders, as etcd's InternalRaftRequest carries them: one kind per
// request field, each with its body as protobufjs decodes it and the result applying it
// gives the proposer. A proposal is encoded once, into the entry: the header, then the
// request's own bytes — a client's, verbatim, when the gRPC edge decoded the body from
// them (pb.ts clientBytes), since InternalRaftRequest's field for a PutRequest is a
// length-delimited PutRequest.

import protobuf from 'protobufjs/light.js';
import type { DeleteRangeResponse, PutResponse, RangeResponse, TxnResponse } from '../mvcc/index.js';
import type { AlarmMember } from './alarms.js';
import type { Permission } from './auth/range-perms.js';
import type { AssignedToken } from './auth/store.js';
import type { PbDeleteRangeRequest, PbPutRequest, PbRangeRequest, PbTxnRequest } from './convert.js';
import type { Member } from './membership.js';
import { type Int64, InternalRaftRequest, V2RequestType, clientBytes, toBigInt } from './pb.js';
import type { V2Request } from './v2request.js';
import type { V2Event } from './v2store/index.js';

export interface PbRequestHeader {
  ID: Int64;
  username?: string | null;
  auth_revision?: Int64;
}
export interface PbCompactionRequest {
  revision: Int64;
  physical: boolean;
}
export interface PbLeaseGrantRequest {
  TTL: Int64;
  ID: Int64;
}
export interface PbLeaseRevokeRequest {
  ID: Int64;
}
export interface PbLeaseCheckpointRequest {
  checkpoints?: Array<{ ID: Int64; remaining_TTL: Int64 }> | null;
}
export interface PbAlarmRequest {
  /** AlarmAction, or a number etcd does not know */
  action: number;
  memberID: Int64;
  /** AlarmType, or a number etcd does not know */
  alarm: number;
}
interface Name {
  name: string;
}
interface RoleName {
  role: string;
}
export interface PbPermission {
  permType?: number;
  key?: Buffer;
  range_end?: Buffer;
}

/** The body of each kind of request, by the name of etcd's applierV3 method that applies it. */
export interface RequestBodies {
  /** the v2 requests etcd 3.4 logs: member attributes (publish), the cluster version, the v2 API's */
  v2: V2Request;
  range: PbRangeRequest;
  put: PbPutRequest;
  deleteRange: PbDeleteRangeRequest;
  txn: PbTxnRequest;
  compaction: PbCompactionRequest;
  leaseGrant: PbLeaseGrantRequest;
  leaseRevoke: PbLeaseRevokeRequest;
  alarm: PbAlarmRequest;
  leaseCheckpoint: PbLeaseCheckpointRequest;
  authEnable: object;
  authDisable: object;
  authenticate: { name: string; simple_token: string };
  userAdd: { name: string; hashedPassword: string; options?: { no_password?: boolean } | null };
  userDelete: Name;
  userGet: Name;
  userChangePassword: { name: string; hashedPassword: string };
  userGrantRole: { user: string; role: string };
  userRevokeRole: { name: string; role: string };
  userList: object;
  roleList: object;
  roleAdd: Name;
  roleDelete: RoleName;
  roleGet: RoleName;
  roleGrantPermission: { name: string; perm?: PbPermission | null };
  roleRevokePermission: { role: string; key: Buffer; range_end: Buffer };
}

export type RequestKind = keyof RequestBodies;

/** What applying each kind gives its proposer (the response header is the API layer's). */
export interface RequestResults {
  /** the v2 store's event; none for member attributes and the cluster version, as etcd's empty Response */
  v2: V2Event | undefined;
  range: RangeResponse;
  put: PutResponse;
  deleteRange: DeleteRangeResponse;
  txn: TxnResponse;
  /** `done` settles once the compaction's deletes are written */
  compaction: { done: Promise<void> };
  leaseGrant: { id: bigint; ttl: number };
  leaseRevoke: { revision: number };
  /** the alarms raised, disarmed or asked for */
  alarm: AlarmMember[];
  leaseCheckpoint: undefined;
  authEnable: undefined;
  authDisable: undefined;
  authenticate: AssignedToken;
  userAdd: undefined;
  userDelete: undefined;
  /** the user's roles */
  userGet: readonly string[];
  userChangePassword: undefined;
  userGrantRole: undefined;
  userRevokeRole: undefined;
  userList: string[];
  roleList: string[];
  roleAdd: undefined;
  roleDelete: undefined;
  roleGet: readonly Permission[];
  roleGrantPermission: undefined;
  roleRevokePermission: undefined;
}

/** InternalRaftRequest's field for each kind. */
const FIELDS = {
  v2: 'v2',
  range: 'range',
  put: 'put',
  deleteRange: 'delete_range',
  txn: 'txn',
  compaction: 'compaction',
  leaseGrant: 'lease_grant',
  leaseRevoke: 'lease_revoke',
  alarm: 'alarm',
  leaseCheckpoint: 'lease_checkpoint',
  authEnable: 'auth_enable',
  authDisable: 'auth_disable',
  authenticate: 'authenticate',
  userAdd: 'auth_user_add',
  userDelete: 'auth_user_delete',
  userGet: 'auth_user_get',
  userChangePassword: 'auth_user_change_password',
  userGrantRole: 'auth_user_grant_role',
  userRevokeRole: 'auth_user_revoke_role',
  userList: 'auth_user_list',
  roleList: 'auth_role_list',
  roleAdd: 'auth_role_add',
  roleDelete: 'auth_role_delete',
  roleGet: 'auth_role_get',
  roleGrantPermission: 'auth_role_grant_permission',
  roleRevokePermission: 'auth_role_revoke_permission',
} as const satisfies Record<RequestKind, string>;

/** A request of kind K (of any kind when K is left out): `kind` tells TypeScript and the applier what `body` is. */
export type RaftRequest<K extends RequestKind = RequestKind> = { [P in K]: { readonly kind: P; readonly body: RequestBodies[P] } }[K];

/** An applied request's result, tagged with its kind; conf changes answer with the members after them. */
export type ApplyResult = { [P in RequestKind]: { readonly kind: P; readonly result: RequestResults[P] } }[RequestKind] | { readonly kind: 'confChange'; readonly result: Member[] };

/** What a proposal of kind K resolves with. */
export type ResultOf<K extends ApplyResult['kind']> = K extends RequestKind ? RequestResults[K] : Member[];

/** The result the waiter of a `kind` proposal gets; an entry of another kind under its ID is a bug, not a result. */
export function resultOf<K extends ApplyResult['kind']>(kind: K, applied: ApplyResult): ResultOf<K> {
  if (applied.kind !== kind) throw new Error(`etcd-ts bug: a ${kind} proposal was answered by a ${applied.kind} entry`);
  return applied.result as ResultOf<K>;
}

/** A normal entry's request: the proposal's ID (its waiter's key), the header's credentials, the request. */
export interface EntryRequest {
  readonly id: bigint;
  readonly header: PbRequestHeader | undefined;
  readonly request: RaftRequest;
}

const WIRE_BYTES = 2;
const HEADER_FIELD = InternalRaftRequest.fields.header!;
const ID_FIELD = InternalRaftRequest.fields.ID!;
const RequestHeaderType = HEADER_FIELD.resolvedType as protobuf.Type;

interface KindField {
  readonly kind: RequestKind;
  readonly tag: number;
  readonly type: protobuf.Type;
}

function kindField(kind: RequestKind): KindField {
  const field = InternalRaftRequest.fields[FIELDS[kind]];
  if (field === undefined || !(field.resolvedType instanceof protobuf.Type)) throw new Error(`InternalRaftRequest has no message field ${FIELDS[kind]}`);
  return { kind, tag: (field.id << 3) | WIRE_BYTES, type: field.resolvedType };
}

const BY_KIND = new Map((Object.keys(FIELDS) as RequestKind[]).map((k) => [k, kindField(k)]));
const BY_FIELD_ID = new Map([...BY_KIND.values()].map((f) => [f.tag >>> 3, f]));

/**
 * The entry for a proposal: InternalRaftRequest{header, <kind>: body}. A body the gRPC
 * edge decoded goes in as the client's bytes; any other is encoded here.
 */
export function encodeRaftRequest<K extends RequestKind>(header: PbRequestHeader, request: RaftRequest<K>): Uint8Array {
  const { tag, type } = BY_KIND.get(request.kind)!;
  const w = protobuf.Writer.create();
  RequestHeaderType.encode(header, w.uint32((HEADER_FIELD.id << 3) | WIRE_BYTES).fork()).ldelim();
  const raw = clientBytes(request.body);
  if (raw !== undefined) w.uint32(tag).bytes(raw);
  else type.encode(request.body, w.uint32(tag).fork()).ldelim();
  return w.finish();
}

/**
 * The kind of request a normal entry carries, from its tags alone (no message decoded),
 * telling the two encodings apart as decodeEntryRequest does; throws, as it does, on an
 * entry with no request or with two.
 */
export function entryRequestKind(data: Uint8Array): RequestKind {
  if (data[0] === 0x08) return 'v2';
  const r = protobuf.Reader.create(data);
  let kind: RequestKind | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = BY_FIELD_ID.get(tag >>> 3);
    if (f !== undefined && (tag & 7) === WIRE_BYTES) {
      if (kind !== undefined) throw twoRequests(kind, f.kind);
      kind = f.kind;
    }
    r.skipType(tag & 7);
  }
  if (kind === undefined) throw noRequest();
  return kind;
}

const twoRequests = (a: RequestKind, b: RequestKind) => new Error(`the entry carries two requests (${a} and ${b})`);
const noRequest = () => new Error('the entry carries no request etcd-ts knows');

/**
 * Decodes a normal entry's data as etcd's applyEntryNormal does: an InternalRaftRequest,
 * or else a bare v2 Request (etcd 3.4 proposes publish and the cluster version so). A
 * bare Request starts with its ID (field 1, a varint); an InternalRaftRequest never
 * does (its ID field is unused; etcd's and etcd-ts's start with a request or the header),
 * so that first byte tells them apart. Throws on an entry with no request, or with two.
 */
export function decodeEntryRequest(data: Uint8Array): EntryRequest {
  if (data[0] === 0x08) {
    const body = V2RequestType.decode(data) as unknown as V2Request;
    return { id: toBigInt(body.ID, true), header: undefined, request: { kind: 'v2', body } };
  }
  const r = protobuf.Reader.create(data);
  let header: PbRequestHeader | undefined;
  let id = 0n;
  let request: RaftRequest | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const fieldId = tag >>> 3;
    const wire = tag & 7;
    const f = BY_FIELD_ID.get(fieldId);
    if (fieldId === HEADER_FIELD.id && wire === WIRE_BYTES) header = RequestHeaderType.decode(r, r.uint32()) as unknown as PbRequestHeader;
    else if (fieldId === ID_FIELD.id && wire === 0) id = toBigInt(r.uint64() as unknown as Int64, true);
    else if (f !== undefined && wire === WIRE_BYTES) {
      if (request !== undefined) throw twoRequests(request.kind, f.kind);
      request = { kind: f.kind, body: f.type.decode(r, r.uint32()) } as unknown as RaftRequest;
    } else r.skipType(wire);
  }
  if (request === undefined) throw noRequest();
  // etcd's waiter: a v2 request's own ID, else the InternalRaftRequest's, else its header's
  if (request.kind === 'v2') id = toBigInt(request.body.ID, true);
  else if (id === 0n) id = toBigInt(header?.ID, true);
  return { id, header, request };
}
