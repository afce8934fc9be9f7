// How a follower handles messages: accepting the leader's log, heartbeats and
// snapshots, and forwarding requests to the leader.

import { type Message, MessageType } from '../raftpb/index.js';
import { ProposalDroppedError } from './errors.js';
import { hup } from './election.js';
import { restore } from './membership.js';
import { hex16 } from './logger.js';
import type { Raft } from './raft.js';

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.MsgProp:
      if (r.lead === 0n) {
        r.logger.info(`${hex16(r.id)} no leader at term ${r.term}; dropping proposal`);
        throw new ProposalDroppedError(`no leader at term ${r.term}`);
      }
      if (r.cfg.disableProposalForwarding) {
        r.logger.info(`${hex16(r.id)} not forwarding to leader ${hex16(r.lead)} at term ${r.term}; dropping proposal`);
        throw new ProposalDroppedError(`not forwarding to leader ${hex16(r.lead)} (proposal forwarding disabled)`);
      }
      r.forward(m, r.lead);
      return;
    case MessageType.MsgApp:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      return;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case MessageType.MsgSnap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case MessageType.MsgTransferLeader:
      // m.from names the transferee.
      if (r.lead === 0n) {
        r.logger.info(`${hex16(r.id)} no leader at term ${r.term}; dropping leader transfer msg`);
        return;
      }
      if (m.from === r.lead) return; // already leads
      r.forward(m, r.lead);
      return;
    case MessageType.MsgTimeoutNow:
      r.logger.info(
        `${hex16(r.id)} [term ${r.term}] received MsgTimeoutNow from ${hex16(m.from)} and starts an election to get leadership.`,
      );
      // No pre-vote: the leader asked for this, we are not recovering from a partition.
      hup(r, 'transfer');
      return;
    case MessageType.MsgReadIndex:
      if (r.lead === 0n) {
        r.logger.info(`${hex16(r.id)} no leader at term ${r.term}; dropping index reading msg`);
        return;
      }
      r.forward(m, r.lead);
      return;
    case MessageType.MsgReadIndexResp:
      r.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
      return;
    default:
      return;
  }
}

export function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    // Everything up to our commit index already matches the leader's log.
    r.send({ type: MessageType.MsgAppResp, to: m.from, index: r.log.committed });
    return;
  }
  const committedBefore = r.log.committed;
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    // quietCommitAcks: an append without entries that tells us of a commit, up to where
    // we have acknowledged already, goes unanswered. The answer would tell the leader
    // nothing it does not know, and at one client such appends come with every write: a
    // message from each follower that wakes the leader for nothing. Should our earlier
    // acknowledgement have been lost, the leader's next heartbeat answer brings another
    // append (raft's way to recover lost messages); that one no longer moves our commit
    // index, and it is answered.
    if (r.cfg.quietCommitAcks && m.entries.length === 0 && lastNew <= r.ackedIndex && r.log.committed > committedBefore) return;
    r.send({ type: MessageType.MsgAppResp, to: m.from, index: lastNew });
    if (lastNew > r.ackedIndex) r.ackedIndex = lastNew;
    return;
  }
  r.logger.debug(
    `${hex16(r.id)} [logterm: ${r.log.term(m.index) ?? 0}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${hex16(m.from)}`,
  );
  // Hint the largest (index, term) at which our log may still match the leader's:
  // the last entry at or below m.index whose term is ≤ m.logTerm. This skips a whole
  // divergent tail of higher terms in one round trip.
  const [hintIndex, hintTerm] = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send({
    type: MessageType.MsgAppResp,
    to: m.from,
    index: m.index,
    reject: true,
    rejectHint: hintIndex,
    logTerm: hintTerm,
  });
}

export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  r.send({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context });
}

export function handleSnapshot(r: Raft, m: Message): void {
  const s = m.snapshot!;
  const { index, term } = s.metadata;
  if (restore(r, s)) {
    r.logger.info(`${hex16(r.id)} [commit: ${r.log.committed}] restored snapshot [index: ${index}, term: ${term}]`);
    r.send({ type: MessageType.MsgAppResp, to: m.from, index: r.log.lastIndex() });
  } else {
    r.logger.info(`${hex16(r.id)} [commit: ${r.log.committed}] ignored snapshot [index: ${index}, term: ${term}]`);
    r.send({ type: MessageType.MsgAppResp, to: m.from, index: r.log.committed });
  }
}
