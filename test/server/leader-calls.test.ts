import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Errors } from '../../src/server/errors.js';
import { LeaderCalls } from '../../src/server/leader-calls.js';
import { ForwardFailed, type LeaderRpc } from '../../src/server/transport/index.js';
import { unary } from '../../src/server/api/common.js';

/** A LeaderRpc whose renewals fail or answer as `renew` says (fault injection behind the real interface). */
function rpc(renew: (id: bigint) => Promise<number>): LeaderRpc {
  return {
    leaseRenew: renew,
    leaseTimeToLive: () => Promise.reject(new Error('not used')),
    memberPromote: () => Promise.reject(new Error('not used')),
  };
}

function calls(opts: { leader: () => bigint; remote: (leader: bigint) => LeaderRpc; timeoutMs?: number }) {
  const listeners = new Set<() => void>();
  const logged: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const lc = new LeaderCalls({
    leader: opts.leader,
    isLeader: () => false,
    local: rpc(() => Promise.reject(Errors.leaderChanged)),
    remote: (leader) => opts.remote(leader),
    onLeaderChange: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stopping: new AbortController().signal,
    timeoutMs: () => opts.timeoutMs ?? 5000,
    retryMs: () => 10,
    log,
  });
  return { lc, logged, changed: () => [...listeners].forEach((fn) => fn()) };
}

describe('LeaderCalls', () => {
  it('retries a forward that got no answer against the new leader, logging each failure with the peer', async () => {
    let leader = 1n;
    const { lc, logged, changed } = calls({
      leader: () => leader,
      remote: (l) =>
        rpc(async () => {
          if (l === 1n) {
            // the old leader is gone; an election follows
            setTimeout(() => {
              leader = 0n;
              changed();
              setTimeout(() => {
                leader = 2n;
                changed();
              }, 30);
            }, 5);
            throw new ForwardFailed(1n, 'connect ECONNREFUSED 127.0.0.1:1');
          }
          return 42;
        }),
    });
    await expect(lc.call('lease-renew', (r) => r.leaseRenew(7n))).resolves.toBe(42);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged[0]).toMatchObject({ 'remote-peer-id': '0000000000000001', op: 'lease-renew', error: 'connect ECONNREFUSED 127.0.0.1:1' });
  });

  it('fails at its deadline with etcd errors, never the socket error', async () => {
    const noLeader = calls({ leader: () => 0n, remote: () => rpc(async () => 1), timeoutMs: 50 });
    await expect(noLeader.lc.call('lease-renew', (r) => r.leaseRenew(7n))).rejects.toBe(Errors.noLeader);
    const deadLeader = calls({
      leader: () => 3n,
      remote: () => rpc(() => Promise.reject(new ForwardFailed(3n, 'socket hang up'))),
      timeoutMs: 50,
    });
    await expect(deadLeader.lc.call('lease-renew', (r) => r.leaseRenew(7n))).rejects.toBe(Errors.timeout);
  });

  it("passes the leader's own refusals through at once", async () => {
    const { lc } = calls({ leader: () => 1n, remote: () => rpc(() => Promise.reject(Errors.learnerNotReady)) });
    await expect(lc.call('member-promote', (r) => r.leaseRenew(1n))).rejects.toBe(Errors.learnerNotReady);
  });
});

describe('client-visible status of an internal failure', () => {
  it('is Unavailable with its text, not Unknown', async () => {
    const handler = unary(async () => {
      throw new Error('IO error: /data/member/snap/db/000005.log: No space left on device');
    });
    const status = await new Promise((resolve) => handler({ request: {}, metadata: { get: () => [] }, getPeer: () => 'test' }, (err) => resolve(err)));
    expect(status).toEqual({ code: 14, details: 'IO error: /data/member/snap/db/000005.log: No space left on device' });
  });
});
