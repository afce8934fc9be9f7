// EtcdServer: one member. Its RaftNode drives the raft state machine (one Ready per
// loop turn, one WAL fsync per Ready); its Applier applies what raft commits to the
// store, lessor and membership in raft order; the server wires them and answers the
// API layer's proposals and reads.

import type { Logger } from 'pino';
import { MessageType, type ConfState, type Message } from '../raftpb/types.js';
import type { ConfChangeType } from '../raftpb/types.js';
import type { MemoryStorage, RawNode } from '../raft/index.js';
import type { Snapshotter, WAL } from '../wal/index.js';
import type { BucketView, MvccStore } from '../mvcc/index.js';
import { openBackup, readBackup } from './backup/backup-file.js';
import type { ClusterState } from './backup/etcd-db.js';
import { EtcdDbFile } from './backup/db-file.js';
import type { AlarmStore } from './alarms.js';
import { Applier, type ApplierPeers, nodeApplierClock } from './applier.js';
import { type AuthInfo, type AuthState, AuthStore } from './auth/store.js';
import { SimpleTokens } from './auth/simple-token.js';
import type { JwtTokens } from './auth/jwt-token.js';
import { Errors } from './errors.js';
import { RequestIdGenerator, idHex, idHex16 } from './ids.js';
import type { Lessor } from './lessor.js';
import type { Member, Membership, MembershipSnapshot } from './membership.js';
import { LeaderCalls } from './leader-calls.js';
import { LeaderDuties } from './leader-duties.js';
import { LiveStore } from './live-store.js';
import type { ReconfigView } from './reconfig-check.js';
import { ReadIndexQueue } from './read-index.js';
import { SnapshotInbox } from './snapshot-inbox.js';
import type { LeaderRpc, SnapshotHooks } from './transport/index.js';
import { Proposals } from './proposals.js';
import { proposeClusterVersion, publish } from './publish.js';
import type { RaftRequest, RequestKind, ResultOf } from './raft-request.js';
import { encodeStoreRequest } from './v2request.js';
import type { StoreRequest, V2Event, V2Store, V2StoreSnapshot } from './v2store/index.js';
import { RaftNode, type RaftApplier, nodeClock } from './raft-node.js';
import { WalStorage } from './wal-storage.js';

export interface ServerConfig {
  readonly name: string;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly snapshotCount: number;
  readonly maxRequestBytes: number;
  readonly quotaBackendBytes: number;
  readonly maxTxnOps: number;
  readonly advertiseClientUrls: readonly string[];
  /** longest a store write waits to be batched with later ones (etcd's backend batch interval) */
  readonly backendBatchIntervalMs: number;
  /** applied entries after which the store is written at once (etcd's backend batch limit) */
  readonly backendBatchLimit: number;
  /** --auth-token-ttl: a simple token unused this long stops working */
  readonly authTokenTtlMs: number;
  /** --auth-token jwt,...: the JWT provider; simple tokens when absent */
  readonly jwt?: JwtTokens;
}

/** Everything bootstrap opened or created, handed to the server. */
export interface ServerParts {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly raft: RawNode;
  readonly raftStorage: MemoryStorage;
  readonly wal: WAL;
  readonly snapshotter: Snapshotter;
  readonly store: MvccStore;
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly alarms: AlarmStore;
  /** users, roles and the enabled flag as the store holds them */
  readonly authState: AuthState;
  readonly v2store: V2Store;
  /** voting members known at start */
  readonly votersAtStart: number;
  /** index and conf state of the snapshot the member started from */
  readonly snapshotIndex: number;
  readonly confState: ConfState;
  /** Called with raft messages for other members (the peer transport). */
  readonly send: (msgs: readonly Message[]) => void;
  /** The peer transport's view of the membership, kept in step as conf changes apply. */
  readonly peers: PeerSet;
  /** Where the store lives, where a store received from the leader waits beside it, and etcd's bbolt file. */
  readonly layout: { dbDir: string; snapDir: string; boltPath: string };
  /** Called with the duration of every store commit (etcd_disk_backend_commit_duration_seconds). */
  readonly onBackendCommit?: (seconds: number) => void;
}

/** The peer transport's view of the membership (the applier keeps it in step with conf changes). */
export interface PeerSet extends ApplierPeers {
  /** ms timestamp since which the peer's stream is up; undefined while it is down */
  activeSince(id: bigint): number | undefined;
  /** whether a message to the peer would go out now (its stream for our messages is up) */
  canSendTo(id: bigint): boolean;
}

/** What etcd-ts kept in a raft snapshot besides the store before it wrote etcd's format (etcd-snapshot-data.ts). */
export interface SnapshotData {
  membership: MembershipSnapshot;
  alarms: Array<{ memberId: string; alarm: number }>;
  /** absent in snapshots taken before etcd-ts kept the v2 store */
  v2store?: V2StoreSnapshot;
}

export class EtcdServer {
  readonly memberId: bigint;
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
  /** member/snap: .snap files, received stores, and temporary files of backups */
  readonly snapDir: string;
  private readonly inbox: SnapshotInbox;
  private readonly log: Logger;
  private readonly reqIds: RequestIdGenerator;
  /** proposals and their waits */
  private readonly proposals: Proposals;
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
  /** waitApplied callers, with the index each waits for */
  private readonly appliedWaiters = new Map<() => void, number>();

  private readonly leaderListeners = new Set<() => void>();
  private readonly snapshotListeners = new Set<() => void>();
  private readonly firstCommitInTermListeners = new Set<() => void>();
  private publishedResolve!: () => void;
  /** resolves once this member's attributes are published: it then serves clients */
  readonly published: Promise<void>;
  leaderChanges = 0;
  /** ReadIndex rounds that got no answer in time (etcd_server_slow_read_indexes_total) */
  slowReadIndexes = 0;
  /** proposals dropped or timed out since start (etcd_server_proposals_failed_total) */
  get proposalsFailed(): number {
    return this.proposals.failed;
  }
  /** expired leases this member revoked as leader (etcd_debugging_server_lease_expired_total) */
  get leasesExpired(): number {
    return this.leaderDuties.leasesExpired;
  }
  /** learners this member promoted as leader (etcd_server_learner_promote_successes) */
  get learnerPromotions(): number {
    return this.leaderDuties.learnerPromotions;
  }
  /** requests whose apply took too long (etcd_server_slow_apply_total) */
  get slowApplies(): number {
    return this.applier.slowApplies;
  }
  /** leader snapshots installed, by sending member (etcd_network_snapshot_receive_success) */
  get snapshotsInstalled(): ReadonlyMap<bigint, number> {
    return this.applier.snapshotsInstalled;
  }
  /** a received store is being saved or swapped in (etcd_server_snapshot_apply_in_progress_total) */
  get installingSnapshot(): boolean {
    return this.inbox.busy;
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
    this.dbFile = new EtcdDbFile({ boltPath: parts.layout.boltPath, dbDir: parts.layout.dbDir }, logger);
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
        removed: () => setImmediate(() => this.removedFromCluster()),
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
    void this.adjustTicks();
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
    }).then((published) => published && this.publishedResolve());
  }

  /**
   * etcd's adjustTicks: a lone voter campaigns at once; in a cluster, once a peer's
   * stream is up, a fresh member advances to two ticks short of its election timeout,
   * so a cluster elects a leader soon after a quorum is connected.
   */
  private async adjustTicks(): Promise<void> {
    if (this.votersAtStart === 1) {
      this.advanceTicks(this.electionTicks - 1);
      return;
    }
    const deadline = Date.now() + 5000;
    while (!this.stopped && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      if (this.membership.list().some((m) => m.id !== this.memberId && this.peers.activeSince(m.id) !== undefined)) {
        this.advanceTicks(this.electionTicks - 2);
        return;
      }
    }
  }

  private advanceTicks(n: number): void {
    this.node.advanceTicks(n);
  }

  /** The transport's handle on raft. */
  raftHandle(): { process(m: Message): void; check(m: Message): Error | undefined; reportUnreachable(id: bigint): void; reportSnapshot(id: bigint, status: 'finish' | 'failure'): void } {
    return {
      process: (m) => {
        // Raft must never accept a snapshot without the store that goes with it (the log
        // behind it is gone): a MsgSnap is stepped only by receiveSnapshot.
        if (m.type === MessageType.MsgSnap) {
          this.log.warn(
            { 'remote-peer-id': idHex16(m.from), 'incoming-snapshot-index': m.snapshot?.metadata.index ?? 0 },
            'dropped a MsgSnap that came without its store',
          );
          return;
        }
        this.step(m);
      },
      check: (m) => this.node.check(m),
      reportUnreachable: (id) => {
        if (this.stopped) return;
        this.node.reportUnreachable(id);
      },
      reportSnapshot: (id, status) => {
        if (this.stopped) return;
        this.node.reportSnapshot(id, status);
      },
    };
  }

  /** The transport's handle on the store, to ship it with a raft snapshot and to receive one. */
  snapshotHooks(): SnapshotHooks {
    return {
      prepare: async (m) => {
        const { message, state } = await this.applier.snapshotToSend(m);
        // etcd's backend database, written out beside the live store and streamed from there
        const backup = await openBackup(this.snapDir, state);
        return { message, size: backup.size, stream: readBackup(backup) };
      },
      receive: (m, stream) => this.inbox.receive(m, stream),
    };
  }

  /**
   * The store and the cluster at one applied index, for a backup in etcd's format: taken
   * on the apply chain once what is applied is written out, as etcd's Backend.Snapshot
   * commits its batch first. The caller closes the view.
   */
  backupState(): Promise<{ view: BucketView; cluster: ClusterState }> {
    return this.applier.backupState();
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

  get pendingProposals(): number {
    return this.proposals.wait.size;
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

  /** A message from a peer (the transport calls this). */
  step(m: Message): void {
    if (this.stopped) return;
    this.node.step(m);
  }

  /** The driver already holds the new leader and role: leader-change listeners ask isLeader. */
  private onSoftState(previousLead: bigint, wasLeader: boolean): void {
    const lead = this.leader;
    if (lead !== previousLead) {
      if (lead !== 0n) this.leaderChanges++;
      for (const fn of this.leaderListeners) fn();
    }
    if (!this.isLeader && wasLeader) this.lessor.demote();
    if (lead !== 0n && lead !== previousLead) this.reads.leaderFound();
  }

  private notifyApplied(): void {
    const applied = this.applied;
    this.reads.onApplied(applied);
    if (this.appliedWaiters.size > 0) {
      for (const [w, index] of this.appliedWaiters) if (index <= applied) w();
    }
  }

  /**
   * Resolves true once this member has applied `index`, false if that does not happen
   * within `timeoutMs` (the request timeout unless given; a simple token names the index
   * that created it).
   */
  waitApplied(index: number, timeoutMs = this.requestTimeoutMs()): Promise<boolean> {
    if (index <= this.applied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.appliedWaiters.delete(onApplied);
        resolve(ok);
      };
      const onApplied = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.appliedWaiters.set(onApplied, index);
    });
  }

  // ---------------------------------------------------------------- proposals

  /**
   * Proposes a request and resolves with its kind's result once applied here. `who`: the
   * client's credentials, checked by every member when it applies the entry (undefined:
   * the client sent none, or auth is off).
   */
  propose<K extends RequestKind>(request: RaftRequest<K>, who?: AuthInfo): Promise<ResultOf<K>> {
    return this.proposals.propose(request, who);
  }

  /**
   * A v2 API write (or quorum read) through raft; resolves with its event once applied
   * here, or rejects with the store's V2Error.
   */
  async proposeV2Store(r: StoreRequest): Promise<V2Event> {
    const event = await this.proposals.proposeV2((id) => encodeStoreRequest(id, r));
    // only a PUT of member attributes or of the cluster version answers with no event
    if (event === undefined) throw new Error(`the v2 ${r.method} of ${'path' in r ? r.path : ''} was taken for a cluster update`);
    return event;
  }

  /** Sets the cluster version through raft (the leader's ClusterVersionMonitor decides it). */
  proposeClusterVersion(version: string): Promise<void> {
    return proposeClusterVersion(this.proposals, version);
  }

  /** Proposes a membership change; resolves with the members after it applied. */
  proposeConfChange(type: ConfChangeType, nodeId: bigint, context: Uint8Array): Promise<Member[]> {
    return this.proposals.proposeConfChange(type, nodeId, context);
  }

  private get electionTicks(): number {
    return Math.max(1, Math.floor(this.config.electionMs / this.config.heartbeatMs));
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

  /** The leader's answers, here or over the peer port, riding out leader changes. */
  private readonly leaderCalls: LeaderCalls;

  /** Renews a lease at the leader; `signal` aborts the wait when the client goes away. */
  leaseRenew(id: bigint, signal?: AbortSignal): Promise<number> {
    return this.leaderCalls.call('lease-renew', (rpc) => rpc.leaseRenew(id), signal);
  }

  leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }> {
    return this.leaderCalls.call('lease-ttl', (rpc) => rpc.leaseTimeToLive(id, keys));
  }

  async promoteMember(id: bigint): Promise<void> {
    await this.leaderCalls.call('member-promote', (rpc) => rpc.memberPromote(id));
    // answer once the promotion is visible here too
    const deadline = Date.now() + this.requestTimeoutMs();
    while (this.membership.get(id)?.isLearner === true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

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
