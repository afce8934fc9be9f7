// v3electionpb.Election: leader elections whose candidates are the callers' leases, run
// inside the member over its own KV, Lease and Watch paths (etcd's v3election server
// over concurrency.Election).

import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { buf, kvToPb } from '../convert.js';
import type { MemberClient } from '../concurrency/client.js';
import { campaign, leader, observe, proclaim, resign, type LeaderKey } from '../concurrency/election.js';
import { ConcurrencyErrors } from '../concurrency/errors.js';
import { Errors } from '../errors.js';
import { type Int64, int64, toBigInt, toNumber } from '../pb.js';
import type { EtcdServer } from '../server.js';
import { type Headers, checkLeader, checkNotLearner, requiresLeader, unary } from './common.js';
import { asServiceError, cancellation, serveInProcess } from './in-process.js';

interface PbLeaderKey {
  name: Buffer;
  key: Buffer;
  rev: Int64;
  lease: Int64;
}

function leaderKeyToPb(l: LeaderKey): object {
  return { name: l.name, key: l.key, rev: l.rev, lease: int64(l.lease) };
}

export function electionService(server: EtcdServer, headers: Headers, client: MemberClient): ServiceImplementation {
  /**
   * The leader key a Proclaim or Resign names, with the session lease it acts under:
   * a request naming no lease gets a fresh one, as etcd's session for it does.
   */
  async function leaderOf(l: PbLeaderKey | null | undefined): Promise<Omit<LeaderKey, 'name'>> {
    if (!l) throw ConcurrencyErrors.missingLeaderKey;
    return { key: buf(l.key), rev: toNumber(l.rev), lease: await client.sessionLease(toBigInt(l.lease)) };
  }

  return {
    /** Blocks until the caller's session leads; answers with the leader key that proves it. */
    Campaign: unary(async (req: { name: Buffer; lease: Int64; value: Buffer }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async (signal) => {
        const lease = await client.sessionLease(toBigInt(req.lease));
        const r = await campaign(client, buf(req.name), lease, buf(req.value), signal);
        return { header: headers.make(r.revision), leader: leaderKeyToPb(r.leader) };
      });
    }),

    Proclaim: unary(async (req: { leader: PbLeaderKey | null; value: Buffer }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async () => {
        const revision = await proclaim(client, await leaderOf(req.leader), buf(req.value));
        return { header: headers.make(revision) };
      });
    }),

    Leader: unary(async (req: { name: Buffer }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async () => {
        const l = await leader(client, buf(req.name));
        return { header: headers.make(l.revision), kv: kvToPb(l.kv) };
      });
    }),

    Resign: unary(async (req: { leader: PbLeaderKey | null }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return serveInProcess(call, async () => {
        const revision = await resign(client, await leaderOf(req.leader));
        return { header: headers.make(revision) };
      });
    }),

    Observe: (call: StreamCall<{ name: Buffer }, object>) => {
      streamLeaders(server, headers, client, call);
    },
  };
}

/**
 * Observe: the leader and each change to it, one response each, until the client goes
 * away. A slow client holds the observation back rather than buffering it. With
 * `hasleader` set, the stream fails once the member loses its raft leader, as etcd's
 * stream interceptor does.
 */
function streamLeaders(server: EtcdServer, headers: Headers, client: MemberClient, call: StreamCall<{ name: Buffer }, object>): void {
  const cancelled = cancellation(call);
  const failed = new AbortController();
  const signal = AbortSignal.any([cancelled.signal, failed.signal]);
  let unsubscribe: (() => void) | undefined;
  /** Ends the call with `err` (once) and stops observing. */
  const fail = (err: unknown): void => {
    if (signal.aborted) return;
    failed.abort(err);
    call.emit('error', err);
  };
  const done = (): void => {
    unsubscribe?.();
    cancelled.release();
  };
  if (server.isLearner) return fail(Errors.notSupportedForLearner);
  if (requiresLeader(call.metadata)) {
    if (server.leader === 0n) return fail(Errors.noLeader);
    unsubscribe = server.onLeaderChange(() => {
      if (server.leader === 0n) fail(Errors.noLeader);
    });
  }
  (async () => {
    for await (const l of observe(client, buf(call.request.name), signal)) {
      if (!call.write({ header: headers.make(l.revision), kv: kvToPb(l.kv) })) await drained(call, signal);
    }
  })().then(done, (err: unknown) => {
    fail(asServiceError(err));
    done();
  });
}

/** Resolves when the client has room again (or the observation stopped). */
function drained(call: StreamCall<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      call.off('drain', finish);
      signal.removeEventListener('abort', finish);
      resolve();
    };
    call.once('drain', finish);
    signal.addEventListener('abort', finish, { once: true });
  });
}
