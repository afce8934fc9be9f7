// etcdserverpb.Lease: grants and revocations go through raft; keepalives and
// time-to-live are answered by the leader's lessor.

import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { Errors } from '../errors.js';
import { MAX_LEASE_TTL } from '../lessor.js';
import { type Int64, int64, toBigInt, toNumber } from '../pb.js';
import type { PbLeaseRevokeRequest } from '../raft-request.js';
import type { EtcdServer } from '../server.js';
import type { AuthGate } from '../auth/gate.js';
import { type Headers, checkLeader, checkNotLearner, checkQuota, unary } from './common.js';

/** A random positive int63 for a lease the client did not name. */
function randomLeaseId(): bigint {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  const id = b[0]! & 0x7fff_ffff_ffff_ffffn;
  return id === 0n ? 1n : id;
}

/**
 * Grants a lease through raft as LeaseGrant does (an ID of 0 picks a random one); Lock
 * and Election grant a session's lease through here when the caller names none.
 */
export async function grantLease(server: EtcdServer, ttl: number, requestedId: bigint): Promise<{ id: bigint; ttl: number }> {
  if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge;
  checkQuota(server, 0);
  const id = requestedId === 0n ? randomLeaseId() : requestedId;
  return server.proposals.propose({ kind: 'leaseGrant', body: { TTL: ttl, ID: int64(id) } });
}

export function leaseService(server: EtcdServer, headers: Headers, gate: AuthGate): ServiceImplementation {
  return {
    LeaseGrant: unary(async (req: { TTL: Int64; ID: Int64 }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const r = await grantLease(server, toNumber(req.TTL), toBigInt(req.ID));
      return { header: headers.make(), ID: int64(r.id), TTL: r.ttl, error: '' };
    }),

    LeaseRevoke: unary(async (req: PbLeaseRevokeRequest, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      // who may revoke is decided when it applies: write permission on every key of the lease
      const r = await server.proposals.propose({ kind: 'leaseRevoke', body: req }, await gate.caller(call));
      return { header: headers.make(r.revision) };
    }),

    LeaseTimeToLive: unary(async (req: { ID: Int64; keys: boolean }) => {
      checkNotLearner(server);
      const id = toBigInt(req.ID);
      const r = await server.leaderCalls.leaseTimeToLive(id, req.keys === true);
      return { header: headers.make(), ID: int64(id), TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
    }),

    LeaseLeases: unary(async () => {
      checkNotLearner(server);
      return { header: headers.make(), leases: server.lessor.ids().map((id) => ({ ID: int64(id) })) };
    }),

    LeaseKeepAlive: (call: StreamCall<never, object>) => keepAlive(server, headers, call),
  };
}

/**
 * One keep-alive stream, served as etcd serves it: keep-alives are answered one at a
 * time in the order they came, and a client that half-closes still gets the answer to
 * every keep-alive it sent (a follower's renewal may be waiting on the leader) before
 * the stream ends. The first renewal that fails ends the stream with its status.
 */
function keepAlive(server: EtcdServer, headers: Headers, call: StreamCall<never, object>): void {
  const gone = new AbortController();
  let queue = Promise.resolve();
  let failed = false;
  const fail = (err: { code?: unknown; message?: string }): void => {
    failed = true;
    const code = typeof err.code === 'number' ? err.code : Errors.noLeader.code;
    call.emit('error', { code, details: err.message ?? String(err) });
  };
  const renew = async (req: { ID: Int64 }): Promise<void> => {
    if (failed || gone.signal.aborted) return;
    if (server.isLearner) return fail(Errors.notSupportedForLearner);
    const id = toBigInt(req.ID);
    // The header is taken before the renewal, as etcd does.
    const header = headers.make();
    try {
      const ttl = await server.leaderCalls.leaseRenew(id, gone.signal);
      call.write({ header, ID: int64(id), TTL: ttl });
    } catch (err) {
      if (!gone.signal.aborted) fail(err as { code?: unknown; message?: string });
    }
  };
  call.on('data', (req: { ID: Int64 }) => {
    queue = queue.then(() => renew(req));
  });
  call.on('end', () => {
    queue = queue.then(() => {
      if (!failed) call.end();
    });
  });
  call.on('cancelled', () => gone.abort());
  call.on('error', () => undefined);
}
