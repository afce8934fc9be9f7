// Elections: deciding to campaign, running (pre-)campaigns, counting votes, and
// answering other candidates' vote requests (§5.2, §5.4.1, thesis §9.6 pre-vote).

import { EntryType, type Message, MessageType, messageTypeName } from '../raftpb/index.js';
import { MAX_TERM } from './limits.js';
import { hex16 } from './logger.js';
import { campaignTransferContext, voteRespType } from './message.js';
import type { CampaignType, Raft } from './raft.js';
import { bcastAppendSoon } from './replicate.js';

/** A voter that has applied every snapshot it received may campaign; learners and removed members may not. */
export function promotable(r: Raft): boolean {
  return r.trk.isVoter(r.id) && r.log.unstable.snapshot === undefined;
}

export function hup(r: Raft, t: CampaignType): void {
  if (r.state === 'leader') {
    r.logger.debug(`${hex16(r.id)} ignoring MsgHup because already leader`);
    return;
  }
  if (!promotable(r)) {
    r.logger.warn(`${hex16(r.id)} is unpromotable and can not campaign`);
    return;
  }
  if (r.term >= MAX_TERM) {
    // Terms grow one election at a time past TERM_JUMP_LIMIT (limits.ts): 2^32
    // elections later, the next term would no longer be an exact number.
    r.logger.error(`${hex16(r.id)} cannot campaign at term ${r.term}: it is the largest term raft can represent`);
    return;
  }
  if (hasUnappliedConfChanges(r)) {
    r.logger.warn(
      `${hex16(r.id)} cannot campaign at term ${r.term} since there are still pending configuration changes to apply`,
    );
    // A leader handing over right after a conf change (e.g. removing itself) sends
    // MsgTimeoutNow together with the commit: campaign as soon as we have applied it.
    if (t === 'transfer') r.transferRequested = true;
    return;
  }
  r.transferRequested = false;
  r.logger.info(`${hex16(r.id)} is starting a new election at term ${r.term}`);
  campaign(r, t);
}

/** Committed conf changes not yet applied would change who may vote: wait for them. */
export function hasUnappliedConfChanges(r: Raft): boolean {
  if (r.confChangesToApply > 0) return true;
  let lo = r.log.applied + 1;
  const hi = r.log.committed + 1;
  if (lo >= hi) return false;
  lo = Math.max(lo, r.log.firstIndex());
  while (lo < hi) {
    const ents = r.log.slice(lo, hi, r.cfg.maxSizePerMsg);
    for (const e of ents) if (e.type !== EntryType.Normal) return true;
    lo += ents.length;
  }
  return false;
}

export function campaign(r: Raft, t: CampaignType): void {
  let voteMsg: MessageType;
  let term: number;
  if (t === 'pre-election') {
    r.becomePreCandidate();
    voteMsg = MessageType.MsgPreVote;
    // Ask about the term we would use, without moving to it.
    term = r.term + 1;
  } else {
    r.becomeCandidate();
    voteMsg = MessageType.MsgVote;
    term = r.term;
  }
  if (poll(r, r.id, voteRespType(voteMsg), true) === 'won') {
    // A lone voter wins at once (its learners hear of its term's entry at the next Ready).
    if (t === 'pre-election') campaign(r, 'election');
    else {
      r.becomeLeader();
      bcastAppendSoon(r);
    }
    return;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  for (const id of r.trk.config.voters) {
    if (id === r.id) continue;
    r.logger.info(
      `${hex16(r.id)} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${messageTypeName(voteMsg)} request to ${hex16(id)} at term ${r.term}`,
    );
    r.send({
      type: voteMsg,
      to: id,
      term,
      logTerm: lastTerm,
      index: lastIndex,
      context: t === 'transfer' ? campaignTransferContext : undefined,
    });
  }
}

export function poll(r: Raft, id: bigint, t: MessageType, granted: boolean): 'won' | 'lost' | 'pending' {
  if (id !== r.id) {
    r.logger.info(
      `${hex16(r.id)} received ${messageTypeName(t)} ${granted ? '' : 'rejection '}from ${hex16(id)} at term ${r.term}`,
    );
  }
  r.trk.recordVote(id, granted);
  const { granted: gr, rejected, result } = r.trk.tallyVotes();
  if (id !== r.id) {
    r.logger.info(`${hex16(r.id)} has received ${gr} ${messageTypeName(t)} votes and ${rejected} vote rejections`);
  }
  return result;
}

export function handleVoteRequest(r: Raft, m: Message): void {
  // We may vote if we already voted for this candidate, or have not voted and know
  // of no leader this term, or this is a pre-vote for a future term.
  const canVote =
    r.vote === m.from ||
    (r.vote === 0n && r.lead === 0n) ||
    (m.type === MessageType.MsgPreVote && m.term > r.term);
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  const tag = `${hex16(r.id)} [logterm: ${lastTerm}, index: ${lastIndex}, vote: ${hex16(r.vote)}]`;
  const cand = `${hex16(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${r.term}`;
  if (canVote && r.log.isUpToDate(m.index, m.logTerm)) {
    // Learners vote too: a learner may have been promoted without knowing it yet.
    r.logger.info(`${tag} cast ${messageTypeName(m.type)} for ${cand}`);
    // Answer with the request's term: for a pre-vote ours may be older, and the
    // pre-candidate ignores answers from older terms.
    r.send({ type: voteRespType(m.type), to: m.from, term: m.term });
    if (m.type === MessageType.MsgVote) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.logger.info(`${tag} rejected ${messageTypeName(m.type)} from ${cand}`);
    // Tell the candidate how far we know the log is committed (see learnCommit).
    const commit = r.log.committed;
    r.send({
      type: voteRespType(m.type),
      to: m.from,
      term: r.term,
      reject: true,
      commit,
      logTerm: r.log.term(commit) ?? 0,
    });
  }
}

/**
 * A voter that rejected our campaign told us it knows `commit` (of term `term`) is
 * committed. If our log holds that very entry, log matching makes our whole prefix
 * up to it the committed one, so we may commit it too. This is not in etcd: it
 * unsticks a member whose configuration is stale because it never heard that a
 * conf change committed — e.g. the survivor of a 2-voter cluster whose leader
 * removed itself and stopped — and who therefore asks a removed member for votes
 * that member must refuse. Once it commits and applies the change, it campaigns
 * under the right configuration.
 */
export function learnCommit(r: Raft, commit: number, term: number): void {
  if (commit > r.log.committed && term > 0 && r.log.matchTerm(commit, term)) {
    r.logger.info(`${hex16(r.id)} learned from a vote rejection that index ${commit} is committed`);
    r.log.commitTo(commit);
  }
}
