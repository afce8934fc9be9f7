// EtcdServer: one member. Its RaftNode drives the raft state machine (one Ready per
// loop turn, one WAL fsync per Ready); the server applies what raft commits to the
// store, lessor and membership in raft order, and answers the API layer's proposals
// and reads.

import type { FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { BoltFormatError } from '../bbolt/index.js';
import { EntryType, MessageType, type Entry, type ConfState, type Message, type Snapshot } from '../raftpb/types.js';
import { decodeConfChange } from '../raftpb/codec.js';
import { ConfChangeType } from '../raftpb/types.js';
import type { MemoryStorage, RawNode } from '../raft/index.js';
import type { Snapshotter, WAL } from '../wal/index.js';
import { type BucketView, MvccStore } from '../mvcc/index.js';
import { openBackup } from './backup/backup-file.js';
import { type ClusterState, clusterStateOf } from './backup/etcd-db.js';
import { type ExportReason, type ExportState, exportEtcdDb, removeEtcdDb } from './backup/db-file.js';
import { etcdSnapshotData } from './backup/etcd-snapshot-data.js';
import { readSnapshotState } from './import/snapshot-data.js';
import { AlarmStore } from './alarms.js';
import { type InternalRequest, RequestApplier } from './apply.js';
import { type AuthInfo, type AuthState, AuthStore, ROOT_USER, readAuthState } from './auth/store.js';
import { SimpleTokens } from './auth/simple-token.js';
import type { JwtTokens } from './auth/jwt-token.js';
import { type EtcdError, Errors } from './errors.js';
import { RequestIdGenerator, idHex, idHex16 } from './ids.js';
import { type LeaseCheckpoint, type Lessor, restoreLessor } from './lessor.js';
import { type Member, Membership, type MembershipSnapshot, decodeMemberContext, encodeMemberContext } from './membership.js';
import type Long from 'long';
import { decodeEntryRequest, InternalRaftRequest, int64, toBigInt, uint64 } from './pb.js';
import { LeaderCalls } from './leader-calls.js';
import type { ReconfigView } from './reconfig-check.js';
import { ReadIndexQueue } from './read-index.js';
import { discardReceivedDb, installReceivedDb, receivedDbPath, saveReceivedDb } from './received-db.js';
import { type LeaderRpc, type SnapshotHooks, SnapshotRefused } from './transport/index.js';
import { type V2Request, attributesRequest, clusterVersionRequest, encodeStoreRequest } from './v2request.js';
import { type StoreRequest, type V2Event, V2Store, type V2StoreSnapshot, nowNanos } from './v2store/index.js';
import { WaitRegistry } from './wait.js';
import { RaftNode, type RaftApplier, nodeClock } from './raft-node.js';
import { WalStorage } from './wal-storage.js';

/** Entries kept in the raft log behind a snapshot, so slow followers catch up without one. */
const SNAPSHOT_CATCH_UP_ENTRIES = 5000;
/** etcd refuses new proposals when apply lags commit by more than this. */
const MAX_GAP_BETWEEN_APPLY_AND_COMMIT = 5000;
/** An apply slower than this is logged and counted, as etcd's warningApplyDuration. */
const SLOW_APPLY_MS = 100;
/** Leases revoked per second at most, as etcd's lessor. */
const LEASE_REVOKE_RATE = 1000;
const LEARNER_READY_PERCENT = 0.9;
/** The leader expires v2 TTLs this often, through raft (etcd's SYNC requests). */
const V2_SYNC_INTERVAL_MS = 500;

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

export interface PeerSet {
  add(id: bigint, urls: readonly string[]): void;
  update(id: bigint, urls: readonly string[]): void;
  remove(id: bigint): void;
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

/** A database sent with a snapshot is read from its file this much at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A snapshot a peer is sending, from the moment its database starts arriving until it
 * is installed or dropped; one at a time. The database waits at `file` (see received-db.ts).
 */
type IncomingSnapshot =
  | { readonly stage: 'saving'; readonly index: number; readonly term: number; readonly from: bigint; readonly file: string }
  | {
      readonly stage: 'accepted';
      readonly index: number;
      readonly term: number;
      readonly from: bigint;
      readonly file: string;
      /** settles the receiveSnapshot call once the store is installed */
      readonly installed: { resolve(): void; reject(err: Error): void };
    };
type AcceptedSnapshot = Extract<IncomingSnapshot, { stage: 'accepted' }>;

export class EtcdServer {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  private storeRef: MvccStore;
  /** set while a leader's snapshot replaces the store: reads wait for it (see read()) */
  private storeSwap: Promise<void> | undefined;
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly alarms: AlarmStore;
  readonly auth: AuthStore;
  readonly v2store: V2Store;

  /** the raft driver: tick, Ready, WAL, send, advance; it hands committed entries here */
  private readonly node: RaftNode;
  private readonly peers: PeerSet;
  private readonly dbDir: string;
  /** etcd's bbolt file, kept no older than the newest .snap (backup/db-file.ts) */
  private readonly boltPath: string;
  /** writes and removals of the bbolt file, one at a time */
  private boltFileChain: Promise<void> = Promise.resolve();
  /** a snapshot being saved in the background (triggerSnapshot), one at a time */
  private snapshotting: Promise<void> | undefined;
  /** member/snap: .snap files, received stores, and temporary files of backups */
  readonly snapDir: string;
  private incoming: IncomingSnapshot | undefined;
  private readonly log: Logger;
  private readonly reqIds: RequestIdGenerator;
  private readonly wait = new WaitRegistry();

  private appliedIndex: number;
  private snapshotIndex: number;
  private confState: ConfState;
  /** entries at or below this index are already in the store (consistent index at open) */
  private storeIndexAtOpen: number;
  private readonly votersAtStart: number;

  private applyChain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** aborted when the member stops: releases requests waiting for a leader */
  private readonly stopping = new AbortController();
  private fatal: ((e: Error) => void) | undefined;
  private readonly fatalError: Promise<Error>;
  private removedResolve!: () => void;
  private readonly removedPromise = new Promise<void>((r) => (this.removedResolve = r));

  private readonly reads: ReadIndexQueue;
  private readonly applier: RequestApplier;
  private readonly revoking = new Set<bigint>();
  /** waitApplied callers, with the index each waits for */
  private readonly appliedWaiters = new Map<() => void, number>();
  private uncommittedEntries = 0;
  private lastBackendCommit = 0;
  private backendCommitTimer: NodeJS.Timeout | undefined;
  private readonly onBackendCommit: ((seconds: number) => void) | undefined;
  private lastLeaseCheck = 0;
  private lastV2Sync = 0;

  private readonly leaderListeners = new Set<() => void>();
  private readonly snapshotListeners = new Set<() => void>();
  private readonly firstCommitInTermListeners = new Set<() => void>();
  private publishedResolve!: () => void;
  /** resolves once this member's attributes are published: it then serves clients */
  readonly published: Promise<void>;
  leaderChanges = 0;
  /** proposals dropped or timed out since start (etcd_server_proposals_failed_total) */
  proposalsFailed = 0;
  /** expired leases this member revoked as leader (etcd_debugging_server_lease_expired_total) */
  leasesExpired = 0;
  /** requests whose apply took longer than SLOW_APPLY_MS (etcd_server_slow_apply_total) */
  slowApplies = 0;
  /** ReadIndex rounds that got no answer in time (etcd_server_slow_read_indexes_total) */
  slowReadIndexes = 0;
  /** learners this member promoted as leader (etcd_server_learner_promote_successes) */
  learnerPromotions = 0;
  /** leader snapshots installed, by sending member (etcd_network_snapshot_receive_success) */
  readonly snapshotsInstalled = new Map<bigint, number>();
  /** a received store is being saved or swapped in (etcd_server_snapshot_apply_in_progress_total) */
  get installingSnapshot(): boolean {
    return this.incoming !== undefined;
  }

  constructor(
    readonly config: ServerConfig,
    parts: ServerParts,
    logger: Logger,
  ) {
    this.memberId = parts.memberId;
    this.clusterId = parts.clusterId;
    this.storeRef = parts.store;
    this.membership = parts.membership;
    this.lessor = parts.lessor;
    this.lessor.setCheckpointer(this.proposeLeaseCheckpoints);
    this.alarms = parts.alarms;
    this.auth = new AuthStore(() => this.storeRef, config.jwt ?? new SimpleTokens(config.authTokenTtlMs), logger.child({ caller: 'auth' }));
    this.auth.restore(parts.authState);
    this.v2store = parts.v2store;
    this.peers = parts.peers;
    this.dbDir = parts.layout.dbDir;
    this.boltPath = parts.layout.boltPath;
    this.snapDir = parts.layout.snapDir;
    this.onBackendCommit = parts.onBackendCommit;
    this.appliedIndex = parts.snapshotIndex;
    this.snapshotIndex = parts.snapshotIndex;
    this.confState = parts.confState;
    this.storeIndexAtOpen = parts.store.consistentIndex;
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
    this.applier = new RequestApplier({
      store: () => this.storeRef,
      lessor: this.lessor,
      membership: this.membership,
      alarms: this.alarms,
      auth: this.auth,
      v2store: this.v2store,
      log: this.log,
      storeIndexAtOpen: () => this.storeIndexAtOpen,
      onLeaseRevoked: (id) => this.revoking.delete(id),
    });
    this.leaderCalls = new LeaderCalls({
      leader: () => this.leader,
      isLeader: () => this.isLeader,
      local: this.leaderRpc,
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
      appliedIndex: () => this.appliedIndex,
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
    void this.publish();
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

  /**
   * The store and the cluster at one applied index, for a backup in etcd's format: taken
   * on the apply chain once what is applied is written out, as etcd's Backend.Snapshot
   * commits its batch first. The caller closes the view.
   */
  backupState(): Promise<{ view: BucketView; cluster: ClusterState }> {
    return new Promise((resolve, reject) => {
      this.enqueueApply(async () => {
        try {
          await this.commitBackend();
          resolve({ view: this.store.bucketView(), cluster: this.clusterState() });
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** The membership and cluster version as etcd's backend records them. */
  private clusterState(): ClusterState {
    return clusterStateOf(this.membership);
  }

  /** The transport's handle on the store, to ship it with a raft snapshot and to receive one. */
  snapshotHooks(): SnapshotHooks {
    return {
      prepare: (m) => this.prepareSnapshot(m),
      receive: (m, stream) => this.receiveSnapshot(m, stream),
    };
  }

  /**
   * A peer's MsgSnap and its database, in etcd's order: the database is saved beside the
   * live store, then raft decides. A snapshot raft ignores (stale, late, from an old term or
   * forged) is deleted and the live store never changes; one it accepts is installed
   * when the Ready carrying it is handled (applySnapshot), and this resolves then.
   */
  private async receiveSnapshot(m: Message, db: AsyncIterable<Buffer>): Promise<void> {
    const { index, term } = m.snapshot!.metadata;
    this.refuseUselessSnapshot(m);
    const saving = { stage: 'saving', index, term, from: m.from, file: receivedDbPath(this.snapDir, index) } as const;
    this.incoming = saving;
    let installed: Promise<void>;
    try {
      try {
        await saveReceivedDb(saving.file, db);
      } catch (err) {
        if (err instanceof BoltFormatError) throw new SnapshotRefused(`its database is not a whole bbolt file: ${err.message}`);
        throw err;
      }
      installed = this.offerSnapshot(m, saving);
    } catch (err) {
      this.incoming = undefined;
      await discardReceivedDb(saving.file);
      throw err;
    }
    await installed;
  }

  /**
   * Refuses, before a byte is written, a snapshot raft would ignore for what we know
   * already: one not ahead of what this member has (raft ignores it at or below its
   * commit index), one from an older term, one at this term from a member that is not
   * its leader (there is one leader per term), or one whose data this member could not
   * restore. One snapshot is received at a time.
   */
  private refuseUselessSnapshot(m: Message): void {
    const { index } = m.snapshot!.metadata;
    if (this.stopped) throw new SnapshotRefused('the member is stopping');
    if (this.incoming !== undefined) {
      throw new SnapshotRefused(`the snapshot at index ${this.incoming.index} from ${idHex16(this.incoming.from)} is still being received or installed`);
    }
    const { committed, term, leader } = this;
    if (index <= this.appliedIndex || index <= committed) {
      throw new SnapshotRefused(`its index ${index} is not ahead of this member's (applied ${this.appliedIndex}, committed ${committed})`);
    }
    if (m.term < term) throw new SnapshotRefused(`its term ${m.term} is older than this member's term ${term}`);
    if (m.term === term && leader !== 0n && m.from !== leader) {
      throw new SnapshotRefused(`${idHex16(m.from)} is not the leader at term ${term} (${idHex16(leader)} is)`);
    }
    // applySnapshot restores membership, alarms and the v2 store from it: try that now, on copies
    try {
      const data = readSnapshotState(m.snapshot!.data, `the snapshot at index ${index} from ${idHex16(m.from)}`);
      new Membership(this.clusterId, this.memberId).restore(data.membership);
      if (data.alarms !== undefined) new AlarmStore().restore(data.alarms);
      if (data.v2store !== undefined) new V2Store().recover(data.v2store);
    } catch (err) {
      throw new SnapshotRefused(`its data is neither etcd-ts's nor etcd's: ${(err as Error).message}`);
    }
  }

  /**
   * Steps the MsgSnap whose store is saved; raft accepting it leaves it pending until its
   * Ready. Returns a promise of the install, or throws SnapshotRefused if raft ignored it.
   */
  private offerSnapshot(m: Message, saved: Extract<IncomingSnapshot, { stage: 'saving' }>): Promise<void> {
    if (this.stopped) throw new SnapshotRefused('the member is stopping');
    try {
      this.node.step(m); // raft answers the sender either way
    } catch (err) {
      throw new SnapshotRefused(`raft refused it: ${(err as Error).message}`);
    }
    const pending = this.node.pendingSnapshot();
    if (pending?.index !== saved.index || pending.term !== saved.term) {
      throw new SnapshotRefused(`raft ignored it: it is not ahead of what this member has committed (${this.node.status().hardState.commit})`);
    }
    return new Promise((resolve, reject) => {
      this.incoming = { ...saved, stage: 'accepted', installed: { resolve, reject } };
    });
  }

  /** The received snapshot raft handed out in a Ready: it must be the one it accepted. */
  private acceptedSnapshot(snap: Snapshot): AcceptedSnapshot {
    const incoming = this.incoming;
    if (incoming?.stage !== 'accepted' || incoming.index !== snap.metadata.index || incoming.term !== snap.metadata.term) {
      throw new Error(`raft restored the snapshot at index ${snap.metadata.index}, term ${snap.metadata.term} without the store received with it`);
    }
    return incoming;
  }

  /**
   * A MsgSnap describing what is applied now (etcd's createMergedSnapshotMessage): the
   * store shipped with it holds everything up to the applied index, so the raft snapshot
   * says that index, its term and the current configuration. A member added after the
   * last snapshot then finds itself in it.
   */
  private async prepareSnapshot(m: Message): Promise<{ message: Message; size: number; stream: AsyncIterable<Buffer> }> {
    // On the apply chain, after writing out what is staged: the view holds what LevelDB
    // has, so nothing may be applied but unwritten.
    const { message, state } = await new Promise<{ message: Message; state: { view: BucketView; cluster: ClusterState } }>((resolve, reject) => {
      this.enqueueApply(async () => {
        try {
          await this.commitBackend();
          const message = this.mergedSnapshotMessage(m);
          resolve({ message, state: { view: this.store.bucketView(), cluster: this.clusterState() } });
        } catch (err) {
          reject(err);
        }
      });
    });
    // etcd's backend database, written out beside the live store and streamed from there
    const { file, size } = await openBackup(this.snapDir, state);
    return { message, size, stream: readWhole(file, size) };
  }

  private mergedSnapshotMessage(m: Message): Message {
    // The store's own consistent index, not appliedIndex: between a store write and the
    // bookkeeping after it the store may already hold one more entry (never a conf change,
    // whose apply is synchronous, so the configuration below still matches).
    const index = this.store.consistentIndex;
    let term: number;
    try {
      term = this.node.raftStorage.term(index);
    } catch {
      return m; // that part of the log is gone: send the snapshot raft chose
    }
    return {
      ...m,
      snapshot: { data: this.snapshotData(), metadata: { index, term, confState: this.confState } },
    };
  }

  /**
   * Swaps the store received with an accepted snapshot in for the live one. Reads wait
   * for the new store meanwhile (read()); open watch streams stay, their watchers catch
   * up from the new store's history (or learn it was compacted).
   */
  private async installStore(received: string): Promise<void> {
    const swap = this.swapStore(received);
    this.storeSwap = swap;
    try {
      await swap;
    } finally {
      this.storeSwap = undefined;
    }
    this.storeIndexAtOpen = this.storeRef.consistentIndex;
    this.lessor.reset();
    await restoreLessor(this.lessor, this.storeRef);
    this.auth.restore(await readAuthState(this.storeRef));
    if (this.isLeader) this.lessor.promote(this.config.electionMs);
    this.log.info({ 'consistent-index': this.storeIndexAtOpen, revision: this.storeRef.currentRevision }, 'installed the store from a leader snapshot');
  }

  /** Closes the current store and opens the one received at `received` in its place. */
  private async swapStore(received: string): Promise<void> {
    const old = this.storeRef;
    await old.close();
    const restored = await installReceivedDb(this.dbDir, received, this.log.child({ caller: 'snap' }));
    this.storeRef = await MvccStore.open({
      dir: this.dbDir,
      maxTxnOps: this.config.maxTxnOps,
      logger: this.log.child({ caller: 'mvcc' }),
      replacing: old,
      restored,
    });
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
    clearTimeout(this.backendCommitTimer);
    this.wait.failAll(Errors.stopped);
    this.reads.failAll(Errors.stopped);
    this.auth.tokens.disable();
    await this.applyChain.catch(() => undefined);
    await this.snapshotting;
    await driverStopped;
    // An accepted snapshot whose Ready never came: its store stays beside the live one
    // and is installed at start if the WAL recorded the snapshot.
    if (this.incoming?.stage === 'accepted') this.incoming.installed.reject(Errors.stopped);
  }

  private die(err: Error): void {
    if (this.stopped) return;
    this.log.error({ error: err.message }, 'member cannot continue');
    this.fatal?.(err);
  }

  // ---------------------------------------------------------------- state

  /** The key-value store; replaced when a snapshot from the leader is installed. */
  get store(): MvccStore {
    return this.storeRef;
  }

  /**
   * Runs a client read on the store. While a leader's snapshot is being swapped in, the
   * read waits for the new store instead of failing on the closed one; a read the swap
   * cut short is run again there (the new store is only newer, so a read that was
   * linearizable stays so).
   */
  async read<T>(fn: (store: MvccStore) => Promise<T>): Promise<T> {
    for (;;) {
      if (this.storeSwap) await this.storeSwap;
      const store = this.storeRef;
      try {
        return await fn(store);
      } catch (err) {
        if (store === this.storeRef && this.storeSwap === undefined) throw err;
      }
    }
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

  private get term(): number {
    return this.node.term;
  }

  get committed(): number {
    return this.node.committed;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  get pendingProposals(): number {
    return this.wait.size;
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
    this.wait.sweep(now);
    this.reads.tick(now);
    if (this.isLeader && now - this.lastLeaseCheck >= 500) {
      this.lastLeaseCheck = now;
      this.revokeExpiredLeases(now);
      void this.lessor.checkpointScheduledLeases();
    }
    if (this.isLeader && now - this.lastV2Sync >= V2_SYNC_INTERVAL_MS && this.v2store.hasTtlKeys()) {
      this.lastV2Sync = now;
      this.proposeV2((id) => encodeStoreRequest(id, { method: 'SYNC', time: nowNanos() }), this.requestTimeoutMs()).catch((err: Error) =>
        this.log.warn({ error: err.message }, 'failed to expire v2 TTL keys (SYNC)'),
      );
    }
  }

  /** What the raft driver hands this member: leader changes, read states, committed entries and snapshots. */
  private raftApplier(): RaftApplier {
    return {
      softStateChanged: (previousLead, wasLeader) => this.onSoftState(previousLead, wasLeader),
      readStates: (states) => {
        for (const rs of states) this.reads.onReadState(rs.index, rs.requestCtx);
      },
      beforeSnapshotSave: async (snap) => {
        this.acceptedSnapshot(snap);
        const why = `the leader's snapshot at index ${snap.metadata.index} is ahead of it`;
        await this.withBoltFile(() => removeEtcdDb({ boltPath: this.boltPath, dbDir: this.dbDir }, this.log, why));
      },
      applyEntries: (entries) => this.enqueueApply(() => this.applyEntries(entries)),
      applySnapshot: (snap) => {
        const received = this.acceptedSnapshot(snap);
        this.enqueueApply(() => this.applySnapshot(snap, received));
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

  // ---------------------------------------------------------------- apply

  private enqueueApply(fn: () => Promise<void>): void {
    this.applyChain = this.applyChain.then(fn).catch((err: Error) => this.die(err));
  }

  private async applyEntries(entries: readonly Entry[]): Promise<void> {
    for (const e of entries) {
      if (this.stopped) return;
      if (e.index <= this.appliedIndex) continue;
      if (e.type === EntryType.ConfChange) this.applyConfChange(e);
      else if (e.type === EntryType.Normal) await this.applyNormal(e);
      this.appliedIndex = e.index;
    }
    this.store.publish();
    await this.maybeCommitBackend(entries.length);
    this.notifyApplied();
    if (this.snapshotting === undefined && this.appliedIndex - this.snapshotIndex > this.config.snapshotCount) await this.triggerSnapshot();
  }

  /**
   * The store's LevelDB write is batched like etcd's bbolt commits (every 100 ms or 10,000
   * entries): the WAL already made the entries durable, and every LevelDB write competes
   * with the WAL's fdatasync for the disk.
   */
  private async maybeCommitBackend(applied: number): Promise<void> {
    this.uncommittedEntries += applied;
    const due = Date.now() - this.lastBackendCommit >= this.config.backendBatchIntervalMs;
    if (due || this.uncommittedEntries >= this.config.backendBatchLimit) {
      await this.commitBackend();
    } else if (this.backendCommitTimer === undefined) {
      this.backendCommitTimer = setTimeout(() => {
        this.backendCommitTimer = undefined;
        this.enqueueApply(() => this.commitBackend());
      }, this.config.backendBatchIntervalMs);
    }
  }

  private async commitBackend(): Promise<void> {
    clearTimeout(this.backendCommitTimer);
    this.backendCommitTimer = undefined;
    this.lastBackendCommit = Date.now();
    this.uncommittedEntries = 0;
    if (this.stopped) return;
    const start = performance.now();
    await this.store.commit();
    // the write lands later; if it fails (a full disk, an I/O error) the member stops at once
    // rather than at the next commit, since reads of what it held would no longer find it
    this.store.flushed().catch((err: Error) => this.die(err));
    this.onBackendCommit?.((performance.now() - start) / 1000);
  }

  private inStore(index: number): boolean {
    return index <= this.storeIndexAtOpen;
  }

  private markIndex(index: number): void {
    if (!this.inStore(index) && index > this.store.consistentIndex) this.store.setConsistentIndex(index);
  }

  private async applyNormal(e: Entry): Promise<void> {
    if (e.data.length === 0) {
      // the empty entry a new leader appends to commit its term
      this.markIndex(e.index);
      if (this.isLeader && e.term === this.term) {
        // etcd promotes the lessor here, once the entries of earlier terms (their lease
        // revokes and grants) are applied: leases get a fresh deadline under the new leader
        this.lessor.promote(this.config.electionMs);
        for (const fn of this.firstCommitInTermListeners) fn();
      }
      return;
    }
    let req: InternalRequest;
    try {
      req = decodeEntryRequest(e.data) as unknown as InternalRequest;
    } catch (err) {
      this.log.error({ index: e.index, error: (err as Error).message }, 'skipping undecodable raft entry');
      this.markIndex(e.index);
      return;
    }
    const id = toBigInt(req.header?.ID ?? req.ID, true);
    const started = performance.now();
    try {
      const result = await this.applier.apply(req, e.index);
      this.markIndex(e.index);
      this.wait.trigger(id, result);
    } catch (err) {
      this.markIndex(e.index);
      this.wait.fail(id, err);
    }
    const tookMs = performance.now() - started;
    if (tookMs > SLOW_APPLY_MS) this.warnSlowApply(req, tookMs);
  }

  /** etcd's warnOfExpensiveRequest: the line operators grep for a slow disk or a huge txn. */
  private warnSlowApply(req: InternalRequest, tookMs: number): void {
    this.slowApplies++;
    const kind = Object.keys(req).find((k) => k !== 'header' && k !== 'ID' && (req as Record<string, unknown>)[k] != null) ?? 'unknown';
    this.log.warn(
      { took: `${tookMs.toFixed(3)}ms`, 'expected-duration': `${SLOW_APPLY_MS}ms`, prefix: '', request: kind },
      'apply request took too long',
    );
  }

  private applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    let err: EtcdError | undefined;
    let member: Member | undefined;
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode:
        member = decodeMemberContext(cc.context);
        if (this.membership.isRemoved(cc.nodeId)) err = Errors.memberNotFound;
        else if (this.membership.has(cc.nodeId) && !this.membership.get(cc.nodeId)!.isLearner) err = Errors.memberExist;
        break;
      case ConfChangeType.RemoveNode:
      case ConfChangeType.UpdateNode:
        if (!this.membership.has(cc.nodeId)) err = Errors.memberNotFound;
        break;
    }
    // A refused change still goes through raft's conf change path as a no-op, as in etcd.
    this.confState = this.node.applyConfChange(err ? { ...cc, nodeId: 0n } : cc);
    this.markIndex(e.index);
    if (err) {
      this.wait.fail(cc.id, err);
      return;
    }
    switch (cc.type) {
      case ConfChangeType.AddNode:
        if (this.membership.get(cc.nodeId)?.isLearner) this.membership.promote(cc.nodeId);
        else this.membership.add(member!);
        this.peers.add(cc.nodeId, member!.peerUrls);
        break;
      case ConfChangeType.AddLearnerNode:
        this.membership.add(member!);
        this.peers.add(cc.nodeId, member!.peerUrls);
        break;
      case ConfChangeType.RemoveNode:
        this.membership.remove(cc.nodeId);
        if (cc.nodeId === this.memberId) setImmediate(() => this.removedFromCluster());
        else this.peers.remove(cc.nodeId);
        break;
      case ConfChangeType.UpdateNode: {
        const urls = decodeMemberContext(cc.context).peerUrls;
        this.membership.updatePeerUrls(cc.nodeId, urls);
        this.peers.update(cc.nodeId, urls);
        break;
      }
    }
    this.wait.trigger(cc.id, this.membership.list());
  }

  /** A snapshot raft accepted and the WAL recorded: its store, then what the snapshot itself holds. */
  private async applySnapshot(snap: Snapshot, received: AcceptedSnapshot): Promise<void> {
    try {
      await this.installStore(received.file);
      const data = readSnapshotState(snap.data, `the snapshot at index ${snap.metadata.index} from ${idHex16(received.from)}`);
      for (const m of this.membership.list()) if (m.id !== this.memberId) this.peers.remove(m.id);
      this.membership.restore(data.membership);
      for (const m of this.membership.list()) if (m.id !== this.memberId) this.peers.add(m.id, m.peerUrls);
      // etcd's snapshots leave alarms to its store's alarm bucket
      if (data.alarms !== undefined) this.alarms.restore(data.alarms);
      else this.alarms.restoreFromRecords(await this.store.alarmRecords());
      this.v2store.recover(data.v2store ?? new V2Store().save());
      this.confState = snap.metadata.confState;
      this.appliedIndex = snap.metadata.index;
      this.snapshotIndex = snap.metadata.index;
      this.snapshotsInstalled.set(received.from, (this.snapshotsInstalled.get(received.from) ?? 0) + 1);
      this.notifyApplied();
      received.installed.resolve();
    } catch (err) {
      received.installed.reject(err as Error);
      throw err;
    } finally {
      this.incoming = undefined;
    }
  }

  /** etcd's format, which real etcd restarts from; alarms are in the store's `alarm` bucket, as etcd's. */
  private snapshotData(): Uint8Array {
    return etcdSnapshotData(this.membership.snapshot(), this.v2store.save());
  }

  /** The store (everything committed to it) and the cluster, frozen now. */
  private exportState(): ExportState {
    return { view: this.store.bucketView(), cluster: this.clusterState(), consistentIndex: this.store.consistentIndex };
  }

  private withBoltFile(fn: () => Promise<void>): Promise<void> {
    const next = this.boltFileChain.then(fn);
    this.boltFileChain = next.catch(() => undefined);
    return next;
  }

  private writeBoltFile(state: ExportState, reason: ExportReason): Promise<void> {
    return this.withBoltFile(() => exportEtcdDb({ boltPath: this.boltPath, dbDir: this.dbDir }, state, reason, this.log));
  }

  /**
   * After stop(): writes etcd's bbolt file at the applied index, so that etcd's tools and
   * real etcd find the whole store there. A failure is logged: the file left is the one
   * from the last snapshot, still no older than the WAL.
   */
  async writeEtcdDbAtStop(): Promise<void> {
    try {
      await this.store.commit();
      await this.store.flushed();
      const recorded = this.node.raftStorage.snapshot().metadata.index;
      if (this.store.consistentIndex < recorded) {
        // a leader's snapshot recorded but its store not swapped in yet: the file would be
        // older than the .snap; the next start installs that store and writes the file then
        this.log.warn({ 'snapshot-index': recorded, 'consistent-index': this.store.consistentIndex }, "not writing etcd's bbolt db: the leader's snapshot is not installed yet");
        return;
      }
      this.log.info({ 'applied-index': this.appliedIndex }, "writing etcd's bbolt db before stopping");
      await this.writeBoltFile(this.exportState(), 'stop');
    } catch (err) {
      this.log.error({ path: this.boltPath, error: (err as Error).message }, "failed to write etcd's bbolt db at stop; the one from the last snapshot is left");
    }
  }

  /**
   * Freezes the state at the applied index (the store's view, the cluster, the snapshot's
   * data) and saves it in the background: exporting etcd's bbolt file takes seconds for a
   * large store, and applies must not wait for it. One snapshot at a time.
   */
  private async triggerSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    this.log.info({ 'local-member-id': idHex(this.memberId), 'local-member-applied-index': index, 'local-member-snapshot-index': this.snapshotIndex, 'local-member-snapshot-count': this.config.snapshotCount }, 'triggering snapshot');
    // The store must hold everything up to `index` before the WAL behind it may go.
    await this.commitBackend();
    await this.store.flushed();
    const frozen = { index, confState: this.confState, data: this.snapshotData(), exported: this.exportState() };
    this.snapshotting = this.saveSnapshot(frozen)
      .catch((err: Error) => this.die(err))
      .finally(() => (this.snapshotting = undefined));
  }

  private async saveSnapshot(frozen: { index: number; confState: ConfState; data: Uint8Array; exported: ExportState }): Promise<void> {
    const { index } = frozen;
    // etcd's bbolt file first: it must never be older than the newest .snap (backup/db-file.ts)
    await this.writeBoltFile(frozen.exported, 'snapshot');
    if (this.stopped) return;
    if (index <= this.node.raftStorage.snapshot().metadata.index) {
      // a leader's snapshot was installed meanwhile; it is newer
      this.log.info({ index, 'installed-index': this.node.raftStorage.snapshot().metadata.index }, 'dropped a snapshot a newer one replaced');
      return;
    }
    const snap = this.node.raftStorage.createSnapshot(index, frozen.confState, frozen.data);
    await this.node.saveSnapshot(snap);
    this.snapshotIndex = index;
    for (const fn of this.snapshotListeners) fn();
    const compactIndex = index > SNAPSHOT_CATCH_UP_ENTRIES ? index - SNAPSHOT_CATCH_UP_ENTRIES : 1;
    if (compactIndex > this.node.raftStorage.firstIndex()) {
      this.node.raftStorage.compact(compactIndex);
      this.log.info({ 'compact-index': compactIndex }, 'compacted Raft logs');
    }
  }


  private notifyApplied(): void {
    this.reads.onApplied(this.appliedIndex);
    if (this.appliedWaiters.size > 0) {
      for (const [w, index] of this.appliedWaiters) if (index <= this.appliedIndex) w();
    }
  }

  /**
   * Resolves true once this member has applied `index`, false if that does not happen
   * within `timeoutMs` (the request timeout unless given; a simple token names the index
   * that created it).
   */
  waitApplied(index: number, timeoutMs = this.requestTimeoutMs()): Promise<boolean> {
    if (index <= this.appliedIndex) return Promise.resolve(true);
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

  /** Proposes `req` (InternalRaftRequest fields) and resolves with its apply result. */
  propose<T>(req: Record<string, unknown>, timeoutMs = this.requestTimeoutMs(), id = this.reqIds.id()): Promise<T> {
    return this.proposeWithHeader({ ID: uint64(id) }, req, timeoutMs, id);
  }

  /**
   * Proposes a client's request with its credentials in the header: every member checks
   * them when it applies the entry (undefined: the client sent none, or auth is off).
   */
  proposeAs<T>(who: AuthInfo | undefined, req: Record<string, unknown>): Promise<T> {
    const id = this.reqIds.id();
    const header = who === undefined ? { ID: uint64(id) } : { ID: uint64(id), username: who.username, auth_revision: who.revision };
    return this.proposeWithHeader(header, req, this.requestTimeoutMs(), id);
  }

  private async proposeWithHeader<T>(header: { ID: Long }, req: Record<string, unknown>, timeoutMs: number, id: bigint): Promise<T> {
    if (this.stopped) throw Errors.stopped;
    if (this.committed - this.appliedIndex > MAX_GAP_BETWEEN_APPLY_AND_COMMIT) throw Errors.tooManyRequests;
    const data = InternalRaftRequest.encode({ header, ...req }).finish();
    if (data.length > this.config.maxRequestBytes) throw Errors.requestTooLarge;
    const deadline = Date.now() + timeoutMs;
    await this.awaitReachableLeader(deadline);
    const result = this.wait.register<T>(id, deadline, () => {
      this.proposalsFailed++;
      return this.leader === 0n ? Errors.timeoutDueToLeaderFail : Errors.timeout;
    });
    try {
      this.node.propose(data);
    } catch (err) {
      this.proposalsFailed++;
      this.wait.fail(id, this.leader === 0n ? Errors.noLeader : Errors.timeout);
      this.log.debug({ error: (err as Error).message }, 'proposal dropped');
    }
    return result;
  }

  /** Proposes a v2 request, which carries the proposal's ID itself (as etcd's do). */
  private proposeV2(make: (id: bigint) => V2Request, timeoutMs: number): Promise<unknown> {
    const id = this.reqIds.id();
    return this.propose({ v2: make(id) }, timeoutMs, id);
  }

  /**
   * A v2 API write (or quorum read) through raft; resolves with its event once applied
   * here, or rejects with the store's V2Error.
   */
  async proposeV2Store(r: StoreRequest): Promise<V2Event> {
    return (await this.proposeV2((id) => encodeStoreRequest(id, r), this.requestTimeoutMs())) as V2Event;
  }

  /** Sets the cluster version through raft (the leader's ClusterVersionMonitor decides it). */
  async proposeClusterVersion(version: string): Promise<void> {
    await this.proposeV2((id) => clusterVersionRequest(id, version), this.requestTimeoutMs());
  }

  /** Proposes a membership change; resolves with the members after it applied. */
  async proposeConfChange(type: ConfChangeType, nodeId: bigint, context: Uint8Array): Promise<Member[]> {
    if (this.stopped) throw Errors.stopped;
    const id = this.reqIds.id();
    const deadline = Date.now() + this.requestTimeoutMs();
    await this.awaitReachableLeader(deadline);
    const result = this.wait.register<Member[]>(id, deadline, () => Errors.timeout);
    try {
      this.node.proposeConfChange({ id, type, nodeId, context });
    } catch (err) {
      this.wait.fail(id, this.leader === 0n ? Errors.noLeader : Errors.timeout);
      this.log.debug({ error: (err as Error).message }, 'conf change dropped');
    }
    return result;
  }

  /**
   * Holds a proposal while no member leads, as etcd's raft node does (it takes no
   * proposals until a leader is known), and also while this follower's stream to the
   * leader is down (or not up yet, on a member that just joined): raft would forward
   * the proposal into a dropped message and the client would wait out its whole
   * timeout for nothing. Held here, before raft sees it, a proposal cannot be applied
   * twice; it goes to whichever leader is reachable first.
   * Past the deadline it fails as etcd's does: DeadlineExceeded without a leader, and
   * "connection lost" with an unreachable one.
   */
  private async awaitReachableLeader(deadline: number): Promise<void> {
    for (;;) {
      if (this.stopped) throw Errors.stopped;
      const lead = this.leader;
      if (lead !== 0n && (lead === this.memberId || this.peers.canSendTo(lead))) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.proposalsFailed++;
        throw lead === 0n ? Errors.proposalDeadline : Errors.timeoutDueToConnectionLost;
      }
      // a leader change wakes the wait; a stream coming back is seen on the next heartbeat
      const wait = lead === 0n ? left : Math.min(left, this.config.heartbeatMs);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          off();
          this.stopping.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        const off = this.onLeaderChange(done);
        this.stopping.signal.addEventListener('abort', done);
      });
    }
  }

  private get electionTicks(): number {
    return Math.max(1, Math.floor(this.config.electionMs / this.config.heartbeatMs));
  }

  /** etcd: 5 s plus twice the election timeout. */
  requestTimeoutMs(): number {
    return 5000 + 2 * this.config.electionMs;
  }

  private async publish(): Promise<void> {
    while (!this.stopped) {
      if (this.leader === 0n) {
        await new Promise<void>((resolve) => {
          const off = this.onLeaderChange(() => {
            off();
            resolve();
          });
          this.failed.then(() => resolve(), () => resolve());
        });
        continue;
      }
      try {
        // Raft may drop a proposal silently (e.g. before this member knows it is one):
        // retry on a short period rather than the full request timeout.
        await this.proposeV2(
          (id) => attributesRequest(id, this.memberId, this.config.name, this.config.advertiseClientUrls),
          Math.max(1000, 2 * this.config.electionMs),
        );
        this.log.info(
          { 'local-member-id': idHex(this.memberId), 'cluster-id': idHex(this.clusterId) },
          `published {Name:${this.config.name} ClientURLs:[${this.config.advertiseClientUrls.join(' ')}]} to cluster ${idHex(this.clusterId)}`,
        );
        this.publishedResolve();
        return;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ error: (err as Error).message }, 'failed to publish local member to cluster through raft');
        await new Promise((r) => setTimeout(r, Math.min(500, this.config.electionMs)));
      }
    }
  }

  // ---------------------------------------------------------------- linearizable reads

  /** Resolves once this member has applied everything committed before the call (ReadIndex). */
  linearizableReadNotify(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.stopped);
    return this.reads.read();
  }

  // ---------------------------------------------------------------- leases

  private revokeExpiredLeases(now: number): void {
    const budget = Math.max(1, Math.floor(LEASE_REVOKE_RATE / 2));
    for (const id of this.lessor.expired(budget)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      // as root, like etcd's WithRoot: expiry must delete the lease's keys whoever wrote them
      const root = this.auth.enabled ? { username: ROOT_USER, revision: this.auth.revision } : undefined;
      this.proposeAs(root, { lease_revoke: { ID: int64(id) } }).then(() => void this.leasesExpired++, (err: Error) => {
        this.revoking.delete(id);
        this.log.warn({ 'lease-id': idHex16(id), error: err.message, at: now }, 'failed to revoke lease');
      });
    }
  }

  // ---------------------------------------------------------------- leader-only requests

  private forwarder: ((leader: bigint, timeoutMs: number) => LeaderRpc) | undefined;

  /** How a follower reaches the leader's peer port (set by startEtcd once the transport exists). */
  setForwarder(fn: (leader: bigint, timeoutMs: number) => LeaderRpc): void {
    this.forwarder = fn;
  }

  /** What this member answers as leader, for itself and for forwarding followers. */
  readonly leaderRpc: LeaderRpc = {
    leaseRenew: async (id) => {
      // a new leader's lessor is primary once it applied its term's first entry: until then
      // the renewal is asked again (over the peer port etcd answers "not a primary lessor")
      if (!this.isLeader || !this.lessor.isPrimary) throw Errors.leaderChanged;
      return this.lessor.renew(id);
    },
    leaseTimeToLive: async (id, keys) => {
      if (!this.isLeader) throw Errors.leaderChanged;
      const lease = this.lessor.lookup(id);
      if (!lease) return { ttl: -1, grantedTtl: 0, keys: [] };
      return { ttl: this.lessor.remaining(id), grantedTtl: lease.ttl, keys: keys ? await this.attachedKeys(id) : [] };
    },
    memberPromote: async (id) => {
      if (!this.isLeader) throw Errors.leaderChanged;
      const existing = this.membership.validateExisting(id);
      if (!existing.isLearner) throw Errors.memberNotLearner;
      this.checkLearnerReady(id);
      await this.proposeConfChange(ConfChangeType.AddNode, id, encodeMemberContext({ ...existing, isLearner: false }));
      this.learnerPromotions++;
    },
  };

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

  /** Keys still attached to the lease; stale attachments are dropped on the way. */
  private async attachedKeys(id: bigint): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const k of this.lessor.attached(id)) {
      const key = Buffer.from(k, 'latin1');
      const r = await this.read((store) => store.range({ key }));
      if (r.kvs[0]?.lease === id) out.push(key);
      else this.lessor.detach(id, k);
    }
    return out.sort(Buffer.compare);
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

  /** A learner may be promoted once its log is within 90% of the leader's (etcd's readyPercent). */
  private checkLearnerReady(id: bigint): void {
    const progress = this.node.status().progress;
    const learner = progress?.get(id);
    const leaderMatch = progress?.get(this.memberId)?.match ?? this.committed;
    if (!learner || learner.match < leaderMatch * LEARNER_READY_PERCENT) throw Errors.learnerNotReady;
  }

  /** The lessor's checkpoints as raft entries; a failure is logged, as etcd ignores it. */
  private readonly proposeLeaseCheckpoints = async (checkpoints: LeaseCheckpoint[]): Promise<void> => {
    try {
      await this.propose({ lease_checkpoint: { checkpoints: checkpoints.map((c) => ({ ID: int64(c.id), remaining_TTL: c.remainingTtl })) } });
    } catch (err) {
      this.log.warn({ error: (err as Error).message, leases: checkpoints.length }, 'failed to checkpoint lease TTLs');
    }
  };

  // ---------------------------------------------------------------- leadership

  transferLeadership(to: bigint): void {
    this.node.transferLeader(to);
  }

  raftStatus(): ReturnType<RawNode['status']> {
    return this.node.status();
  }
}

/** Streams the first `size` bytes of `file`, then closes it (also when the reader stops early). */
async function* readWhole(file: FileHandle, size: number): AsyncGenerator<Buffer> {
  try {
    for (let off = 0; off < size; ) {
      const { bytesRead, buffer } = await file.read(Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, size - off)), 0, Math.min(READ_CHUNK_BYTES, size - off), off);
      if (bytesRead === 0) throw new Error(`the database ended after ${off} of its ${size} bytes`);
      off += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}
