// etcdserverpb.Lease: grants and revocations go through raft; keepalives and
// time-to-live are answered by the leader's lessor.

import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { Errors } from '../errors.js';
import { MAX_LEASE_TTL } from '../lessor.js';
import { type Int64, int64, toBigInt, toNumber } from '../pb.js';
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

export function leaseService(server: EtcdServer, headers: Headers, gate: AuthGate): ServiceImplementation {
  return {
    LeaseGrant: unary(async (req: { TTL: Int64; ID: Int64 }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const ttl = toNumber(req.TTL);
      if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge;
      checkQuota(server, 0);
      let id = toBigInt(req.ID);
      if (id === 0n) id = randomLeaseId();
      const r = await server.propose<{ id: bigint; ttl: number }>({ lease_grant: { TTL: ttl, ID: int64(id) } });
      return { header: headers.make(), ID: int64(r.id), TTL: r.ttl, error: '' };
    }),

    LeaseRevoke: unary(async (req: { ID: Int64 }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      // who may revoke is decided when it applies: write permission on every key of the lease
      const r = await server.proposeAs<{ revision: number }>(await gate.caller(call), { lease_revoke: { ID: req.ID } });
      return { header: headers.make(r.revision) };
    }),

    LeaseTimeToLive: unary(async (req: { ID: Int64; keys: boolean }) => {
      checkNotLearner(server);
      const id = toBigInt(req.ID);
      const r = await server.leaseTimeToLive(id, req.keys === true);
      return { header: headers.make(), ID: int64(id), TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
    }),

    LeaseLeases: unary(async () => {
      checkNotLearner(server);
      return { header: headers.make(), leases: server.lessor.ids().map((id) => ({ ID: int64(id) })) };
    }),

    LeaseKeepAlive: (call: StreamCall<never, object>) => {
      call.on('data', (req: { ID: Int64 }) => {
        if (server.isLearner) {
          call.emit('error', { code: Errors.notSupportedForLearner.code, details: Errors.notSupportedForLearner.message });
          return;
        }
        const id = toBigInt(req.ID);
        // The header is taken before the renewal, as etcd does.
        const header = headers.make();
        server.leaseRenew(id).then(
          (ttl) => call.write({ header, ID: int64(id), TTL: ttl }),
          (err: { code?: number; message?: string }) => {
            call.emit('error', { code: err.code ?? Errors.noLeader.code, details: err.message ?? String(err) });
          },
        );
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  };
}
