// How a (pre-)candidate handles messages: counting votes, and yielding to a leader.

import { type Message, MessageType } from '../raftpb/index.js';
import { ProposalDroppedError } from './errors.js';
import { campaign, poll } from './election.js';
import { hex16 } from './logger.js';
import type { Raft } from './raft.js';
import { bcastAppendSoon } from './replicate.js';
import { handleAppendEntries, handleHeartbeat, handleSnapshot } from './step-follower.js';

export function stepCandidate(r: Raft, m: Message): void {
  // Only answers to our own kind of campaign count: a candidate may still receive
  // stale pre-vote answers from its pre-candidate phase.
  const myVoteRespType = r.state === 'pre-candidate' ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
  switch (m.type) {
    case MessageType.MsgProp:
      r.logger.info(`${hex16(r.id)} no leader at term ${r.term}; dropping proposal`);
      throw new ProposalDroppedError(`no leader at term ${r.term}`);
    case MessageType.MsgApp:
      // A leader exists at our term (m.term === r.term): follow it.
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      return;
    case MessageType.MsgHeartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case MessageType.MsgSnap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    case myVoteRespType: {
      const res = poll(r, m.from, m.type, !m.reject);
      if (res === 'won') {
        if (r.state === 'pre-candidate') {
          campaign(r, 'election');
        } else {
          r.becomeLeader();
          bcastAppendSoon(r);
        }
      } else if (res === 'lost') {
        // A pre-vote answer carries the future term we asked about: stay at ours.
        r.becomeFollower(r.term, 0n);
      }
      return;
    }
    case MessageType.MsgTimeoutNow:
      r.logger.debug(`${hex16(r.id)} [term ${r.term} state ${r.state}] ignored MsgTimeoutNow from ${hex16(m.from)}`);
      return;
    default:
      // MsgReadIndex and MsgTransferLeader have nowhere to go without a leader.
      return;
  }
}
