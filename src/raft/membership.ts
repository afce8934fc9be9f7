// Membership: applying committed conf changes to the running node, restoring the
// configuration from a snapshot, and a removed or demoted leader's hand-over.

import type { ConfChange, Snapshot } from '../raftpb/index.js';
import { type MembershipConfig, changeConfig, describeConfChange, describeConfig, fromConfState } from './confchange.js';
import { hex16 } from './logger.js';
import type { Raft } from './raft.js';
import { bcastAppendSoon, maybeCommit, maybeSendAppend, releasePendingReadIndexMessages, sendAppend } from './replicate.js';

/**
 * Follower (a candidate becomes one before handling MsgSnap; a leader ignores it):
 * replace our log with the leader's snapshot if it is newer than what we have
 * committed. Returns false when it was ignored.
 */
export function restore(r: Raft, s: Snapshot): boolean {
  const { index, term } = s.metadata;
  if (index <= r.log.committed) return false;
  const restored = fromConfState(s.metadata.confState);
  if ('error' in restored) {
    r.logger.warn(`${hex16(r.id)} ignoring snapshot [index: ${index}, term: ${term}]: ${restored.error}`);
    return false;
  }
  const cfg = restored.config;
  if (!cfg.voters.has(r.id) && !cfg.learners.has(r.id)) {
    r.logger.warn(
      `${hex16(r.id)} attempted to restore snapshot but it is not in the ConfState ${describeConfig(cfg)}; should never happen`,
    );
    return false;
  }
  if (r.log.matchTerm(index, term)) {
    // We already have the snapshot's last entry: just learn that it is committed.
    r.logger.info(
      `${hex16(r.id)} [commit: ${r.log.committed}, lastindex: ${r.log.lastIndex()}, lastterm: ${r.log.lastTerm()}] fast-forwarded commit to snapshot [index: ${index}, term: ${term}]`,
    );
    r.log.commitTo(index);
    return false;
  }
  r.log.restore(s);
  r.trk.progress.clear();
  switchToConfig(r, cfg);
  r.logger.info(
    `${hex16(r.id)} [commit: ${r.log.committed}, lastindex: ${r.log.lastIndex()}, lastterm: ${r.log.lastTerm()}] restored snapshot [index: ${index}, term: ${term}]`,
  );
  return true;
}

/** Apply a committed conf change (the driver calls this when it applies the entry). */
export function applyConfChange(r: Raft, cc: ConfChange): MembershipConfig {
  if (r.confChangesToApply > 0) r.confChangesToApply--;
  // A change naming no member (node 0) changes nothing.
  if (cc.nodeId !== 0n) {
    const res = changeConfig(r.trk.config, cc);
    if ('error' in res) {
      // Proposals are checked against the same configuration, so this only happens
      // if the driver applies entries out of order; every member reaches the same verdict.
      r.logger.error(
        `${hex16(r.id)} ignoring conf change ${describeConfChange(cc)} at config ${describeConfig(r.trk.config)}: ${res.error}`,
      );
    } else {
      switchToConfig(r, res.config);
    }
  }
  r.onApplied();
  return r.trk.config;
}

export function switchToConfig(r: Raft, cfg: MembershipConfig): void {
  r.trk.applyConfig(cfg, r.log.lastIndex());
  r.logger.info(`${hex16(r.id)} switched to configuration ${describeConfig(cfg)}`);
  if (r.state !== 'leader') return;
  // The quorum may have shrunk: maybe something is committed now.
  if (maybeCommit(r)) {
    releasePendingReadIndexMessages(r);
    bcastAppendSoon(r);
  } else {
    for (const id of r.trk.progress.keys()) {
      if (id !== r.id) maybeSendAppend(r, id, false);
    }
  }
  if (r.leadTransferee !== 0n && !r.trk.isVoter(r.leadTransferee)) r.abortLeaderTransfer();
  if (!r.trk.isVoter(r.id) && r.leadTransferee === 0n) {
    r.logger.info(`${hex16(r.id)} is no longer a voter in ${describeConfig(cfg)}; stepping down`);
    handOverLeadership(r);
  }
}

/**
 * A leader that was removed or demoted steps down by handing leadership to the
 * most up-to-date voter (MsgTimeoutNow once it has our whole log), and keeps
 * replicating until then. Simply becoming a follower could leave the cluster
 * stuck: the remaining voters may not have learnt that the change committed, and
 * under the old configuration they may need this member's vote — which it would
 * refuse if its log is longer than theirs. It becomes a follower when the
 * transferee's campaign reaches it, or after an election timeout; meanwhile it
 * takes no proposals and serves no reads.
 */
export function handOverLeadership(r: Raft): void {
  let best: bigint | undefined;
  let bestMatch = -1;
  for (const id of r.trk.config.voters) {
    const m = r.trk.progress.get(id)?.match ?? 0;
    if (id !== r.id && (m > bestMatch || (m === bestMatch && best !== undefined && id < best))) {
      best = id;
      bestMatch = m;
    }
  }
  if (best === undefined) return;
  r.logger.info(`${hex16(r.id)} [term ${r.term}] starts to transfer leadership to ${hex16(best)}`);
  r.electionElapsed = 0;
  r.leadTransferee = best;
  if (bestMatch === r.log.lastIndex()) r.sendTimeoutNow(best);
  else sendAppend(r, best);
}
