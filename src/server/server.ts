// EtcdServer: one member. Its RaftNode drives the raft state machine (one Ready per
// loop turn, one WAL fsync per Ready); its Applier applies what raft commits to the
// store, lessor and membership in raft order; the server wires them and answers the
// API layer's proposals and reads.

import type { Logger } from 'pino';
import type { RawNode } from '../raft/index.js';
import type { BucketView, MvccStore, StoreReader } from '../mvcc/index.js';
import type { ClusterState } from './backup/etcd-db.js';
import { EtcdDbFile, exportMarkOf } from './backup/db-file.js';
import type { AlarmStore } from './alarms.js';
import { adjustTicks } from './adjust-ticks.js';
import { AppliedWait } from './applied-wait.js';
import { Applier, nodeApplierClock } from './applier.js';
import { AuthStore } from './auth/store.js';
import { SimpleTokens } from './auth/simple-token.js';
import { Errors } from './errors.js';
import { RequestIdGenerator, idHex } from './ids.js';
import type { Lessor } from './lessor.js';
import type { Membership } from './membership.js';
import { LeaderCalls } from './leader-calls.js';
import { LeaderDuties } from './leader-duties.js';
import { LiveStore } from './live-store.js';
import { type PeerHandleParts, raftHandle, snapshotHooks } from './peer-handles.js';
import { Proposals } from './proposals.js';
import { publish } from './publish.js';
import { RaftNode, type RaftApplier, nodeClock } from './raft-node.js';
import { ReadIndexQueue } from './read-index.js';
import type { ReconfigView } from './reconfig-check.js';
import type { PeerSet, ServerConfig, ServerParts } from './server-parts.js';
import { SnapshotInbox } from './snapshot-inbox.js';
import type { MemberStats } from './observe.js';
import type { LeaderRpc, RaftHandle, SnapshotHooks } from './transport/index.js';
import type { V2Store } from './v2store/index.js';
import { WalStorage } from './wal-storage.js';

/** How long a member that applied its own removal goes on before it stops (etcd's 10 × 100 ms). */
const REMOVED_STOP_DELAY_MS = 1000;

export class EtcdServer {
  readonly memberId: bigint;
  /** a backup of the store went out to a peer, in this many seconds */
  private readonly backendSnapshotSent: (seconds: number) => void;
  readonly clusterId: bigint;
  private readonly liveStore: LiveStore;
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly alarms: AlarmStore;
  readonly auth: AuthStore;
  readonly v2store: V2Store;

  /** the raft driver: tick, Ready, WAL, send, advance; it hands committed entries here */
  private readonly node: RaftNode;
  private readonly peers: PeerSet;
  /** etcd's bbolt file, kept no older than the newest .snap (backup/db-file.ts) */
  private readonly dbFile: EtcdDbFile;
  /**
   * etcd's bbolt file was there at the start: else a snapshot writes it once the member
   * serves. Only then: a file a leader's snapshot removes later waits for the next export,
   * and a member that caught up through one keeps that snapshot as its newest.
   */
  private readonly etcdDbPresentAtStart: boolean;
  /** when this member last became leader (Date.now()), for the error a timed-out proposal gets */
  private leaderElectedAt: number | undefined;
  /** member/snap: .snap files, received stores, and temporary files of backups */
  readonly snapDir: string;
  private readonly inbox: SnapshotInbox;
  private readonly log: Logger;
  private readonly reqIds: RequestIdGenerator;
  /** proposals and their waits: every write, v2 request and conf change goes through raft here */
  readonly proposals: Proposals;
  /** lease expiry and checkpoints, v2 TTLs, and what only the leader answers */
  private readonly leaderDuties: LeaderDuties;

  private readonly votersAtStart: number;

  private stopped = false;
  /** aborted when the member stops: releases requests waiting for a leader */
  private readonly stopping = new AbortController();
  private fatal: ((e: Error) => void) | undefined;
  private readonly fatalError: Promise<Error>;
  private removedResolve!: () => void;
  private readonly removedPromise = new Promise<void>((r) => (this.removedResolve = r));

  private readonly reads: ReadIndexQueue;
  /** committed entries and leader snapshots into the store, in raft order */
  private readonly applier: Applier;
  /** waitApplied callers */
  private readonly appliedWait = new AppliedWait(() => this.applied);

  private readonly leaderListeners = new Set<() => void>();
  private readonly snapshotListeners = new Set<() => void>();
  private readonly firstCommitInTermListeners = new Set<() => void>();
  private publishedResolve!: () => void;
  /** resolves once this member's attributes are published: it then serves clients */
  readonly published: Promise<void>;
  private leaderChanges = 0;
  /** ReadIndex rounds that got no answer in time (etcd_server_slow_read_indexes_total) */
  private slowReadIndexes = 0;

  /** The member's counters, for its metrics (observe.ts). */
  get stats(): MemberStats {
    return {
      leaderChanges: this.leaderChanges,
      slowReadIndexes: this.slowReadIndexes,
      pendingProposals: this.proposals.wait.size,
      proposalsFailed: this.proposals.failed,
      leasesExpired: this.leaderDuties.leasesExpired,
      learnerPromotions: this.leaderDuties.learnerPromotions,
      slowApplies: this.applier.slowApplies,
      snapshotsInstalled: this.applier.snapshotsInstalled,
      installingSnapshot: this.inbox.busy,
    };
  }

  constructor(
    readonly config: ServerConfig,
    parts: ServerParts,
    logger: Logger,
  ) {
    this.memberId = parts.memberId;
    this.clusterId = parts.clusterId;
    this.liveStore = new LiveStore(parts.store);
    this.membership = parts.membership;
    this.lessor = parts.lessor;
    this.alarms = parts.alarms;
    this.auth = new AuthStore(() => this.liveStore.current, config.jwt ?? new SimpleTokens(config.authTokenTtlMs), logger.child({ caller: 'auth' }));
    this.auth.restore(parts.authState);
    this.v2store = parts.v2store;
    this.peers = parts.peers;
    this.backendSnapshotSent = parts.onBackendSnapshot ?? (() => undefined);
    this.dbFile = new EtcdDbFile({ boltPath: parts.layout.boltPath, dbDir: parts.layout.dbDir }, logger, exportMarkOf(parts.store), parts.etcdDbPresent);
    this.etcdDbPresentAtStart = parts.etcdDbPresent;
    this.snapDir = parts.layout.snapDir;
    this.votersAtStart = parts.votersAtStart;
    this.log = logger;
    this.reqIds = new RequestIdGenerator(this.memberId, Date.now());
    this.published = new Promise((r) => (this.publishedResolve = r));
    this.fatalError = new Promise((r) => (this.fatal = r));
    this.node = new RaftNode({
      raft: parts.raft,
      raftStorage: parts.raftStorage,
      storage: new WalStorage(parts.wal, parts.snapshotter),
      transport: { send: parts.send },
      applier: this.raftApplier(),
      clock: nodeClock,
      heartbeatMs: config.heartbeatMs,
      onTick: () => this.tick(),
    });
    this.proposals = new Proposals({
      memberId: this.memberId,
      raft: this.node,
      leader: () => this.leader,
      committed: () => this.committed,
      applied: () => this.applied,
      canSendTo: (id) => this.peers.canSendTo(id),
      onLeaderChange: (fn) => this.onLeaderChange(fn),
      stopping: this.stopping.signal,
      nextId: () => this.reqIds.id(),
      heartbeatMs: config.heartbeatMs,
      maxRequestBytes: config.maxRequestBytes,
      requestTimeoutMs: () => this.requestTimeoutMs(),
      timeouts: {
        self: this.memberId,
        leader: () => this.leader,
        leaderElectedAt: () => this.leaderElectedAt,
        electionMs: config.electionMs,
        memberIds: () => this.membership.list().map((m) => m.id),
        activeSince: (id) => this.peers.activeSince(id),
      },
      log: this.log,
    });
    this.leaderDuties = new LeaderDuties({
      memberId: this.memberId,
      proposals: this.proposals,
      lessor: this.lessor,
      membership: this.membership,
      auth: this.auth,
      v2store: this.v2store,
      isLeader: () => this.isLeader,
      raftStatus: () => this.node.status(),
      committed: () => this.committed,
      read: (fn) => this.read(fn),
      log: this.log,
    });
    this.lessor.setCheckpointer(this.leaderDuties.proposeLeaseCheckpoints);
    this.applier = new Applier({
      memberId: this.memberId,
      config,
      raft: this.node,
      store: this.liveStore,
      lessor: this.lessor,
      membership: this.membership,
      alarms: this.alarms,
      auth: this.auth,
      v2store: this.v2store,
      peers: this.peers,
      wait: this.proposals.wait,
      log: this.log,
      clock: nodeApplierClock,
      dbFile: this.dbFile,
      dbDir: parts.layout.dbDir,
      snapshotIndex: parts.snapshotIndex,
      confState: parts.confState,
      events: {
        applied: () => this.notifyApplied(),
        firstCommitInTerm: () => {
          // etcd promotes the lessor here, once the entries of earlier terms (their lease
          // revokes and grants) are applied: leases get a fresh deadline under the new leader
          this.lessor.promote(this.config.electionMs);
          for (const fn of this.firstCommitInTermListeners) fn();
        },
        snapshotSaved: () => {
          for (const fn of this.snapshotListeners) fn();
        },
        // a second later, as etcd's stopWithDelay: the commit of the removal, and the answer
        // to whoever asked for it, still reach the others (a leader removing itself is the
        // only one that knows the entry committed)
        removed: () => setTimeout(() => this.removedFromCluster(), REMOVED_STOP_DELAY_MS),
        leaseRevoked: (id) => this.leaderDuties.leaseRevoked(id),
        backendCommitted: (seconds) => parts.onBackendCommit?.(seconds),
        fatal: (err) => this.die(err),
      },
    });
    this.inbox = new SnapshotInbox({
      clusterId: this.clusterId,
      memberId: this.memberId,
      snapDir: this.snapDir,
      stopped: () => this.stopped,
      applied: () => this.applied,
      committed: () => this.committed,
      term: () => this.node.term,
      leader: () => this.leader,
      step: (m) => this.node.step(m),
      pendingSnapshot: () => this.node.pendingSnapshot(),
      onDbSaved: (times) => parts.onSnapshotDbSaved?.(times),
    });
    this.leaderCalls = new LeaderCalls({
      leader: () => this.leader,
      isLeader: () => this.isLeader,
      local: this.leaderDuties.rpc,
      remote: (leader, timeoutMs) => {
        if (this.forwarder === undefined) throw Errors.noLeader;
        return this.forwarder(leader, timeoutMs);
      },
      onLeaderChange: (fn) => this.onLeaderChange(fn),
      stopping: this.stopping.signal,
      timeoutMs: () => this.requestTimeoutMs(),
      retryMs: () => this.config.heartbeatMs,
      log: this.log,
    });
    this.reads = new ReadIndexQueue({
      requestReadIndex: (ctx) => this.node.readIndex(ctx),
      nextId: () => this.reqIds.id(),
      hasLeader: () => this.leader !== 0n,
      appliedIndex: () => this.applied,
      timeoutMs: () => this.requestTimeoutMs(),
      timedOut: (timeoutMs) => {
        this.slowReadIndexes++;
        this.log.warn({ timeout: `${timeoutMs}ms` }, 'timed out waiting for read index response (local node might have slow network)');
      },
    });
  }

  // ---------------------------------------------------------------- lifecycle

  start(): void {
    this.node.start();
    void adjustTicks({
      votersAtStart: this.votersAtStart,
      electionTicks: Math.max(1, Math.floor(this.config.electionMs / this.config.heartbeatMs)),
      tickMs: this.config.heartbeatMs,
      advanceInCluster: this.config.initialElectionTickAdvance,
      memberId: idHex(this.memberId),
      log: this.log,
      advanceTicks: (n) => this.node.advanceTicks(n),
      peerConnected: () => this.membership.list().some((m) => m.id !== this.memberId && this.peers.activeSince(m.id) !== undefined),
      stopped: () => this.stopped,
    });
    void publish({
      proposals: this.proposals,
      memberId: this.memberId,
      clusterId: this.clusterId,
      name: this.config.name,
      clientUrls: this.config.advertiseClientUrls,
      electionMs: this.config.electionMs,
      leader: () => this.leader,
      onLeaderChange: (fn) => this.onLeaderChange(fn),
      stopping: this.stopping.signal,
      log: this.log,
    }).then((published) => {
      if (!published) return;
      this.publishedResolve();
      if (!this.etcdDbPresentAtStart) this.applier.snapshotForMissingEtcdDb().catch((err: Error) => this.die(err));
    });
  }

  /** The transport's handle on raft. */
  raftHandle(): RaftHandle {
    return raftHandle(this.peerHandleParts());
  }

  /** The transport's handle on the store, to ship it with a raft snapshot and to receive one. */
  snapshotHooks(): SnapshotHooks {
    return snapshotHooks(this.peerHandleParts());
  }

  private peerHandleParts(): PeerHandleParts {
    return {
      node: this.node,
      applier: this.applier,
      inbox: this.inbox,
      snapDir: this.snapDir,
      stopped: () => this.stopped,
      log: this.log,
      snapshotSent: this.backendSnapshotSent,
    };
  }

  /**
   * The store and the cluster at one applied index, for a backup in etcd's format: taken
   * on the apply chain once what is applied is written out, as etcd's Backend.Snapshot
   * commits its batch first. The caller closes the view. `reader` (registered with the
   * store) takes its snapshot at the same moment (Backend.bucketView).
   */
  backupState(reader?: StoreReader): Promise<{ view: BucketView; cluster: ClusterState }> {
    return this.applier.backupState(reader);
  }

  /** After stop(): etcd's bbolt file at the applied index, for etcd's tools and real etcd. */
  writeEtcdDbAtStop(): Promise<void> {
    return this.applier.writeEtcdDbAtStop();
  }

  /**
   * This member was removed (it applied its own removal, or a peer told it so). Like
   * etcd's, it then stops as on a clean shutdown (exit status 0): removal is the
   * operator's doing, not a failure.
   */
  removedFromCluster(): void {
    if (this.stopped) return;
    this.log.warn({ 'local-member-id': idHex(this.memberId), error: 'the member has been permanently removed from the cluster' }, 'the local member has been removed from the cluster; shutting down');
    this.log.warn({ 'local-member-id': idHex(this.memberId) }, 'data-dir used by this member must be removed');
    this.removedResolve();
  }

  /** Resolves when this member has been removed from the cluster: it should stop. */
  get removed(): Promise<void> {
    return this.removedPromise;
  }

  /** Rejects when the member hits an error it cannot continue from (e.g. a failed fsync). */
  get failed(): Promise<Error> {
    return this.fatalError;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping.abort();
    const driverStopped = this.node.stop();
    const applierStopped = this.applier.stop();
    this.proposals.wait.failAll(Errors.stopped);
    this.reads.failAll(Errors.stopped);
    this.auth.tokens.disable();
    await applierStopped;
    await driverStopped;
    this.inbox.abandon(Errors.stopped);
  }

  private die(err: Error): void {
    if (this.stopped) return;
    this.log.error({ error: err.message }, 'member cannot continue');
    this.fatal?.(err);
  }

  // ---------------------------------------------------------------- state

  /** The key-value store; replaced when a snapshot from the leader is installed. */
  get store(): MvccStore {
    return this.liveStore.current;
  }

  /** Runs a client read on the store, riding out a leader snapshot's store swap (LiveStore.read). */
  read<T>(fn: (store: MvccStore) => Promise<T>): Promise<T> {
    return this.liveStore.read(fn);
  }

  /** Called when this member, as leader, has applied the first entry of its term (etcd's FirstCommitInTermNotify). */
  onFirstCommitInTerm(fn: () => void): () => void {
    this.firstCommitInTermListeners.add(fn);
    return () => this.firstCommitInTermListeners.delete(fn);
  }

  /** Called after each snapshot this member takes (old WAL and snap files may then go). */
  onSnapshot(fn: () => void): () => void {
    this.snapshotListeners.add(fn);
    return () => this.snapshotListeners.delete(fn);
  }

  get isLeader(): boolean {
    return this.node.isLeader;
  }

  get leader(): bigint {
    return this.node.lead;
  }

  get raftTerm(): number {
    return this.node.term;
  }

  get committed(): number {
    return this.node.committed;
  }

  get applied(): number {
    return this.applier.applied;
  }

  /** Learner or not, as membership says. */
  get isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner === true;
  }

  onLeaderChange(fn: () => void): () => void {
    this.leaderListeners.add(fn);
    return () => this.leaderListeners.delete(fn);
  }

  // ---------------------------------------------------------------- raft loop

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.proposals.wait.sweep(now);
    this.reads.tick(now);
    this.leaderDuties.tick(now);
  }

  /** What the raft driver hands this member: leader changes, read states, committed entries and snapshots. */
  private raftApplier(): RaftApplier {
    return {
      softStateChanged: (previousLead, wasLeader) => this.onSoftState(previousLead, wasLeader),
      readStates: (states) => {
        for (const rs of states) this.reads.onReadState(rs.index, rs.requestCtx);
      },
      beforeSnapshotSave: async (snap) => {
        this.inbox.accepted(snap);
        await this.dbFile.remove(`the leader's snapshot at index ${snap.metadata.index} is ahead of it`);
      },
      applyEntries: (entries) => this.applier.applyEntries(entries),
      applySnapshot: (snap) => {
        const received = this.inbox.accepted(snap);
        void this.inbox.installing(this.applier.applySnapshot(snap, received));
      },
      fatal: (err) => this.die(err),
    };
  }

  /** The driver already holds the new leader and role: leader-change listeners ask isLeader. */
  private onSoftState(previousLead: bigint, wasLeader: boolean): void {
    const lead = this.leader;
    if (lead !== previousLead) {
      if (lead !== 0n) this.leaderChanges++;
      if (lead === this.memberId) this.leaderElectedAt = Date.now();
      for (const fn of this.leaderListeners) fn();
    }
    if (!this.isLeader && wasLeader) this.lessor.demote();
    if (lead !== 0n && lead !== previousLead) this.reads.leaderFound();
  }

  private notifyApplied(): void {
    this.reads.onApplied(this.applied);
    this.appliedWait.notify();
  }

  /**
   * Resolves true once this member has applied `index`, false if that does not happen
   * within `timeoutMs` (the request timeout unless given; a simple token names the index
   * that created it).
   */
  waitApplied(index: number, timeoutMs = this.requestTimeoutMs()): Promise<boolean> {
    return this.appliedWait.wait(index, timeoutMs);
  }

  /** etcd: 5 s plus twice the election timeout. */
  requestTimeoutMs(): number {
    return 5000 + 2 * this.config.electionMs;
  }

  // ---------------------------------------------------------------- linearizable reads

  /** Resolves once this member has applied everything committed before the call (ReadIndex). */
  linearizableReadNotify(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.stopped);
    return this.reads.read();
  }

  // ---------------------------------------------------------------- leader-only requests

  private forwarder: ((leader: bigint, timeoutMs: number) => LeaderRpc) | undefined;

  /** How a follower reaches the leader's peer port (set by startEtcd once the transport exists). */
  setForwarder(fn: (leader: bigint, timeoutMs: number) => LeaderRpc): void {
    this.forwarder = fn;
  }

  /** What this member answers as leader, for itself and for forwarding followers. */
  get leaderRpc(): LeaderRpc {
    return this.leaderDuties.rpc;
  }

  /** The leader's answers (lease renewals and time-to-live, learner promotion), here or over the peer port. */
  readonly leaderCalls: LeaderCalls;

  /** What --strict-reconfig-check reads: the voters and how long this member's stream to each is up. */
  reconfigView(): ReconfigView {
    return {
      self: this.memberId,
      voters: () => this.membership.voters(),
      activeSince: (id) => this.peers.activeSince(id),
      now: () => Date.now(),
    };
  }

  // ---------------------------------------------------------------- leadership

  transferLeadership(to: bigint): void {
    this.node.transferLeader(to);
  }

  raftStatus(): ReturnType<RawNode['status']> {
    return this.node.status();
  }
}
