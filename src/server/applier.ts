// The apply side of a member (etcd's applyAll): committed entries and leader snapshots,
// in raft order, into the store, the lessor, the membership, the alarms and the v2 store
// (requests through apply.ts, conf changes through conf-change.ts); the store's batched
// LevelDB commits; and the snapshots the member takes every --snapshot-count entries or
// ships to a follower. Everything it touches is handed in, so EtcdServer wires it to the
// running member and the simulator runs the same code on a virtual clock.

import type { Logger } from 'pino';
import { EntryType, type ConfChange, type ConfState, type Entry, type Message, type Snapshot, withSnapshot } from '../raftpb/types.js';
import { decodeConfChange } from '../raftpb/codec.js';
import type { MemoryStorage } from '../raft/index.js';
import { type BucketView, MvccStore, type StoreReader } from '../mvcc/index.js';
import { type ClusterState, clusterStateOf, ExportAbortedError } from './backup/etcd-db.js';
import { type EtcdDbWriter, type ExportState, exportMarkOf, exportStateOf } from './backup/db-file.js';
import { ExportThread } from './backup/export-thread.js';
import { etcdSnapshotData } from './backup/etcd-snapshot-data.js';
import { readSnapshotState } from './import/snapshot-data.js';
import type { AlarmStore } from './alarms.js';
import { REAPPLIED, RequestApplier } from './apply.js';
import { type AuthStore, readAuthState } from './auth/store.js';
import { idHex, idHex16 } from './ids.js';
import { type Lessor, restoreLessor } from './lessor.js';
import type { LiveStore } from './live-store.js';
import type { Membership } from './membership.js';
import { applyToMembership, confChangeRefusal, recordInV2Store } from './conf-change.js';
import { type ApplyResult, type EntryRequest, decodeEntryRequest, entryRequestKind } from './raft-request.js';
import { installReceivedDb } from './received-db.js';
import type { ReceivedStore } from './snapshot-inbox.js';
import { V2Store } from './v2store/index.js';
import type { WaitRegistry } from './wait.js';
import { formatDuration } from '../wal/logger.js';

/**
 * The store size from which etcd's bbolt file before a snapshot is written by an export
 * thread: its export costs the member's thread about a quarter second, more than
 * starting the thread does.
 */
const THREAD_EXPORT_BYTES = 32 * 1024 * 1024;

/** The timers the applier batches store commits on. */
export interface ApplierClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const nodeApplierClock: ApplierClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** What the applier needs of the raft driver (RaftNode). */
export interface ApplierRaft {
  /** raft's in-memory log: snapshots are recorded in it and it is compacted behind them */
  readonly raftStorage: MemoryStorage;
  readonly isLeader: boolean;
  readonly term: number;
  applyConfChange(cc: ConfChange): ConfState;
  /** records a snapshot in the WAL behind the writes already queued */
  saveSnapshot(snap: Snapshot): Promise<void>;
}

/** The peer transport's view of the membership, kept in step as conf changes apply. */
export interface ApplierPeers {
  add(id: bigint, urls: readonly string[]): void;
  update(id: bigint, urls: readonly string[]): void;
  remove(id: bigint): void;
}

export interface ApplierConfig {
  readonly snapshotCount: number;
  /** --experimental-warning-apply-duration: an entry applied slower is logged and counted (etcd_server_slow_apply_total) */
  readonly warningApplyMs: number;
  /** longest a store write waits to be batched with later ones (etcd's backend batch interval) */
  readonly backendBatchIntervalMs: number;
  /** applied entries after which the store is written at once (etcd's backend batch limit) */
  readonly backendBatchLimit: number;
  readonly maxTxnOps: number;
  readonly electionMs: number;
  /**
   * etcd's SnapshotCatchUpEntries (--experimental-snapshot-catchup-entries, 5,000 by
   * default): entries kept behind a snapshot. The simulator and the end-to-end tests set it
   * low, so that lagging and restarted members install snapshots after a few hundred writes.
   */
  readonly snapshotCatchUpEntries: number;
}

/** What the member hears of the apply side. */
export interface ApplierEvents {
  /** everything up to `index` is applied */
  applied(index: number): void;
  /** as leader, the first entry of its term is applied (etcd's FirstCommitInTermNotify) */
  firstCommitInTerm(): void;
  /** a snapshot this member took is recorded (old WAL and snap files may go) */
  snapshotSaved(): void;
  /** this member applied its own removal */
  removed(): void;
  /** a lease revoke was applied (the leader stops tracking its pending revoke) */
  leaseRevoked(id: bigint): void;
  /** the duration of a store commit (etcd_disk_backend_commit_duration_seconds) */
  backendCommitted(seconds: number): void;
  /** the apply side cannot go on (a store write failed): the member must stop */
  fatal(err: Error): void;
}

export interface ApplierParts {
  readonly memberId: bigint;
  readonly config: ApplierConfig;
  readonly raft: ApplierRaft;
  readonly store: LiveStore;
  readonly lessor: Lessor;
  readonly membership: Membership;
  readonly alarms: AlarmStore;
  readonly auth: AuthStore;
  readonly v2store: V2Store;
  readonly peers: ApplierPeers;
  /** proposals waiting for their entry's result */
  readonly wait: WaitRegistry<ApplyResult>;
  readonly log: Logger;
  readonly clock: ApplierClock;
  /** etcd's bbolt file, kept no older than the newest .snap */
  readonly dbFile: EtcdDbWriter;
  /** where the LevelDB store lives (a leader's store is swapped in there) */
  readonly dbDir: string;
  /** index and conf state of the snapshot the member started from */
  readonly snapshotIndex: number;
  readonly confState: ConfState;
  readonly events: ApplierEvents;
}

export class Applier {
  private readonly p: ApplierParts;
  private readonly requests: RequestApplier;
  private appliedIndex: number;
  private snapshotIndex: number;
  private confState: ConfState;
  /** entries at or below this index are already in the store (consistent index at open) */
  private storeIndexAtOpen: number;
  private chain: Promise<void> = Promise.resolve();
  /** a snapshot being saved in the background (triggerSnapshot), one at a time */
  private snapshotting: Promise<void> | undefined;
  /** aborted by stop(): a snapshot's export in progress is given up (the stop writes the file anew) */
  private readonly stopping = new AbortController();
  private uncommittedEntries = 0;
  private lastBackendCommit = 0;
  private backendCommitTimer: unknown;
  private stopped = false;
  /** requests whose apply took longer than config.warningApplyMs (etcd_server_slow_apply_total) */
  slowApplies = 0;
  /** leader snapshots installed, by sending member (etcd_network_snapshot_receive_success) */
  readonly snapshotsInstalled = new Map<bigint, number>();

  constructor(parts: ApplierParts) {
    this.p = parts;
    this.appliedIndex = parts.snapshotIndex;
    this.snapshotIndex = parts.snapshotIndex;
    this.confState = parts.confState;
    this.storeIndexAtOpen = parts.store.current.consistentIndex;
    this.requests = new RequestApplier({
      store: () => this.store,
      lessor: parts.lessor,
      membership: parts.membership,
      alarms: parts.alarms,
      auth: parts.auth,
      v2store: parts.v2store,
      log: parts.log,
      storeIndexAtOpen: () => this.storeIndexAtOpen,
      onLeaseRevoked: (id) => parts.events.leaseRevoked(id),
    });
  }

  get applied(): number {
    return this.appliedIndex;
  }

  private get store(): MvccStore {
    return this.p.store.current;
  }

  // ---------------------------------------------------------------- the chain

  /** Committed entries, applied after everything handed over before. */
  applyEntries(entries: readonly Entry[]): void {
    this.enqueue(() => this.applyBatch(entries));
  }

  /** A snapshot raft accepted and the WAL recorded; resolves once its store is installed. */
  applySnapshot(snap: Snapshot, received: ReceivedStore): Promise<void> {
    // a store that cannot be installed leaves the member behind raft: it stops
    return this.onChain(() => this.installSnapshot(snap, received), true);
  }

  /** Runs `fn` on the chain once everything applied so far is written out to the store. */
  atCommittedState<T>(fn: () => T): Promise<T> {
    return this.onChain(async () => {
      await this.writeOutStaged();
      return fn();
    }, false);
  }

  /** Runs `fn` on the chain for a caller that waits for its outcome. */
  private onChain<T>(fn: () => Promise<T>, failureIsFatal: boolean): Promise<T> {
    return new Promise((resolve, reject) => {
      this.enqueue(async () => {
        try {
          resolve(await fn());
        } catch (err) {
          reject(err as Error);
          if (failureIsFatal) throw err;
        }
      });
    });
  }

  /**
   * Settles once the chain has nothing left to do, a snapshot being saved is recorded and
   * the store's writes have landed: what the simulator waits for between turns, so that
   * what the apply side does to raft (conf changes, snapshots, log compaction) lands at the
   * same turn in every run of a seed, whatever the disk's timing.
   */
  async idle(): Promise<void> {
    for (let seen; seen !== this.chain; ) {
      seen = this.chain;
      await seen;
      await this.snapshotting;
      await this.store.flushed().catch(() => undefined);
    }
  }

  /** Applied entries wait in the store's batch for the next commit. */
  get hasStagedEntries(): boolean {
    return this.uncommittedEntries > 0;
  }

  /** Stops applying; resolves once the apply under way and a snapshot being saved are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.p.clock.clearTimeout(this.backendCommitTimer);
    this.backendCommitTimer = undefined;
    await this.chain.catch(() => undefined);
    await this.snapshotting;
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: Error) => this.p.events.fatal(err));
  }

  private async applyBatch(entries: readonly Entry[]): Promise<void> {
    for (const e of entries) {
      if (this.stopped) return;
      if (e.index <= this.appliedIndex) continue;
      if (e.type === EntryType.ConfChange) this.applyConfChange(e);
      else if (e.type === EntryType.Normal) {
        const applying = this.applyNormal(e);
        if (applying !== undefined) await applying;
      }
      this.appliedIndex = e.index;
    }
    this.store.publish();
    await this.maybeCommitBackend(entries.length);
    this.p.events.applied(this.appliedIndex);
    if (this.snapshotting === undefined && this.appliedIndex - this.snapshotIndex > this.p.config.snapshotCount) await this.triggerSnapshot();
  }

  // ---------------------------------------------------------------- store commits

  /**
   * The store's LevelDB write is batched like etcd's bbolt commits (every 100 ms or 10,000
   * entries): the WAL already made the entries durable, and every LevelDB write competes
   * with the WAL's fdatasync for the disk.
   */
  private async maybeCommitBackend(applied: number): Promise<void> {
    this.uncommittedEntries += applied;
    const { backendBatchIntervalMs, backendBatchLimit } = this.p.config;
    const due = this.p.clock.now() - this.lastBackendCommit >= backendBatchIntervalMs;
    if (due || this.uncommittedEntries >= backendBatchLimit) {
      await this.commitBackend();
    } else if (this.backendCommitTimer === undefined) {
      this.backendCommitTimer = this.p.clock.setTimeout(() => {
        this.backendCommitTimer = undefined;
        this.enqueue(() => this.commitBackend());
      }, backendBatchIntervalMs);
    }
  }

  /**
   * Writes out what is applied but still staged, so that a view of the store frozen after
   * it holds everything applied. A snapshot's store must: the WAL before a recorded
   * snapshot goes, and a member installing a shipped one resumes after its index, so
   * staged writes missing from either are lost for good. (Protected so the simulator can
   * prove, with a variant that skips it, that its seeds notice.)
   */
  protected writeOutStaged(): Promise<void> {
    return this.commitBackend();
  }

  private async commitBackend(): Promise<void> {
    this.p.clock.clearTimeout(this.backendCommitTimer);
    this.backendCommitTimer = undefined;
    this.lastBackendCommit = this.p.clock.now();
    this.uncommittedEntries = 0;
    if (this.stopped) return;
    const start = performance.now();
    await this.store.commit();
    // the write lands later; if it fails (a full disk, an I/O error) the member stops at once
    // rather than at the next commit, since reads of what it held would no longer find it
    this.store.flushed().catch((err: Error) => this.p.events.fatal(err));
    this.p.events.backendCommitted((performance.now() - start) / 1000);
  }

  // ---------------------------------------------------------------- entries

  private markIndex(index: number): void {
    if (index > this.storeIndexAtOpen && index > this.store.consistentIndex) this.store.setConsistentIndex(index);
  }

  /**
   * Applies a normal entry and answers its proposer; a promise only while a request's
   * apply is asynchronous (a put without a lease is not, RequestApplier.apply).
   */
  private applyNormal(e: Entry): Promise<void> | undefined {
    if (e.data.length === 0) {
      // the empty entry a new leader appends to commit its term
      this.markIndex(e.index);
      if (this.p.raft.isLeader && e.term === this.p.raft.term) this.p.events.firstCommitInTerm();
      return undefined;
    }
    let entry: EntryRequest;
    try {
      // A restart's raft hands back every entry after the snapshot: those the store holds
      // need no decoding unless they apply again
      if (e.index <= this.storeIndexAtOpen && !REAPPLIED.has(entryRequestKind(e.data))) return undefined;
      entry = decodeEntryRequest(e.data);
    } catch (err) {
      this.p.log.error({ index: e.index, error: (err as Error).message }, 'skipping undecodable raft entry');
      this.markIndex(e.index);
      return undefined;
    }
    const started = performance.now();
    let applied: ApplyResult | undefined | Promise<ApplyResult | undefined>;
    try {
      applied = this.requests.apply(entry, e.index);
    } catch (err) {
      this.settle(entry, e.index, started, false, err);
      return undefined;
    }
    if (!(applied instanceof Promise)) return this.settle(entry, e.index, started, true, applied);
    return applied.then(
      (result) => this.settle(entry, e.index, started, true, result),
      (err: unknown) => this.settle(entry, e.index, started, false, err),
    );
  }

  /** The entry is applied (`ok`: its result, if any, in `value`) or failed (the error): its proposer hears. */
  private settle(entry: EntryRequest, index: number, started: number, ok: boolean, value: unknown): undefined {
    this.markIndex(index);
    if (!ok) this.p.wait.fail(entry.id, value);
    else if (value !== undefined) this.p.wait.trigger(entry.id, value as ApplyResult);
    const tookMs = performance.now() - started;
    if (tookMs > this.p.config.warningApplyMs) this.warnSlowApply(entry, tookMs);
    return undefined;
  }

  /** etcd's warnOfExpensiveRequest: the line operators grep for a slow disk or a huge txn. */
  private warnSlowApply(entry: EntryRequest, tookMs: number): void {
    this.slowApplies++;
    this.p.log.warn(
      { took: `${tookMs.toFixed(3)}ms`, 'expected-duration': formatDuration(this.p.config.warningApplyMs / 1000), prefix: '', request: entry.request.kind },
      'apply request took too long',
    );
  }

  private applyConfChange(e: Entry): void {
    const { membership, wait } = this.p;
    const cc = decodeConfChange(e.data);
    const refused = confChangeRefusal(cc, membership);
    this.confState = this.p.raft.applyConfChange(refused ? { ...cc, nodeId: 0n } : cc);
    this.markIndex(e.index);
    if (refused) {
      wait.fail(cc.id, refused);
      return;
    }
    applyToMembership(cc, membership, this.p.peers, this.p.memberId, () => this.p.events.removed());
    recordInV2Store(cc, membership, this.p.v2store);
    wait.trigger(cc.id, { kind: 'confChange', result: membership.list() });
  }

  // ---------------------------------------------------------------- a leader's snapshot

  /** Its store, then what the snapshot itself holds. */
  private async installSnapshot(snap: Snapshot, received: ReceivedStore): Promise<void> {
    const { membership, peers, memberId } = this.p;
    await this.installStore(received.file);
    const data = readSnapshotState(snap.data, `the snapshot at index ${snap.metadata.index} from ${idHex16(received.from)}`);
    for (const m of membership.list()) if (m.id !== memberId) peers.remove(m.id);
    membership.restore(data.membership);
    for (const m of membership.list()) if (m.id !== memberId) peers.add(m.id, m.peerUrls);
    // etcd's snapshots leave alarms to its store's alarm bucket
    if (data.alarms !== undefined) this.p.alarms.restore(data.alarms);
    else this.p.alarms.restoreFromRecords(await this.store.alarmRecords());
    this.p.v2store.recover(data.v2store ?? new V2Store().save());
    this.confState = snap.metadata.confState;
    this.appliedIndex = snap.metadata.index;
    this.snapshotIndex = snap.metadata.index;
    this.snapshotsInstalled.set(received.from, (this.snapshotsInstalled.get(received.from) ?? 0) + 1);
    this.p.events.applied(this.appliedIndex);
  }

  /**
   * Swaps the store received with an accepted snapshot in for the live one. Reads wait
   * for the new store meanwhile (LiveStore.read); open watch streams stay, their watchers
   * catch up from the new store's history (or learn it was compacted).
   */
  private async installStore(received: string): Promise<void> {
    const { log, lessor, dbDir, config } = this.p;
    await this.p.store.swap(async (old) => {
      const restored = await installReceivedDb(dbDir, received, log.child({ caller: 'snap' }));
      return MvccStore.open({ dir: dbDir, maxTxnOps: config.maxTxnOps, logger: log.child({ caller: 'mvcc' }), replacing: old, restored });
    });
    this.storeIndexAtOpen = this.store.consistentIndex;
    lessor.reset();
    await restoreLessor(lessor, this.store);
    this.p.auth.restore(await readAuthState(this.store));
    if (this.p.raft.isLeader) lessor.promote(config.electionMs);
    log.info({ 'consistent-index': this.storeIndexAtOpen, revision: this.store.currentRevision }, 'installed the store from a leader snapshot');
  }

  // ---------------------------------------------------------------- snapshots this member takes or sends

  /**
   * Freezes the state at the applied index (the store's view, the cluster, the snapshot's
   * data) and saves it in the background: exporting etcd's bbolt file takes seconds for a
   * large store, and applies must not wait for it. One snapshot at a time.
   */
  private async triggerSnapshot(etcdDb: 'amortised' | 'start' = 'amortised'): Promise<void> {
    const index = this.appliedIndex;
    this.p.log.info({ 'local-member-id': idHex(this.p.memberId), 'local-member-applied-index': index, 'local-member-snapshot-index': this.snapshotIndex, 'local-member-snapshot-count': this.p.config.snapshotCount }, 'triggering snapshot');
    // The store must hold everything up to `index` before the WAL behind it may go.
    await this.writeOutStaged();
    await this.store.flushed();
    const thread = await this.exportThreadFor(etcdDb);
    const frozen = { index, confState: this.confState, data: this.snapshotData(), exported: this.exportState(thread), etcdDb };
    this.snapshotting = this.saveSnapshot(frozen)
      .catch((err: Error) => {
        if (err instanceof ExportAbortedError) this.p.log.info({ index }, "gave up the snapshot's export of etcd's bbolt db: the member is stopping");
        else this.p.events.fatal(err);
      })
      .finally(() => (this.snapshotting = undefined));
  }

  private async saveSnapshot(frozen: { index: number; confState: ConfState; data: Uint8Array; exported: ExportState; etcdDb: 'amortised' | 'start' }): Promise<void> {
    const { index } = frozen;
    const { raft, log, dbFile } = this.p;
    // etcd's bbolt file first: it must never be older than the newest .snap (backup/db-file.ts)
    const signal = this.stopping.signal;
    if (frozen.etcdDb === 'start') await dbFile.write(frozen.exported, 'start', signal);
    else await dbFile.beforeSnapshot(frozen.exported, signal);
    if (this.stopped) return;
    if (index <= raft.raftStorage.snapshot().metadata.index) {
      // a leader's snapshot was installed meanwhile; it is newer
      log.info({ index, 'installed-index': raft.raftStorage.snapshot().metadata.index }, 'dropped a snapshot a newer one replaced');
      return;
    }
    const snap = raft.raftStorage.createSnapshot(index, frozen.confState, frozen.data);
    await raft.saveSnapshot(snap);
    this.snapshotIndex = index;
    this.p.events.snapshotSaved();
    const catchUp = this.p.config.snapshotCatchUpEntries;
    const compactIndex = index > catchUp ? index - catchUp : 1;
    if (compactIndex > raft.raftStorage.firstIndex()) {
      raft.raftStorage.compact(compactIndex);
      log.info({ 'compact-index': compactIndex }, 'compacted Raft logs');
    }
  }

  /**
   * A MsgSnap describing what is applied now (etcd's createMergedSnapshotMessage), and the
   * store to ship with it, frozen once what is staged is written out: the view holds what
   * LevelDB has, so nothing may be applied but unwritten. The raft snapshot says the
   * store's index, its term and the current configuration, so a member added after the
   * last snapshot finds itself in it. The caller closes the view; `reader` (registered
   * with the store) takes its snapshot at the same moment (Backend.bucketView).
   */
  snapshotToSend(m: Message, reader?: StoreReader): Promise<{ message: Message; state: { view: BucketView; cluster: ClusterState } }> {
    return this.atCommittedState(() => ({ message: this.mergedSnapshotMessage(m), state: { view: this.store.bucketView(reader), cluster: this.clusterState() } }));
  }

  private mergedSnapshotMessage(m: Message): Message {
    // The store's own consistent index, not appliedIndex: between a store write and the
    // bookkeeping after it the store may already hold one more entry (never a conf change,
    // whose apply is synchronous, so the configuration below still matches).
    const index = this.store.consistentIndex;
    let term: number;
    try {
      term = this.p.raft.raftStorage.term(index);
    } catch {
      return m; // that part of the log is gone: send the snapshot raft chose
    }
    return withSnapshot(m, { data: this.snapshotData(), metadata: { index, term, confState: this.confState } });
  }

  /** A worker thread on the live store, to export a view taken with it (backupState, snapshotToSend) off this thread. */
  startExportThread(): Promise<ExportThread> {
    return ExportThread.start(this.store);
  }

  /** The store and the cluster at the applied index, for a backup in etcd's format. The caller closes the view. */
  backupState(reader?: StoreReader): Promise<{ view: BucketView; cluster: ClusterState }> {
    return this.atCommittedState(() => ({ view: this.store.bucketView(reader), cluster: this.clusterState() }));
  }

  /**
   * Once the member serves, when it started without etcd's bbolt file: a snapshot at the
   * applied index, which writes the file first whatever its size (reason 'start'). In the
   * background, as every snapshot: a large store's export takes minutes, which neither
   * the start nor the clients wait for. A snapshot rather than the file alone: `etcdctl
   * backup` drops conf changes and publish entries from the WAL it copies and numbers the
   * rest anew, so a file whose consistent index lies between the newest .snap and the last
   * entry would hide the entries that moved down to it; at a .snap's index it hides none.
   */
  async snapshotForMissingEtcdDb(): Promise<void> {
    for (;;) {
      await this.snapshotting;
      const settled = await this.onChain(async () => {
        if (this.stopped || this.p.dbFile.present) return true;
        // another snapshot started meanwhile: the file is judged after it
        if (this.snapshotting !== undefined) return false;
        await this.triggerSnapshot('start');
        return true;
      }, false);
      if (settled) return;
    }
  }

  /**
   * After stop() and the store's seal (which wrote everything applied out to it): writes
   * etcd's bbolt file at the applied index, so that etcd's tools and real etcd find the
   * whole store there. A failure is logged: the file left is the one from the last
   * snapshot, still no older than the WAL.
   */
  async writeEtcdDbAtStop(): Promise<void> {
    const { log, dbFile, raft } = this.p;
    try {
      // a store that failed a write is left as it is: its file stays the last snapshot's
      await this.store.flushed();
      const recorded = raft.raftStorage.snapshot().metadata.index;
      if (this.store.consistentIndex < recorded) {
        // a leader's snapshot recorded but its store not swapped in yet: the file would be
        // older than the .snap; the next start installs that store and writes the file then
        log.warn({ 'snapshot-index': recorded, 'consistent-index': this.store.consistentIndex }, "not writing etcd's bbolt db: the leader's snapshot is not installed yet");
        return;
      }
      log.info({ 'applied-index': this.appliedIndex }, "writing etcd's bbolt db before stopping");
      await dbFile.write(this.exportState(), 'stop');
    } catch (err) {
      log.error({ path: dbFile.path, error: (err as Error).message }, "failed to write etcd's bbolt db at stop; the one from the last snapshot is left");
    }
  }

  /** etcd's format, which real etcd restarts from; alarms are in the store's `alarm` bucket, as etcd's. */
  private snapshotData(): Uint8Array {
    return etcdSnapshotData(this.p.membership.snapshot(), this.p.v2store.save());
  }

  /** The membership and cluster version as etcd's backend records them. */
  private clusterState(): ClusterState {
    return clusterStateOf(this.p.membership);
  }

  /**
   * The store (everything committed to it) and the cluster, frozen now; with `thread`, for
   * it to write, unless it fails to take its snapshot: then without, and closed.
   */
  private exportState(thread?: ExportThread): ExportState {
    if (thread !== undefined) {
      try {
        return exportStateOf(this.store, this.clusterState(), thread);
      } catch (err) {
        this.p.log.warn({ error: (err as Error).message }, "the export thread took no snapshot; the member's thread writes etcd's bbolt db");
        void thread.close();
      }
    }
    return exportStateOf(this.store, this.clusterState());
  }

  /**
   * A thread to write etcd's bbolt file before this snapshot, when a large store's will be
   * written: at millions of keys the export takes seconds, which the member's thread
   * spends serving. The apply chain waits for the thread's start (~0.1 s), once per
   * doubling of the store (db-file.ts). A small store's export costs the member's thread
   * less than that, and it writes the file itself; so it does when no thread starts.
   */
  private async exportThreadFor(etcdDb: 'amortised' | 'start'): Promise<ExportThread | undefined> {
    const mark = exportMarkOf(this.store);
    if (mark.storeBytes < THREAD_EXPORT_BYTES || (etcdDb === 'amortised' && !this.p.dbFile.exportsBeforeSnapshot(mark))) return undefined;
    try {
      return await ExportThread.start(this.store);
    } catch (err) {
      this.p.log.warn({ error: (err as Error).message }, "could not start the export thread; the member's thread writes etcd's bbolt db");
      return undefined;
    }
  }
}
