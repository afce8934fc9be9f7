// The error a proposal gets when its deadline passes, as etcd 3.4's parseProposeCtxErr
// chooses it (src/server/timeout-cause.ts).

import { describe, expect, it } from 'vitest';
import { Errors } from '../../src/server/errors.js';
import { type TimeoutView, timeoutError } from '../../src/server/timeout-cause.js';

const SELF = 1n;
const PEERS = [2n, 3n];
const ELECTION_MS = 1000;

function view(over: Partial<TimeoutView> & { since?: Record<string, number> }): TimeoutView {
  const since = over.since ?? { '2': 0, '3': 0 };
  return {
    self: SELF,
    leader: () => SELF,
    leaderElectedAt: () => undefined,
    electionMs: ELECTION_MS,
    memberIds: () => [SELF, ...PEERS],
    activeSince: (id) => since[id.toString()],
    ...over,
  };
}

describe('timeoutError', () => {
  const start = 10_000;

  it('"due to previous leader failure" only when this member became leader within two election timeouts after the start', () => {
    expect(timeoutError(view({ leaderElectedAt: () => start + 500 }), start)).toBe(Errors.timeoutDueToLeaderFail);
    expect(timeoutError(view({ leaderElectedAt: () => start + 2 * ELECTION_MS - 1 }), start)).toBe(Errors.timeoutDueToLeaderFail);
    // elected long after the start, or before it: not the election the request waited for
    expect(timeoutError(view({ leaderElectedAt: () => start + 2 * ELECTION_MS }), start)).toBe(Errors.timeout);
    expect(timeoutError(view({ leaderElectedAt: () => start - 1 }), start)).toBe(Errors.timeout);
  });

  it('"request timed out" when no member leads (etcd leaves that case to a TODO)', () => {
    expect(timeoutError(view({ leader: () => 0n }), start)).toBe(Errors.timeout);
  });

  it('on the leader: "connection lost" unless a quorum was connected since the start', () => {
    expect(timeoutError(view({ since: { '2': start - 1 } }), start)).toBe(Errors.timeout);
    // one peer's stream came up after the request started, the other is down: the leader alone is no quorum
    expect(timeoutError(view({ since: { '2': start + 1 } }), start)).toBe(Errors.timeoutDueToConnectionLost);
    expect(timeoutError(view({ since: {} }), start)).toBe(Errors.timeoutDueToConnectionLost);
  });

  it('on a follower: "connection lost" unless its stream to the leader was up since the start', () => {
    expect(timeoutError(view({ leader: () => 2n, since: { '2': start - 1 } }), start)).toBe(Errors.timeout);
    expect(timeoutError(view({ leader: () => 2n, since: { '2': start } }), start)).toBe(Errors.timeoutDueToConnectionLost);
    expect(timeoutError(view({ leader: () => 2n, since: {} }), start)).toBe(Errors.timeoutDueToConnectionLost);
  });
});
