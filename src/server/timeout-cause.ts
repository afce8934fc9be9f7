// Which of etcd's timeout errors a proposal whose deadline passed gets, as etcd 3.4
// decides it (parseProposeCtxErr): "due to previous leader failure" only when this member
// became leader soon after the request started (within two election timeouts of it); "due
// to connection lost" when the leader (or, on the leader, a quorum) was not connected the
// whole time; otherwise "request timed out", also when no member leads now.

import { type EtcdError, Errors } from './errors.js';

/** What the decision reads; times are ms on Date.now()'s clock. */
export interface TimeoutView {
  readonly self: bigint;
  /** the current leader (0n: none) */
  leader(): bigint;
  /** when this member last became leader; undefined if it never has */
  leaderElectedAt(): number | undefined;
  readonly electionMs: number;
  /** every member (etcd counts learners too) */
  memberIds(): bigint[];
  /** since when this member's stream to `id` is up; undefined while it is down */
  activeSince(id: bigint): number | undefined;
}

/** The error of a proposal that started at `start` and ran out of time. */
export function timeoutError(view: TimeoutView, start: number): EtcdError {
  const elected = view.leaderElectedAt();
  if (elected !== undefined && start > elected - 2 * view.electionMs && start < elected) return Errors.timeoutDueToLeaderFail;
  const lead = view.leader();
  if (lead === 0n) return Errors.timeout;
  if (lead === view.self) {
    const ids = view.memberIds();
    const connected = ids.filter((id) => id === view.self || connectedSince(view, id, start)).length;
    return connected >= Math.floor(ids.length / 2) + 1 ? Errors.timeout : Errors.timeoutDueToConnectionLost;
  }
  return connectedSince(view, lead, start) ? Errors.timeout : Errors.timeoutDueToConnectionLost;
}

function connectedSince(view: TimeoutView, id: bigint, since: number): boolean {
  const t = view.activeSince(id);
  return t !== undefined && t < since;
}
