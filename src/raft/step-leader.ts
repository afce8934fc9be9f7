// How a leader handles messages: proposals, reads, and its followers' answers.

import { type ConfChange, type Entry, EntryType, type Message, MessageType, decodeConfChange } from '../raftpb/index.js';
import { changeConfig, describeConfChange, describeConfig } from './confchange.js';
import { ProposalDroppedError, StepError } from './errors.js';
import { hex16 } from './logger.js';
import type { Raft } from './raft.js';
import {
  bcastAppendSoon,
  maybeCommit,
  maybeSendAppend,
  releasePendingReadIndexMessages,
  sendAppend,
  sendMsgReadIndexResponse,
} from './replicate.js';
import type { Progress } from './tracker/progress.js';

export function stepLeader(r: Raft, m: Message): void {
  // These need no Progress for the sender.
  switch (m.type) {
    case MessageType.MsgProp:
      propose(r, m);
      return;
    case MessageType.MsgReadIndex:
      readIndex(r, m);
      return;
  }
  const pr = r.trk.progress.get(m.from);
  if (pr === undefined) {
    r.logger.debug(`${hex16(r.id)} no progress available for ${hex16(m.from)}`);
    return;
  }
  switch (m.type) {
    case MessageType.MsgAppResp:
      handleAppendResponse(r, m, pr);
      return;
    case MessageType.MsgHeartbeatResp:
      handleHeartbeatResponse(r, m, pr);
      return;
    case MessageType.MsgSnapStatus:
      if (pr.state !== 'snapshot') return;
      if (m.reject) {
        // Forget the snapshot first, or probing would resume after it.
        pr.pendingSnapshot = 0;
        pr.becomeProbe();
        r.logger.debug(`${hex16(r.id)} snapshot failed, resumed sending replication messages to ${hex16(m.from)}`);
      } else {
        pr.becomeProbe();
        r.logger.debug(`${hex16(r.id)} snapshot succeeded, resumed sending replication messages to ${hex16(m.from)}`);
      }
      // Wait for the follower's MsgAppResp (or the next heartbeat) before sending more.
      pr.msgAppFlowPaused = true;
      return;
    case MessageType.MsgUnreachable:
      // An optimistic MsgApp was probably lost: find out where the follower really is.
      if (pr.state === 'replicate') pr.becomeProbe();
      r.logger.debug(`${hex16(r.id)} failed to send message to ${hex16(m.from)} because it is unreachable`);
      return;
    case MessageType.MsgTransferLeader:
      transferLeader(r, m.from, pr);
      return;
  }
}

/** A proposal reaching the leader, from a client of ours or forwarded by a follower. */
export function propose(r: Raft, m: Message): void {
  if (!r.trk.isVoter(r.id)) {
    throw new ProposalDroppedError(`${hex16(r.id)} is no longer a voter and is handing over leadership`);
  }
  if (r.leadTransferee !== 0n) {
    // held for whoever leads next (held-proposals.ts), unless too many already wait
    if (r.held.hold(m)) {
      r.logger.debug(
        `${hex16(r.id)} [term ${r.term}] transfer leadership to ${hex16(r.leadTransferee)} is in progress; holding proposal for the next leader`,
      );
      return;
    }
    r.logger.debug(
      `${hex16(r.id)} [term ${r.term}] transfer leadership to ${hex16(r.leadTransferee)} is in progress; dropping proposal`,
    );
    throw new ProposalDroppedError(`leadership transfer to ${hex16(r.leadTransferee)} is in progress and ${r.held.size} proposals wait for it`);
  }
  let confIndex = 0;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.type === EntryType.ConfChangeV2) {
      throw new ProposalDroppedError('ConfChangeV2 (joint consensus) is not supported; propose one ConfChange at a time');
    }
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeProposedConfChange(e);
    if (cc === undefined) throw new StepError('malformed', 'raft: proposal carries an undecodable ConfChange');
    let failed: string | undefined;
    if (confIndex !== 0) {
      failed = 'more than one conf change in a single proposal';
    } else if (r.pendingConfIndex > r.log.applied) {
      failed = `possible unapplied conf change at index ${r.pendingConfIndex} (applied to ${r.log.applied})`;
    } else if (r.confChangesToApply > 0) {
      failed = 'a committed conf change has not been passed to applyConfChange yet';
    } else if (cc.nodeId !== 0n) {
      const res = changeConfig(r.trk.config, cc);
      if ('error' in res) failed = res.error;
    }
    if (failed !== undefined) {
      r.logger.info(
        `${hex16(r.id)} ignoring conf change ${describeConfChange(cc)} at config ${describeConfig(r.trk.config)}: ${failed}`,
      );
      throw new ProposalDroppedError(failed);
    }
    confIndex = r.log.lastIndex() + i + 1;
  }
  if (!r.appendEntry(m.entries)) {
    throw new ProposalDroppedError('too many uncommitted entries (MaxUncommittedEntriesSize)');
  }
  if (confIndex !== 0) r.pendingConfIndex = confIndex;
  bcastAppendSoon(r);
}

function readIndex(r: Raft, m: Message): void {
  if (!r.trk.isVoter(r.id)) {
    // Removed or demoted, handing over: the new voters may already elect someone else.
    r.logger.debug(`${hex16(r.id)} is not a voter; dropping index reading msg`);
    return;
  }
  if (!r.committedEntryInCurrentTerm()) {
    // Until our term's first entry commits we may not know the latest commit index
    // (§6.4) — not even as the only voter: a commit index is persisted lazily, so
    // after a restart ours may be older than what learners were told.
    r.pendingReadIndexMessages.push(m);
    return;
  }
  sendMsgReadIndexResponse(r, m);
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    r.logger.debug(
      `${hex16(r.id)} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${hex16(m.from)} for index ${m.index}`,
    );
    // The hint is (index, term) of the follower's last entry that may match. Skip
    // every index of ours whose term is above the hint's term: it cannot match.
    let nextProbeIdx = m.rejectHint;
    if (m.logTerm > 0) nextProbeIdx = r.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
    if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
      r.logger.debug(`${hex16(r.id)} decreased progress of ${hex16(m.from)} to [next ${pr.next}]`);
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  // A probing follower that confirms what we already know still moves to replicate.
  if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe'))) return;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) {
    // Caught up through the log (whichever snapshot it applied): resume replication.
    r.logger.debug(`${hex16(r.id)} recovered from needing snapshot, resumed sending replication messages to ${hex16(m.from)}`);
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(m.index);
  }
  if (maybeCommit(r)) {
    releasePendingReadIndexMessages(r);
    bcastAppendSoon(r);
  } else if (!r.bcastPending && pr.canBumpCommit(r.log.committed)) {
    // (a broadcast already due carries the new commit index to this follower too)
    sendAppend(r, m.from);
  }
  // Flow control may have opened: send as much as allowed, without empty messages.
  while (maybeSendAppend(r, m.from, false)) {
    // keep sending
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.logger.info(`${hex16(r.id)} sent MsgTimeoutNow to ${hex16(m.from)} after received MsgAppResp`);
    r.sendTimeoutNow(m.from);
  }
}

function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.msgAppFlowPaused = false;
  // Even a paused or fully caught-up probing follower gets an append: its answer is
  // how replication recovers when in-flight messages were lost.
  if (pr.match < r.log.lastIndex() || pr.state === 'probe') sendAppend(r, m.from);

  const ctx = m.context;
  if (ctx === undefined || ctx.length === 0 || r.readOnly.pendingCount === 0) return;
  if (!r.readOnly.recvAck(m.from, ctx)) return;
  if (r.readOnly.result(ctx, r.trk.config.voters) !== 'won') return;
  for (const rs of r.readOnly.advance(ctx)) r.responseToReadIndexReq(rs.req, rs.index);
}

function transferLeader(r: Raft, transferee: bigint, pr: Progress): void {
  if (pr.isLearner) {
    r.logger.debug(`${hex16(r.id)} is learner. Ignored transferring leadership`);
    return;
  }
  const last = r.leadTransferee;
  if (last !== 0n) {
    if (last === transferee) {
      r.logger.info(
        `${hex16(r.id)} [term ${r.term}] transfer leadership to ${hex16(transferee)} is in progress, ignores request to same node ${hex16(transferee)}`,
      );
      return;
    }
    r.abortLeaderTransfer();
    r.logger.info(`${hex16(r.id)} [term ${r.term}] abort previous transferring leadership to ${hex16(last)}`);
  }
  if (transferee === r.id) {
    r.logger.debug(`${hex16(r.id)} is already leader. Ignored transferring leadership to self`);
    return;
  }
  r.logger.info(`${hex16(r.id)} [term ${r.term}] starts to transfer leadership to ${hex16(transferee)}`);
  // The transfer must finish within an election timeout, or tickHeartbeat aborts it.
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.log.lastIndex()) {
    r.sendTimeoutNow(transferee);
    r.logger.info(
      `${hex16(r.id)} sends MsgTimeoutNow to ${hex16(transferee)} immediately as ${hex16(transferee)} already has up-to-date log`,
    );
  } else {
    sendAppend(r, transferee);
  }
}

function decodeProposedConfChange(e: Entry): ConfChange | undefined {
  try {
    return decodeConfChange(e.data);
  } catch {
    return undefined;
  }
}
