// Requests a follower forwards to the leader over the peer port, as etcd does for lease
// keepalives (only the leader knows deadlines), lease time-to-live and learner promotion
// (only the leader knows how far a learner has caught up). JSON bodies; IDs as hex.

import type http from 'node:http';
import { EtcdError } from '../errors.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';

export const LEADER_RPC_PREFIX = '/etcd-ts/leader/';

/** What the leader answers for its followers (implemented by the server). */
export interface LeaderRpc {
  /** renews the lease; 0 when it is unknown or expired */
  leaseRenew(id: bigint): Promise<number>;
  leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }>;
  memberPromote(id: bigint): Promise<void>;
}

type Call =
  | { op: 'lease-renew'; id: string }
  | { op: 'lease-ttl'; id: string; keys: boolean }
  | { op: 'member-promote'; id: string };

async function dispatch(rpc: LeaderRpc, call: Call): Promise<unknown> {
  const id = BigInt('0x' + call.id);
  switch (call.op) {
    case 'lease-renew':
      return { ttl: await rpc.leaseRenew(id) };
    case 'lease-ttl': {
      const r = await rpc.leaseTimeToLive(id, call.keys);
      return { ttl: r.ttl, grantedTtl: r.grantedTtl, keys: r.keys.map((k) => k.toString('base64')) };
    }
    case 'member-promote':
      await rpc.memberPromote(id);
      return {};
  }
}

function parseCall(text: string): Call {
  const c = JSON.parse(text) as Call;
  if (typeof c !== 'object' || c === null || typeof c.id !== 'string' || !/^[0-9a-f]{1,16}$/.test(c.id)) {
    throw new Error('malformed leader request');
  }
  if (c.op !== 'lease-renew' && c.op !== 'lease-ttl' && c.op !== 'member-promote') throw new Error('unknown leader request');
  return c;
}

/**
 * A forwarded call that did not get the leader's answer: the peer could not be reached,
 * timed out, answered something that is not the leader protocol, or failed inside.
 * The caller may try again (etcd's followers retry such failures until their deadline).
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

/** Serves POST /etcd-ts/leader/<op> on the peer port. */
export async function serveLeaderRpc(rpc: LeaderRpc | undefined, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (rpc === undefined) return reply(404, { code: 12, message: 'not served here' });
  let call: Call;
  try {
    call = parseCall(await readText(req, 64 * 1024));
  } catch (err) {
    return reply(400, { code: 3, message: (err as Error).message });
  }
  try {
    reply(200, await dispatch(rpc, call));
  } catch (err) {
    // etcd's answers go back as such (409); anything else is the leader's own failure,
    // which the follower reports as a failed forward and tries again (500).
    if (err instanceof EtcdError) reply(409, { code: err.code, message: err.message });
    else reply(500, { message: (err as Error).message });
  }
}

/** One attempt at the leader's peer URLs, in turn; an EtcdError is the leader's answer. */
async function callLeader<T>(
  leader: bigint,
  leaderUrls: readonly string[],
  headers: Record<string, string>,
  tls: TlsContext | undefined,
  call: Call,
  timeoutMs: number,
): Promise<T> {
  let lastError = new ForwardFailed(leader, 'no peer URLs known for the leader');
  for (const url of leaderUrls) {
    try {
      return await new Promise<T>((resolve, reject) => {
        const failed = (reason: string) => reject(new ForwardFailed(leader, `${url}: ${reason}`));
        const req = peerRequest(url, LEADER_RPC_PREFIX + call.op, 'POST', { ...headers, 'content-type': 'application/json' }, tls);
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', (err) => failed(err.message));
        req.on('response', (res) => {
          void readText(res, 16 * 1024 * 1024).then((text) => {
            let body: ({ code?: unknown; message?: unknown } & T) | undefined;
            try {
              body = JSON.parse(text) as { code?: unknown; message?: unknown } & T;
            } catch {
              return failed(`answered ${res.statusCode} with ${JSON.stringify(text.slice(0, 200))}`);
            }
            if (res.statusCode === 200) resolve(body);
            else if (res.statusCode === 409 && typeof body.code === 'number' && typeof body.message === 'string') reject(new EtcdError(body.code, body.message));
            else failed(`answered ${res.statusCode}: ${typeof body.message === 'string' ? body.message : text.slice(0, 200)}`);
          });
        });
        req.end(JSON.stringify(call));
      });
    } catch (err) {
      if (!(err instanceof ForwardFailed)) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

/**
 * A follower's LeaderRpc for one attempt: every call goes to the leader's peer URLs and
 * fails with ForwardFailed when no answer comes back (the caller retries, see LeaderCalls).
 */
export class LeaderClient implements LeaderRpc {
  constructor(
    private readonly leader: bigint,
    private readonly urls: readonly string[],
    private readonly headers: Record<string, string>,
    private readonly tls: TlsContext | undefined,
    private readonly timeoutMs: number,
  ) {}

  private call<T>(call: Call): Promise<T> {
    return callLeader<T>(this.leader, this.urls, this.headers, this.tls, call, this.timeoutMs);
  }

  async leaseRenew(id: bigint): Promise<number> {
    return (await this.call<{ ttl: number }>({ op: 'lease-renew', id: id.toString(16) })).ttl;
  }

  async leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }> {
    const r = await this.call<{ ttl: number; grantedTtl: number; keys: string[] }>({ op: 'lease-ttl', id: id.toString(16), keys });
    return { ttl: r.ttl, grantedTtl: r.grantedTtl, keys: r.keys.map((k) => Buffer.from(k, 'base64')) };
  }

  async memberPromote(id: bigint): Promise<void> {
    await this.call({ op: 'member-promote', id: id.toString(16) });
  }
}
