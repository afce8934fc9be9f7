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
    const e = err instanceof EtcdError ? err : new EtcdError(2, (err as Error).message);
    reply(409, { code: e.code, message: e.message });
  }
}

async function callLeader<T>(
  leaderUrls: readonly string[],
  headers: Record<string, string>,
  tls: TlsContext | undefined,
  call: Call,
  timeoutMs: number,
): Promise<T> {
  let lastError: Error = new EtcdError(14, 'etcdserver: no leader');
  for (const url of leaderUrls) {
    try {
      return await new Promise<T>((resolve, reject) => {
        const req = peerRequest(url, LEADER_RPC_PREFIX + call.op, 'POST', { ...headers, 'content-type': 'application/json' }, tls);
        req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.on('response', (res) => {
          void readText(res, 16 * 1024 * 1024).then((text) => {
            try {
              const body = JSON.parse(text) as { code?: number; message?: string } & T;
              if (res.statusCode === 200) resolve(body);
              else reject(new EtcdError(body.code ?? 2, body.message ?? `leader answered ${res.statusCode}`));
            } catch {
              reject(new Error(`leader answered ${res.statusCode}: ${text.slice(0, 200)}`));
            }
          });
        });
        req.end(JSON.stringify(call));
      });
    } catch (err) {
      if (err instanceof EtcdError) throw err;
      lastError = err as Error;
    }
  }
  throw lastError;
}

/** A follower's LeaderRpc: every call goes to the leader's peer URLs. */
export class LeaderClient implements LeaderRpc {
  constructor(
    private readonly urls: readonly string[],
    private readonly headers: Record<string, string>,
    private readonly tls: TlsContext | undefined,
    private readonly timeoutMs: number,
  ) {}

  private call<T>(call: Call): Promise<T> {
    return callLeader<T>(this.urls, this.headers, this.tls, call, this.timeoutMs);
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
