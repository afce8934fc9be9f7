// etcd's --strict-reconfig-check: a membership change is refused when it would leave
// the cluster one failure closer to losing quorum than the operator can see. A voter is
// "started" once it has published its name; "connected" when this member's stream to it
// has been up for at least HEALTH_INTERVAL_MS (etcd's HealthInterval).

import { Errors } from './errors.js';
import type { Member } from './membership.js';

export const HEALTH_INTERVAL_MS = 5000;

/** What the checks read: the voters and how long this member has been connected to each. */
export interface ReconfigView {
  readonly self: bigint;
  voters(): Member[];
  /** ms timestamp since which the stream to `id` is up; undefined while it is down */
  activeSince(id: bigint): number | undefined;
  now(): number;
}

const started = (m: Member): boolean => m.name !== '';
const quorum = (n: number): number => Math.floor(n / 2) + 1;

function connectedSince(view: ReconfigView, id: bigint, since: number): boolean {
  if (id === view.self) return true;
  const t = view.activeSince(id);
  return t !== undefined && t <= since;
}

function numConnected(view: ReconfigView, voters: readonly Member[]): number {
  const since = view.now() - HEALTH_INTERVAL_MS;
  return voters.filter((m) => connectedSince(view, m.id, since)).length;
}

/** etcd's mayAddMember for a voter: started voters stay a quorum, and every voter is connected. */
export function checkAddVoter(view: ReconfigView): void {
  const voters = view.voters();
  const nmembers = voters.length + 1;
  const nstarted = voters.filter(started).length;
  // Growing a one-member cluster to two is how a restored cluster is rebuilt: allowed.
  if (!(nstarted === 1 && nmembers === 2) && nstarted < quorum(nmembers)) throw Errors.memberNotEnoughStarted;
  if (numConnected(view, voters) !== voters.length) throw Errors.unhealthyCluster;
}

/** etcd's mayRemoveMember: the voters left keep a started quorum, and a connected one. */
export function checkRemove(view: ReconfigView, id: bigint): void {
  const voters = view.voters();
  if (!voters.some((m) => m.id === id)) return; // removing a learner never risks quorum
  const remaining = voters.filter((m) => m.id !== id);
  if (remaining.filter(started).length < quorum(remaining.length)) throw Errors.memberNotEnoughStarted;
  // a member that is down is not part of the active quorum: removing it is safe
  if (id !== view.self && view.activeSince(id) === undefined) return;
  if (numConnected(view, voters) - 1 < quorum(voters.length - 1)) throw Errors.unhealthyCluster;
}

/** etcd's mayPromoteMember (past the learner's readiness): the learner counts as a started voter. */
export function checkPromote(view: ReconfigView): void {
  const voters = view.voters();
  const nmembers = voters.length + 1;
  const nstarted = voters.filter(started).length + 1;
  if (nstarted < quorum(nmembers)) throw Errors.memberNotEnoughStarted;
}
