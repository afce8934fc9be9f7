// The leader's lease paths on the peer port (etcd's leasehttp handler) in the states right
// after an election: a leader whose apply has not reached its commit waits up to a second
// and answers 408 with etcd's ErrLeaseHTTPTimeout text (an etcd follower retries on it); a
// lessor not yet primary answers 400 "not a primary lessor" (retried as well). The leader
// side is a LeaderRpc and an ApplyWait that report those states (fault injection behind the
// transport's real interfaces); requests are etcd's protobuf bodies over real HTTP, and
// etcd-ts's own follower client (LeaderClient) is checked to retry rather than give up.

import { afterEach, describe, expect, it } from 'vitest';
import { Errors } from '../../src/server/errors.js';
import { ForwardFailed, type LeaderRpc } from '../../src/server/transport/index.js';
import { LEASE_APPLY_TIMEOUT_MS, LeaderClient } from '../../src/server/transport/leader-rpc.js';
import { startNode, stopNode, type Node } from './helpers.js';

const LEADER = 0xa1n;
const LEASE = 5n;

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stopNode(n);
});

/** What the stand-in leader is like: its apply caught up or not, its lessor primary or not. */
interface LeaderState {
  applied: boolean;
  primary: boolean;
  renewals: number;
}

async function leader(state: LeaderState): Promise<Node> {
  const notPrimary = (): never => {
    throw Errors.leaderChanged;
  };
  const rpc: LeaderRpc = {
    leaseRenew: async (id) => {
      if (!state.primary) notPrimary();
      state.renewals++;
      return id === LEASE ? 60 : 0;
    },
    leaseTimeToLive: async (id) => (id === LEASE ? { ttl: 42, grantedTtl: 60, keys: [] } : { ttl: -1, grantedTtl: 0, keys: [] }),
    memberPromote: async () => undefined,
  };
  const n = await startNode({ id: LEADER, leaderRpc: rpc, applyWait: async (ms) => (expect(ms).toBe(LEASE_APPLY_TIMEOUT_MS), state.applied) });
  nodes.push(n);
  return n;
}

/** One POST of an etcd protobuf body, as etcd's follower sends it. */
async function post(n: Node, path: string, body: number[]): Promise<{ status: number; text: string }> {
  const r = await fetch(`${n.url}${path}`, { method: 'POST', body: Buffer.from(body), headers: { 'Content-Type': 'application/protobuf' } });
  return { status: r.status, text: await r.text() };
}

/** LeaseKeepAliveRequest{ID: 5} and LeaseInternalRequest{LeaseTimeToLiveRequest{ID: 5}}. */
const KEEPALIVE = [0x08, 0x05];
const TIME_TO_LIVE = [0x0a, 0x02, 0x08, 0x05];

describe("the leader's lease paths right after an election", () => {
  it("answers 408 with etcd's ErrLeaseHTTPTimeout while its apply is behind its commit, without renewing", async () => {
    const state = { applied: false, primary: true, renewals: 0 };
    const n = await leader(state);
    const timeout = { status: 408, text: 'waiting for node to catch up its applied index has timed out\n' };
    expect(await post(n, '/leases', KEEPALIVE)).toEqual(timeout);
    expect(await post(n, '/leases/internal', TIME_TO_LIVE)).toEqual(timeout);
    expect(state.renewals).toBe(0);
    // a garbled body is refused before the wait, as etcd does
    expect(await post(n, '/leases', [0xff])).toEqual({ status: 400, text: 'error unmarshalling request\n' });

    // etcd-ts's follower treats the 408 as a failed attempt to retry, not as an answer
    const client = new LeaderClient(LEADER, [n.url], undefined, 5000);
    await expect(client.leaseRenew(LEASE)).rejects.toBeInstanceOf(ForwardFailed);

    state.applied = true;
    expect((await post(n, '/leases', KEEPALIVE)).status).toBe(200);
    expect(await client.leaseRenew(LEASE)).toBe(60);
    expect(await client.leaseTimeToLive(LEASE, false)).toEqual({ ttl: 42, grantedTtl: 60, keys: [] });
  });

  it('answers 400 "not a primary lessor" while the new leader has not applied its first entry, then renews', async () => {
    const state = { applied: true, primary: false, renewals: 0 };
    const n = await leader(state);
    expect(await post(n, '/leases', KEEPALIVE)).toEqual({ status: 400, text: 'not a primary lessor\n' });
    await expect(new LeaderClient(LEADER, [n.url], undefined, 5000).leaseRenew(LEASE)).rejects.toBeInstanceOf(ForwardFailed);
    state.primary = true;
    expect((await post(n, '/leases', KEEPALIVE)).status).toBe(200);
    expect(state.renewals).toBe(1);
  });
});
