// Raft: one member's consensus state machine. It owns the term, vote, role, log and
// the leader's replication state; it turns inputs (ticks, messages) into outputs
// (messages in `msgs`, read states, log changes) without any I/O. Role-specific
// message handling lives in step-leader.ts, step-candidate.ts and step-follower.ts;
// the leader's sending machinery in replicate.ts.

import {
  type ConfChange,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type Snapshot,
  isEmptyHardState,
  messageTypeName,
} from '../raftpb/index.js';
import type { ResolvedConfig } from './config.js';
import { type MembershipConfig, changeConfig, describeConfChange, describeConfig, fromConfState } from './confchange.js';
import { RaftLog } from './log.js';
import { type RaftLogger, hex16 } from './logger.js';
import { type MessageInit, campaignTransferContext, isCampaignTransfer, makeMessage, voteRespType } from './message.js';
import { ReadOnly } from './read-only.js';
import {
  bcastAppendSoon,
  bcastHeartbeat,
  maybeCommit,
  maybeSendAppend,
  releasePendingReadIndexMessages,
  sendAppend,
} from './replicate.js';
import { stepCandidate } from './step-candidate.js';
import { stepFollower } from './step-follower.js';
import { stepLeader } from './step-leader.js';
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
  /** follower only: the leader asked us to take over (MsgTimeoutNow) before we had applied its config */
  transferRequested = false;

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
    if (p.term === undefined && p.type !== MessageType.MsgProp && p.type !== MessageType.MsgReadIndex) {
      p.term = this.term;
    }
    if (p.from === undefined) p.from = this.id;
    this.msgs.push(makeMessage(p));
  }

  /**
   * Re-address a request to the leader. Proposals and reads stay termless (they are
   * local requests of whoever serves them); a transfer request takes our term.
   */
  forward(m: Message, to: bigint): void {
    const termless = m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex;
    this.msgs.push({ ...m, to, from: m.from === 0n ? this.id : m.from, term: termless ? 0 : this.term });
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
      // Our own match counts toward commit only for entries the driver has persisted:
      // the rest is acknowledged in advance(), after the write (etcd issue #14370).
      self.match = this.log.lastIndex();
      const u = this.log.unstable;
      if (u.entries.length > 0) self.match = Math.min(self.match, u.offset - 1);
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
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.cfg.preVote ? 'pre-election' : 'election');
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

  // ---- elections ----

  /** A voter that has applied every snapshot it received may campaign; learners and removed members may not. */
  promotable(): boolean {
    return this.trk.isVoter(this.id) && this.log.unstable.snapshot === undefined;
  }

  hup(t: CampaignType): void {
    if (this.state === 'leader') {
      this.logger.debug(`${hex16(this.id)} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${hex16(this.id)} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(
        `${hex16(this.id)} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`,
      );
      // A leader handing over right after a conf change (e.g. removing itself) sends
      // MsgTimeoutNow together with the commit: campaign as soon as we have applied it.
      if (t === 'transfer') this.transferRequested = true;
      return;
    }
    this.transferRequested = false;
    this.logger.info(`${hex16(this.id)} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  /** Committed conf changes not yet applied would change who may vote: wait for them. */
  private hasUnappliedConfChanges(): boolean {
    let lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    if (lo >= hi) return false;
    lo = Math.max(lo, this.log.firstIndex());
    while (lo < hi) {
      const ents = this.log.slice(lo, hi, this.cfg.maxSizePerMsg);
      for (const e of ents) if (e.type !== EntryType.Normal) return true;
      lo += ents.length;
    }
    return false;
  }

  campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // Ask about the term we would use, without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, voteRespType(voteMsg), true) === 'won') {
      // A lone voter wins at once.
      if (t === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.config.voters) {
      if (id === this.id) continue;
      this.logger.info(
        `${hex16(this.id)} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${messageTypeName(voteMsg)} request to ${hex16(id)} at term ${this.term}`,
      );
      this.send({
        type: voteMsg,
        to: id,
        term,
        logTerm: lastTerm,
        index: lastIndex,
        context: t === 'transfer' ? campaignTransferContext : undefined,
      });
    }
  }

  poll(id: bigint, t: MessageType, granted: boolean): 'won' | 'lost' | 'pending' {
    if (id !== this.id) {
      this.logger.info(
        `${hex16(this.id)} received ${messageTypeName(t)} ${granted ? '' : 'rejection '}from ${hex16(id)} at term ${this.term}`,
      );
    }
    this.trk.recordVote(id, granted);
    const { granted: gr, rejected, result } = this.trk.tallyVotes();
    if (id !== this.id) {
      this.logger.info(`${hex16(this.id)} has received ${gr} ${messageTypeName(t)} votes and ${rejected} vote rejections`);
    }
    return result;
  }

  // ---- the message entry point ----

  /** Step a message already checked by validate.ts (network) or built locally (term 0). */
  step(m: Message): void {
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
        this.hup(this.cfg.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote:
        this.handleVoteRequest(m);
        return;
      case MessageType.MsgVoteResp:
      case MessageType.MsgPreVoteResp:
        if (m.reject) this.learnCommit(m.commit, m.logTerm);
        if (this.state === 'candidate' || this.state === 'pre-candidate') stepCandidate(this, m);
        return;
      default:
        if (this.state === 'leader') stepLeader(this, m);
        else if (this.state === 'follower') stepFollower(this, m);
        else stepCandidate(this, m);
    }
  }

  /** A message from an older term. */
  private stepStale(m: Message): void {
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
      // A leader of an older term is still around (perhaps we bumped our term while
      // partitioned and can no longer win). Tell it our term so it steps down and a
      // new election can include us; with check-quorum it could not learn it otherwise.
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

  private handleVoteRequest(m: Message): void {
    // We may vote if we already voted for this candidate, or have not voted and know
    // of no leader this term, or this is a pre-vote for a future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === 0n && this.lead === 0n) ||
      (m.type === MessageType.MsgPreVote && m.term > this.term);
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    const tag = `${hex16(this.id)} [logterm: ${lastTerm}, index: ${lastIndex}, vote: ${hex16(this.vote)}]`;
    const cand = `${hex16(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`;
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Learners vote too: a learner may have been promoted without knowing it yet.
      this.logger.info(`${tag} cast ${messageTypeName(m.type)} for ${cand}`);
      // Answer with the request's term: for a pre-vote ours may be older, and the
      // pre-candidate ignores answers from older terms.
      this.send({ type: voteRespType(m.type), to: m.from, term: m.term });
      if (m.type === MessageType.MsgVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.logger.info(`${tag} rejected ${messageTypeName(m.type)} from ${cand}`);
      // Tell the candidate how far we know the log is committed (see learnCommit).
      const commit = this.log.committed;
      this.send({
        type: voteRespType(m.type),
        to: m.from,
        term: this.term,
        reject: true,
        commit,
        logTerm: this.log.term(commit) ?? 0,
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
  private learnCommit(commit: number, term: number): void {
    if (commit > this.log.committed && term > 0 && this.log.matchTerm(commit, term)) {
      this.logger.info(`${hex16(this.id)} learned from a vote rejection that index ${commit} is committed`);
      this.log.commitTo(commit);
    }
  }

  // ---- leader helpers shared by the step functions ----

  /**
   * Append proposed entries (their term/index are assigned here). False when the
   * uncommitted-size limit refuses them.
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
    this.log.append(ents);
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
    if (this.state !== 'leader' || this.log.term(index) !== term) return;
    const self = this.trk.progress.get(this.id);
    if (self !== undefined && self.maybeUpdate(index) && maybeCommit(this)) {
      releasePendingReadIndexMessages(this);
      bcastAppendSoon(this);
    }
  }

  /** The driver applied entries: a deferred transfer campaign may go ahead now. */
  onApplied(): void {
    if (this.transferRequested && this.state === 'follower' && !this.hasUnappliedConfChanges()) this.hup('transfer');
  }

  // ---- snapshots ----

  /**
   * Follower: replace our log with the leader's snapshot if it is newer than what we
   * have committed. Returns false when it was ignored.
   */
  restore(s: Snapshot): boolean {
    const { index, term } = s.metadata;
    if (index <= this.log.committed) return false;
    if (this.state !== 'follower') {
      this.logger.warn(`${hex16(this.id)} attempted to restore snapshot as ${this.state}; should never happen`);
      this.becomeFollower(this.term + 1, 0n);
      return false;
    }
    const restored = fromConfState(s.metadata.confState);
    if ('error' in restored) {
      this.logger.warn(`${hex16(this.id)} ignoring snapshot [index: ${index}, term: ${term}]: ${restored.error}`);
      return false;
    }
    const cfg = restored.config;
    if (!cfg.voters.has(this.id) && !cfg.learners.has(this.id)) {
      this.logger.warn(
        `${hex16(this.id)} attempted to restore snapshot but it is not in the ConfState ${describeConfig(cfg)}; should never happen`,
      );
      return false;
    }
    if (this.log.matchTerm(index, term)) {
      // We already have the snapshot's last entry: just learn that it is committed.
      this.logger.info(
        `${hex16(this.id)} [commit: ${this.log.committed}, lastindex: ${this.log.lastIndex()}, lastterm: ${this.log.lastTerm()}] fast-forwarded commit to snapshot [index: ${index}, term: ${term}]`,
      );
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.trk.progress.clear();
    this.switchToConfig(cfg);
    this.logger.info(
      `${hex16(this.id)} [commit: ${this.log.committed}, lastindex: ${this.log.lastIndex()}, lastterm: ${this.log.lastTerm()}] restored snapshot [index: ${index}, term: ${term}]`,
    );
    return true;
  }

  // ---- membership ----

  /** Apply a committed conf change (the driver calls this when it applies the entry). */
  applyConfChange(cc: ConfChange): MembershipConfig {
    // A change for node 0 is how a refused change looks once committed: nothing to do.
    if (cc.nodeId === 0n) return this.trk.config;
    const res = changeConfig(this.trk.config, cc);
    if ('error' in res) {
      // Proposals are checked against the same configuration, so this only happens
      // if the driver applies entries out of order; every member reaches the same verdict.
      this.logger.error(
        `${hex16(this.id)} ignoring conf change ${describeConfChange(cc)} at config ${describeConfig(this.trk.config)}: ${res.error}`,
      );
      return this.trk.config;
    }
    this.switchToConfig(res.config);
    return this.trk.config;
  }

  private switchToConfig(cfg: MembershipConfig): void {
    this.trk.applyConfig(cfg, this.log.lastIndex());
    this.logger.info(`${hex16(this.id)} switched to configuration ${describeConfig(cfg)}`);
    if (this.state !== 'leader') return;
    // The quorum may have shrunk: maybe something is committed now.
    if (maybeCommit(this)) {
      releasePendingReadIndexMessages(this);
      bcastAppendSoon(this);
    } else {
      for (const id of this.trk.progress.keys()) {
        if (id !== this.id) maybeSendAppend(this, id, false);
      }
    }
    if (this.leadTransferee !== 0n && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    if (!this.trk.isVoter(this.id) && this.leadTransferee === 0n) {
      this.logger.info(`${hex16(this.id)} is no longer a voter in ${describeConfig(cfg)}; stepping down`);
      this.handOverLeadership();
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
  private handOverLeadership(): void {
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const id of this.trk.config.voters) {
      const m = this.trk.progress.get(id)?.match ?? 0;
      if (id !== this.id && (m > bestMatch || (m === bestMatch && best !== undefined && id < best))) {
        best = id;
        bestMatch = m;
      }
    }
    if (best === undefined) return;
    this.logger.info(`${hex16(this.id)} [term ${this.term}] starts to transfer leadership to ${hex16(best)}`);
    this.electionElapsed = 0;
    this.leadTransferee = best;
    if (bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    else sendAppend(this, best);
  }
}
