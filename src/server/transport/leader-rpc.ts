// Requests a follower forwards to the leader over the peer port, as etcd 3.4 does: lease
// keep-alives (POST /leases, etcd's leasehttp: only the leader knows deadlines), lease
// time-to-live (POST /leases/internal) and learner promotion (POST /members/promote/<id>,
// only the leader knows how far a learner has caught up). Bodies are etcd's protobufs
// (the promotion answers etcd's member list JSON); refusals are etcd's status codes and
// texts, which etcd's followers match on.

import type http from 'node:http';
import { EtcdError, Errors } from '../errors.js';
import type { Member } from '../membership.js';
import { int64, toBigInt, type } from '../pb.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readBody } from './dial.js';
import { membersJson } from './members.js';

export const LEASE_PATH = '/leases';
export const LEASE_INTERNAL_PATH = '/leases/internal';
export const MEMBER_PROMOTE_PREFIX = '/members/promote/';

const LeaseKeepAliveRequest = type('etcdserverpb.LeaseKeepAliveRequest');
const LeaseKeepAliveResponse = type('etcdserverpb.LeaseKeepAliveResponse');
const LeaseInternalRequest = type('leasepb.LeaseInternalRequest');
const LeaseInternalResponse = type('leasepb.LeaseInternalResponse');

/** etcd's error texts on these paths (lease.ErrLeaseNotFound, membership.ErrIDNotFound, ...). */
const Text = {
  leaseNotFound: 'lease not found',
  notPrimary: 'not a primary lessor',
  idNotFound: 'membership: ID not found',
  memberNotLearner: 'membership: can only promote a learner member',
  learnerNotReady: 'etcdserver: can only promote a learner member which is in sync with leader',
  /** leasehttp.ErrLeaseHTTPTimeout, answered with 408 */
  leaseHttpTimeout: 'waiting for node to catch up its applied index has timed out',
} as const;

/**
 * etcd's leasehttp applyTimeout: before it answers a lease request the leader waits this
 * long for its apply to reach what was committed when the request came (a new leader may
 * still be applying its predecessor's entries, a revoke among them), then answers 408.
 */
export const LEASE_APPLY_TIMEOUT_MS = 1000;

/** etcd's ApplyWait: true once this member applied what was committed at the call, false after `timeoutMs`. */
export type ApplyWait = (timeoutMs: number) => Promise<boolean>;

/** A lease body is one small protobuf; anything larger is not etcd's. */
const MAX_BODY_BYTES = 64 * 1024;
/** The leader's answers: a lease's keys, or the member list. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** What the leader answers for its followers (implemented by the server). */
export interface LeaderRpc {
  /** renews the lease; 0 when it is unknown or expired */
  leaseRenew(id: bigint): Promise<number>;
  /** ttl -1 when the lease is unknown */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }>;
  memberPromote(id: bigint): Promise<void>;
}

/**
 * A forwarded call that did not get the leader's answer: the peer could not be reached,
 * timed out, answered something that is not etcd's, or failed inside (a leader that
 * lost its leadership answers so). The caller may try again (etcd's followers retry
 * such failures until their deadline).
 */
export class ForwardFailed extends Error {
  constructor(
    readonly peer: bigint,
    readonly reason: string,
  ) {
    super(`forwarding to the leader failed: ${reason}`);
    this.name = 'ForwardFailed';
  }
}

function reply(res: http.ServerResponse, status: number, contentType: string, body: Uint8Array | string): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}

function textError(res: http.ServerResponse, status: number, text: string): void {
  reply(res, status, 'text/plain; charset=utf-8', `${text}\n`);
}

/** Whether `path` is one of the leader's paths (served by serveLeaderRpc). */
export function isLeaderRpcPath(path: string): boolean {
  return path === LEASE_PATH || path === LEASE_INTERNAL_PATH || path.startsWith(MEMBER_PROMOTE_PREFIX);
}

/** Serves the leader's paths on the peer port (the method is already checked to be POST). */
export async function serveLeaderRpc(
  rpc: LeaderRpc | undefined,
  members: () => readonly Member[],
  applyWait: ApplyWait,
  path: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (rpc === undefined) return textError(res, 404, '404 page not found');
  if (path.startsWith(MEMBER_PROMOTE_PREFIX)) return servePromote(rpc, members, path.slice(MEMBER_PROMOTE_PREFIX.length), req, res);
  let id: bigint;
  let keys = false;
  try {
    const body = await readBody(req, MAX_BODY_BYTES);
    if (path === LEASE_PATH) {
      id = toBigInt((LeaseKeepAliveRequest.decode(body) as unknown as { ID?: Parameters<typeof toBigInt>[0] }).ID);
    } else {
      const r = LeaseInternalRequest.decode(body) as unknown as { LeaseTimeToLiveRequest?: { ID?: Parameters<typeof toBigInt>[0]; keys?: boolean } };
      id = toBigInt(r.LeaseTimeToLiveRequest?.ID);
      keys = r.LeaseTimeToLiveRequest?.keys === true;
    }
  } catch {
    return textError(res, 400, 'error unmarshalling request');
  }
  if (!(await applyWait(LEASE_APPLY_TIMEOUT_MS))) return textError(res, 408, Text.leaseHttpTimeout);
  try {
    if (path === LEASE_PATH) {
      const ttl = await rpc.leaseRenew(id);
      if (ttl <= 0) return textError(res, 404, Text.leaseNotFound);
      return reply(res, 200, 'application/protobuf', LeaseKeepAliveResponse.encode({ ID: int64(id), TTL: ttl }).finish());
    }
    const r = await rpc.leaseTimeToLive(id, keys);
    if (r.ttl === -1) return textError(res, 404, Text.leaseNotFound);
    const ttlResponse = { header: {}, ID: int64(id), TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
    return reply(res, 200, 'application/protobuf', LeaseInternalResponse.encode({ LeaseTimeToLiveResponse: ttlResponse }).finish());
  } catch (err) {
    // not (or no longer, or not yet) the primary lessor: etcd's answers ErrNotPrimary and the follower tries again
    textError(res, err instanceof EtcdError ? 400 : 500, err instanceof EtcdError ? Text.notPrimary : (err as Error).message);
  }
}

async function servePromote(rpc: LeaderRpc, members: () => readonly Member[], idText: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  req.resume();
  if (!/^\d{1,20}$/.test(idText) || BigInt(idText) >= 1n << 64n) return textError(res, 404, `member ${idText} not found in cluster`);
  try {
    await rpc.memberPromote(BigInt(idText));
    reply(res, 200, 'application/json', `${membersJson(members())}\n`);
  } catch (err) {
    if (err === Errors.memberNotFound) textError(res, 404, Text.idNotFound);
    else if (err === Errors.memberNotLearner) textError(res, 412, Text.memberNotLearner);
    else if (err === Errors.learnerNotReady) textError(res, 412, Text.learnerNotReady);
    else textError(res, 500, (err as Error).message);
  }
}

/**
 * A follower's LeaderRpc for one attempt: every call goes to the leader's peer URLs in
 * turn and fails with ForwardFailed when no answer comes back (the caller retries, see
 * LeaderCalls). Like etcd's, these requests carry no cluster headers.
 */
export class LeaderClient implements LeaderRpc {
  constructor(
    private readonly leader: bigint,
    private readonly urls: readonly string[],
    private readonly tls: TlsContext | undefined,
    private readonly timeoutMs: number,
  ) {}

  async leaseRenew(id: bigint): Promise<number> {
    const { status, body } = await this.post(LEASE_PATH, LeaseKeepAliveRequest.encode({ ID: int64(id) }).finish());
    if (status === 404) return 0;
    if (status !== 200) throw new ForwardFailed(this.leader, `lease: unknown error(${body.toString().trim()})`);
    const r = this.decode(() => LeaseKeepAliveResponse.decode(body) as unknown as { ID?: Parameters<typeof toBigInt>[0]; TTL?: Parameters<typeof toBigInt>[0] });
    if (toBigInt(r.ID) !== id) throw new ForwardFailed(this.leader, 'lease: renew id mismatch');
    return Number(toBigInt(r.TTL));
  }

  async leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }> {
    const { status, body } = await this.post(LEASE_INTERNAL_PATH, LeaseInternalRequest.encode({ LeaseTimeToLiveRequest: { ID: int64(id), keys } }).finish());
    if (status === 404) return { ttl: -1, grantedTtl: 0, keys: [] };
    if (status !== 200) throw new ForwardFailed(this.leader, `lease: unknown error(${body.toString().trim()})`);
    type TtlResponse = { ID?: Parameters<typeof toBigInt>[0]; TTL?: Parameters<typeof toBigInt>[0]; grantedTTL?: Parameters<typeof toBigInt>[0]; keys?: Uint8Array[] };
    const r = this.decode(() => (LeaseInternalResponse.decode(body) as unknown as { LeaseTimeToLiveResponse?: TtlResponse }).LeaseTimeToLiveResponse ?? {});
    if (toBigInt(r.ID) !== id) throw new ForwardFailed(this.leader, 'lease: renew id mismatch');
    return { ttl: Number(toBigInt(r.TTL)), grantedTtl: Number(toBigInt(r.grantedTTL)), keys: (r.keys ?? []).map((k) => Buffer.from(k)) };
  }

  async memberPromote(id: bigint): Promise<void> {
    const { status, body } = await this.post(`${MEMBER_PROMOTE_PREFIX}${id.toString()}`, new Uint8Array(0));
    const text = body.toString();
    if (status === 200) return;
    if (status === 404) throw Errors.memberNotFound;
    if (status === 412 && text.includes(Text.learnerNotReady)) throw Errors.learnerNotReady;
    if (status === 412 && text.includes(Text.memberNotLearner)) throw Errors.memberNotLearner;
    throw new ForwardFailed(this.leader, `member promote: unknown error(${text.trim()})`);
  }

  private decode<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new ForwardFailed(this.leader, `the leader's answer does not decode: ${(err as Error).message}`);
    }
  }

  /** One POST to the first of the leader's URLs that answers at all. */
  private async post(path: string, body: Uint8Array): Promise<{ status: number | undefined; body: Buffer }> {
    let lastError = new ForwardFailed(this.leader, 'no peer URLs known for the leader');
    for (const url of this.urls) {
      try {
        return await new Promise((resolve, reject) => {
          const req = peerRequest(url, path, 'POST', { 'content-type': 'application/protobuf', 'content-length': String(body.length) }, this.tls);
          req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
          req.on('error', (err) => reject(new ForwardFailed(this.leader, `${url}: ${err.message}`)));
          req.on('response', (res) => {
            readBody(res, MAX_ANSWER_BYTES).then(
              (b) => resolve({ status: res.statusCode, body: b }),
              (err: Error) => reject(new ForwardFailed(this.leader, `${url}: ${err.message}`)),
            );
          });
          req.end(body);
        });
      } catch (err) {
        if (!(err instanceof ForwardFailed)) throw err;
        lastError = err;
      }
    }
    throw lastError;
  }
}
