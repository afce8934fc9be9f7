// etcd's adjustTicks: a fresh member need not wait a whole election timeout before its
// first campaign. A lone voter campaigns at once; in a cluster, unless
// --initial-election-tick-advance=false, once a peer's stream is up the member advances
// to two ticks short of its election timeout, so a cluster elects a leader soon after a
// quorum is connected. The log lines are etcd's.

import type { Logger } from 'pino';
import { formatDuration } from '../wal/logger.js';

/** How long a member in a cluster waits for a peer's stream before leaving its ticks alone (rafthttp's ConnReadTimeout). */
const PEER_WAIT_MS = 5000;
const POLL_MS = 50;

export interface TickAdjustment {
  readonly votersAtStart: number;
  /** the election timeout in ticks */
  readonly electionTicks: number;
  readonly tickMs: number;
  /** --initial-election-tick-advance: whether a member in a cluster advances at all */
  readonly advanceInCluster: boolean;
  readonly memberId: string;
  advanceTicks(n: number): void;
  /** whether any other member's stream is up */
  peerConnected(): boolean;
  stopped(): boolean;
  log: Logger;
}

export async function adjustTicks(t: TickAdjustment): Promise<void> {
  const { log, electionTicks } = t;
  const forward = (ticks: number) => ({
    'local-member-id': t.memberId,
    'forward-ticks': ticks,
    'forward-duration': formatDuration((ticks * t.tickMs) / 1000),
    'election-ticks': electionTicks,
    'election-timeout': formatDuration((electionTicks * t.tickMs) / 1000),
  });
  if (t.votersAtStart === 1) {
    log.info(forward(electionTicks - 1), 'started as single-node; fast-forwarding election ticks');
    t.advanceTicks(electionTicks - 1);
    return;
  }
  if (!t.advanceInCluster) {
    log.info({ 'election-ticks': electionTicks }, 'skipping initial election tick advance');
    return;
  }
  log.info({ 'election-ticks': electionTicks }, 'starting initial election tick advance');
  const deadline = Date.now() + PEER_WAIT_MS;
  while (!t.stopped() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (t.peerConnected()) {
      log.info(forward(electionTicks - 2), 'initialized peer connections; fast-forwarding election ticks');
      t.advanceTicks(electionTicks - 2);
      return;
    }
  }
}
