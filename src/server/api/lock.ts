// v3lockpb.Lock: distributed locks held by the caller's lease, run inside the member
// over its own KV, Lease and Watch paths (etcd's v3lock server over concurrency.Mutex).

import type { ServiceImplementation } from '../grpc/call.js';
import { buf } from '../convert.js';
import type { MemberClient } from '../concurrency/client.js';
import { lock } from '../concurrency/mutex.js';
import { type Int64, toBigInt } from '../pb.js';
import type { EtcdServer } from '../server.js';
import { type Headers, checkLeader, checkNotLearner, unary } from './common.js';
import { serveInProcess } from './in-process.js';

export function lockService(server: EtcdServer, headers: Headers, client: MemberClient): ServiceImplementation {
  return {
    /** Blocks until the caller's session holds the lock; answers with the key that proves it. */
    Lock: unary(async (req: { name: Buffer; lease: Int64 }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async (signal) => {
        const lease = await client.sessionLease(toBigInt(req.lease));
        const r = await lock(client, buf(req.name), lease, signal);
        return { header: headers.make(r.revision), key: r.key };
      });
    }),

    /** Deletes the lock key (whoever holds it: the key is the proof of ownership). */
    Unlock: unary(async (req: { key: Buffer }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async () => {
        const r = await client.delete(buf(req.key));
        return { header: headers.make(r.revision) };
      });
    }),
  };
}
