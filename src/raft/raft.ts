// Raft: one member's consensus state machine. It owns the term, vote, role, log and
// the leader's replication state; it turns inputs (ticks, messages) into outputs
// (messages in `msgs`, read states, log changes) without any I/O. This file holds
// the state, role transitions, time and the message entry point; elections live in
// election.ts, role-specific handling in step-leader.ts, step-candidate.ts and
// step-follower.ts, the leader's sending machinery in replicate.ts, and membership
// changes in membership.ts.

import {
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  isEmptyHardState,
  messageTypeName,
} from '../raftpb/index.js';
import type { ResolvedConfig } from './config.js';
import { describeConfig, fromConfState } from './confchange.js';
import { handleVoteRequest, hasUnappliedConfChanges, hup, learnCommit, promotable } from './election.js';
import { RaftLog } from './log.js';
import { ProposalDroppedError } from './errors.js';
import { type RaftLogger, hex16 } from './logger.js';
import { type MessageInit, isCampaignTransfer, makeMessage, readdressed } from './message.js';
import { HeldProposals } from './held-proposals.js';
import { ReadOnly } from './read-only.js';
import { bcastHeartbeat, maybeCommit, releasePendingReadIndexMessages } from './replicate.js';
import { stepCandidate } from './step-candidate.js';
import { stepFollower } from './step-follower.js';
import { propose, stepLeader } from './step-leader.js';
import { ProgressTracker } from './tracker/tracker.js';
import type { ReadState, SoftState, StateType } from './types.js';

export type CampaignType = 'pre-election' | 'election' | 'transfer';

export class Raft {
  readonly id: bigint;
  readonly cfg: ResolvedConfig;
  readonly logger: RaftLogger;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;

  term = 0;
  /** whom we voted for in `term`, 0n for nobody */
  vote = 0n;
  state: StateType = 'follower';
  /** the leader of `term` as far as we know, 0n when unknown */
  lead = 0n;
  /** leader only: the member we are handing leadership to, 0n when none */
  leadTransferee = 0n;
  /**
   * leader only: index of the latest conf change appended to the log. A new one is
   * refused until that index is applied (the one-pending-change rule).
   */
  pendingConfIndex = 0;
  /** leader only: payload bytes appended but not yet applied, for maxUncommittedEntriesSize */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /** leader only: read requests waiting for the first commit of this term */
  pendingReadIndexMessages: Message[] = [];
  /** proposals that reached us while we handed leadership over, kept for the next leader (any role: they outlive the transfer) */
  readonly held = new HeldProposals();
  /** follower only: the leader asked us to take over (MsgTimeoutNow) before we had applied its config */
  transferRequested = false;
  /** follower only: the highest index this member has acknowledged to the leader of `term` (see handleAppendEntries) */
  ackedIndex = 0;
  /**
   * ConfChange entries handed out in Readies and not yet given back through
   * applyConfChange. A driver may advance() before it applies (etcd's server applies
   * asynchronously); until it does, our configuration lags the log and we must
   * neither campaign nor accept another change.
   */
  confChangesToApply = 0;

  /** ticks since the last election timeout (leader/candidate) or since hearing from the leader (follower) */
  electionElapsed = 0;
  /** leader only: ticks since the last heartbeat round */
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  /** leader only: appends to broadcast when the next Ready is built (see bcastAppendSoon) */
  bcastPending = false;
  /** outgoing messages, drained by each Ready */
  msgs: Message[] = [];
  /** confirmed reads, drained by each Ready */
  readStates: ReadState[] = [];

  constructor(cfg: ResolvedConfig, logger: RaftLogger) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.logger = logger;
    this.log = new RaftLog(cfg.storage, cfg.maxSizePerMsg);
    this.trk = new ProgressTracker(cfg.maxInflightMsgs);
    this.readOnly = new ReadOnly(cfg.readOnlyOption);

    const { hardState, confState } = cfg.storage.initialState();
    const restored = fromConfState(confState);
    if ('error' in restored) throw new Error(`raft: cannot restore configuration from storage: ${restored.error}`);
    this.trk.applyConfig(restored.config, this.log.lastIndex());
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (cfg.applied > 0) {
      if (cfg.applied > this.log.committed) {
        throw new Error(`raft: applied(${cfg.applied}) is beyond the persisted commit index ${this.log.committed}`);
      }
      this.log.appliedTo(cfg.applied);
    }
    this.becomeFollower(this.term, 0n);
    logger.info(
      `newRaft ${hex16(this.id)} [peers: [${describeConfig(this.trk.config)}], term: ${this.term}, commit: ${this.log.committed}, applied: ${this.log.applied}, lastindex: ${this.log.lastIndex()}, lastterm: ${this.log.lastTerm()}]`,
    );
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new Error(
        `raft: ${hex16(this.id)} state.commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  // ---- output ----

  /** Queue a message; fills `from` and, except for vote traffic and forwarded requests, our term. */
  send(p: MessageInit): void {
    // p is left as it came: a field added to it here would give it another shape
    const termless = p.type === MessageType.MsgProp || p.type === MessageType.MsgReadIndex;
    this.msgs.push(makeMessage(p, this.id, termless ? 0 : this.term));
  }

  /**
   * Re-address a request to the leader. Proposals and reads stay termless (they are
   * local requests of whoever serves them); a transfer request takes our term.
   */
  forward(m: Message, to: bigint): void {
    const termless = m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex;
    this.msgs.push(readdressed(m, to, m.from === 0n ? this.id : m.from, termless ? 0 : this.term));
  }

  // ---- role transitions ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = 0n;
    }
    this.lead = 0n;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    this.trk.resetProgress(this.log.lastIndex());
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.cfg.readOnlyOption);
    this.pendingReadIndexMessages = [];
    this.transferRequested = false;
    this.ackedIndex = 0;
    this.bcastPending = false;
  }

  becomeFollower(term: number, lead: bigint): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
    this.logger.info(`${hex16(this.id)} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === 'leader') throw new Error('raft: invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
    this.logger.info(`${hex16(this.id)} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === 'leader') throw new Error('raft: invalid transition [leader -> pre-candidate]');
    // A pre-candidate keeps its term and vote: it only asks whether it could win.
    this.trk.resetVotes();
    this.lead = 0n;
    this.state = 'pre-candidate';
    this.logger.info(`${hex16(this.id)} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === 'follower') throw new Error('raft: invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) {
      // The leader counts its whole log, persisted or not (see appendEntry).
      self.match = this.log.lastIndex();
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conf changes in the uncommitted tail may still be pending: be conservative.
    this.pendingConfIndex = this.log.lastIndex();
    // An empty entry of our term lets us commit everything before it (§5.4.2).
    if (!this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }])) {
      throw new Error('raft: empty entry was dropped');
    }
    this.logger.info(`${hex16(this.id)} became leader at term ${this.term}`);
  }

  // ---- time ----

  tick(): void {
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
    if (this.held.size > 0) {
      this.held.tick(this);
      this.releaseHeld();
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (promotable(this) && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      hup(this, this.cfg.preVote ? 'pre-election' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.checkQuorum();
      if (this.state === 'leader' && this.leadTransferee !== 0n) {
        // The transferee did not take over within an election timeout.
        this.logger.info(`${hex16(this.id)} [term ${this.term}] abort transferring leadership to ${hex16(this.leadTransferee)}`);
        this.abortLeaderTransfer();
        // A voter keeps leading. A removed or demoted leader had its chance to hand
        // over: it steps down and lets the voters elect someone.
        if (!this.trk.isVoter(this.id)) this.becomeFollower(this.term, 0n);
      }
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      bcastHeartbeat(this);
    }
  }

  /** Check-quorum: step down unless a majority was heard from since the last check. */
  private checkQuorum(): void {
    if (!this.trk.quorumActive(this.id)) {
      this.logger.warn(`${hex16(this.id)} stepped down to follower since quorum is not active`);
      this.becomeFollower(this.term, 0n);
      return;
    }
    for (const [id, pr] of this.trk.progress) {
      if (id !== this.id) pr.recentActive = false;
    }
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.cfg.random();
    const frac = r >= 0 && r < 1 ? r : 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(frac * this.cfg.electionTick);
  }

  // ---- the message entry point ----

  /** Step a message already checked by validate.ts (network) or built locally (term 0). */
  step(m: Message): void {
    try {
      this.stepByRole(m);
    } finally {
      // a message may have ended a transfer or told us the new leader
      if (this.held.size > 0) this.releaseHeld();
    }
  }

  private stepByRole(m: Message): void {
    if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const inLease = this.cfg.checkQuorum && this.lead !== 0n && this.electionElapsed < this.cfg.electionTick;
        if (inLease && !isCampaignTransfer(m.context)) {
          // §6 of the thesis: a member that recently heard from a leader neither bumps
          // its term nor votes, so a partitioned member cannot depose a healthy leader.
          this.logger.info(
            `${hex16(this.id)} [logterm: ${this.log.lastTerm()}, index: ${this.log.lastIndex()}, vote: ${hex16(this.vote)}] ignored ${messageTypeName(m.type)} from ${hex16(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.cfg.electionTick - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we asked about; we move to it only if we win.
      } else {
        this.logger.info(
          `${hex16(this.id)} [term: ${this.term}] received a ${messageTypeName(m.type)} message with higher term from ${hex16(m.from)} [term: ${m.term}]`,
        );
        const fromLeader =
          m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap;
        this.becomeFollower(m.term, fromLeader ? m.from : 0n);
      }
    } else if (m.term !== 0 && m.term < this.term) {
      this.stepStale(m);
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        hup(this, this.cfg.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote:
        handleVoteRequest(this, m);
        return;
      case MessageType.MsgVoteResp:
      case MessageType.MsgPreVoteResp:
        if (m.reject) learnCommit(this, m.commit, m.logTerm);
        if (this.state === 'candidate' || this.state === 'pre-candidate') stepCandidate(this, m);
        return;
      default:
        if (this.state === 'leader') stepLeader(this, m);
        else if (this.state === 'follower') stepFollower(this, m);
        else stepCandidate(this, m);
    }
  }

  /** Hands held proposals to the leader, if one other than a transferring one is known now. */
  private releaseHeld(): void {
    this.held.release(this, (m) => {
      try {
        propose(this, m);
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
        this.logger.info(`${hex16(this.id)} [term ${this.term}] dropped a held proposal: ${err.message}`);
      }
    });
  }

  /** A message from an older term. */
  private stepStale(m: Message): void {
    if (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp) {
      // A leader of an older term is still around (perhaps we bumped our term while
      // partitioned). Reject with our term (§5.1) so it steps down and a new election
      // can include us. Etcd answers only under check-quorum or pre-vote, counting on
      // our own campaign to spread the term otherwise — but a learner never
      // campaigns, and would then be stuck at its higher term for good.
      this.send({ type: MessageType.MsgAppResp, to: m.from });
    } else if (m.type === MessageType.MsgPreVote) {
      // Reject explicitly: a pre-candidate at an old term would otherwise wait forever.
      this.logger.info(
        `${hex16(this.id)} [logterm: ${this.log.lastTerm()}, index: ${this.log.lastIndex()}, vote: ${hex16(this.vote)}] rejected ${messageTypeName(m.type)} from ${hex16(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
      );
      this.send({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true });
    } else {
      this.logger.debug(
        `${hex16(this.id)} [term: ${this.term}] ignored a ${messageTypeName(m.type)} message with lower term from ${hex16(m.from)} [term: ${m.term}]`,
      );
    }
  }

  // ---- leader helpers shared by the step functions ----

  /**
   * Append proposed entries (their term/index are assigned here). False when the
   * uncommitted-size limit refuses them.
   *
   * Like etcd's raft, the leader counts its own entries toward a commit as soon as it
   * appends them, before the driver has persisted them: a lone voter's entries then
   * commit in the very Ready that hands them out for persisting, so one durable write
   * carries both the entries and the commit index. What makes that safe is the
   * driver's side (RawNode's header): a Ready whose commit index reaches its own
   * entries is written before any of it is sent or applied (etcd's shouldWaitWALSync,
   * its fix of issue #14370). With other voters, a commit still needs their acks, which
   * come only for entries sent in a Ready, so it never reaches the current Ready's own.
   */
  appendEntry(es: readonly Entry[]): boolean {
    const li = this.log.lastIndex();
    let payload = 0;
    for (const e of es) payload += e.data.length;
    const max = this.cfg.maxUncommittedEntriesSize;
    if (max > 0 && this.uncommittedSize > 0 && payload > 0 && this.uncommittedSize + payload > max) {
      this.logger.debug(
        `${hex16(this.id)} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`,
      );
      return false;
    }
    this.uncommittedSize += payload;
    const ents: Entry[] = new Array<Entry>(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents[i] = { term: this.term, index: li + 1 + i, type: e.type, data: e.data };
    }
    const last = this.log.append(ents);
    const self = this.trk.progress.get(this.id);
    if (self !== undefined && self.maybeUpdate(last) && maybeCommit(this)) releasePendingReadIndexMessages(this);
    return true;
  }

  reduceUncommittedSize(payload: number): void {
    this.uncommittedSize = payload > this.uncommittedSize ? 0 : this.uncommittedSize - payload;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Serve a confirmed read at `index`: a local read state, or a reply to the follower that asked. */
  responseToReadIndexReq(req: Message, index: number): void {
    const ctx = req.entries[0]!.data;
    if (req.from === 0n || req.from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
      return;
    }
    this.send({ type: MessageType.MsgReadIndexResp, to: req.from, index, entries: req.entries });
  }

  sendTimeoutNow(to: bigint): void {
    this.send({ type: MessageType.MsgTimeoutNow, to });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = 0n;
  }

  // ---- persistence feedback (from RawNode.advance) ----

  /** The driver persisted the log up to (index, term). */
  onPersisted(index: number, term: number): void {
    this.log.stableTo(index, term);
  }

  /** The driver applied entries: a deferred transfer campaign may go ahead now. */
  onApplied(): void {
    if (this.transferRequested && this.state === 'follower' && !hasUnappliedConfChanges(this)) hup(this, 'transfer');
  }
}
