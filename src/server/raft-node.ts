// RaftNode: the driver of one member's raft state machine (etcd's raftNode). It ticks,
// turns each Ready into disk writes, messages and applies in etcd's order, and
// advances. Everything it touches outside raft is injected — the clock, the storage
// (WAL and snapshotter), the transport and the applier — so production wires Node
// timers, the real WAL on the real disk and the peer transport, and the simulator
// wires a virtual clock, the real WAL on a MemDisk and its simulated network: both
// run this code.

import { type ConfChange, type ConfState, type Entry, EntryType, type HardState, type Message, type Snapshot } from '../raftpb/types.js';
import type { MemoryStorage, RawNode, Ready, ReadState, StateType, Status } from '../raft/index.js';
import { probe } from './probe.js';

export type RaftRole = StateType;

/** The timers the driver runs on. */
export interface RaftClock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(timer: unknown): void;
  /** runs fn once the current turn of work is done (Node's setImmediate) */
  setImmediate(fn: () => void): void;
}

export const nodeClock: RaftClock = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout),
  setImmediate: (fn) => void setImmediate(fn),
};

/** Where a Ready is made durable (etcd's etcdserver Storage): the WAL and the snapshotter. */
export interface RaftStorage {
  /** Appends the entries and the hard state; durable once this resolves when mustSync. */
  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void>;
  /** Writes the snapshot's file, then its record in the WAL (the WAL may resume from it only once the file exists). */
  saveSnap(snap: Snapshot): Promise<void>;
  /** WAL files wholly before `index` are no longer needed (a snapshot covers them). */
  release(index: number): Promise<void>;
}

/** How raft messages leave this member. */
export interface RaftTransport {
  send(msgs: readonly Message[]): void;
}

/** The member's side of the driver: what it hears of each Ready besides the disk and the wire. */
export interface RaftApplier {
  /** The leader or this member's role changed; the driver's lead and role are already updated. */
  softStateChanged(previousLead: bigint, wasLeader: boolean): void;
  readStates(states: readonly ReadState[]): void;
  /**
   * A snapshot from the leader, called in WAL order before it is saved: throws unless
   * this member can install it, and clears what must not outlive the state it replaces.
   */
  beforeSnapshotSave(snap: Snapshot): Promise<void>;
  /** Committed entries, in raft order, to apply after everything handed over before. */
  applyEntries(entries: readonly Entry[]): void;
  /** A snapshot now durable and in raft's storage, to install after everything handed over before. */
  applySnapshot(snap: Snapshot): void;
  /** The driver cannot go on (a write failed): the member must stop. */
  fatal(err: Error): void;
}

export interface RaftNodeParts {
  readonly raft: RawNode;
  /** raft's in-memory log, which mirrors what the storage holds */
  readonly raftStorage: MemoryStorage;
  readonly storage: RaftStorage;
  readonly transport: RaftTransport;
  readonly applier: RaftApplier;
  readonly clock: RaftClock;
  readonly heartbeatMs: number;
  /** called after each tick (the member's own periodic work) */
  readonly onTick?: () => void;
}

export class RaftNode {
  readonly raftStorage: MemoryStorage;
  private readonly raft: RawNode;
  private readonly storage: RaftStorage;
  private readonly transport: RaftTransport;
  private readonly clock: RaftClock;
  private readonly heartbeatMs: number;
  private readonly onTick: (() => void) | undefined;
  private readonly applier: RaftApplier;

  private leadSeen = 0n;
  private roleSeen: RaftRole = 'follower';
  private commitSeen = 0;
  /** term and vote as last written to the WAL */
  private persistedTerm: number;
  private persistedVote: bigint;
  /** the hard state of the last Ready that had one (or the one raft started from) */
  private lastHardState: HardState;

  private readyScheduled = false;
  private inReady = false;
  /** storage writes, one at a time and in order */
  private walChain: Promise<void> = Promise.resolve();
  private ticker: unknown;
  private stopped = false;

  constructor(parts: RaftNodeParts) {
    this.raft = parts.raft;
    this.raftStorage = parts.raftStorage;
    this.storage = parts.storage;
    this.transport = parts.transport;
    this.applier = parts.applier;
    this.clock = parts.clock;
    this.heartbeatMs = parts.heartbeatMs;
    this.onTick = parts.onTick;
    const initial = parts.raftStorage.initialState().hardState;
    this.persistedTerm = initial.term;
    this.persistedVote = initial.vote;
    this.lastHardState = initial;
  }

  /** Starts ticking (Readies are handled from construction on, as messages and proposals come). */
  start(): void {
    this.ticker = this.clock.setInterval(() => this.tick(), this.heartbeatMs);
    this.scheduleReady();
  }

  /** Stops ticking and handling Readies; resolves once the storage writes under way are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    await this.walChain.catch(() => undefined);
  }

  // ---------------------------------------------------------------- what raft last said

  get lead(): bigint {
    return this.leadSeen;
  }

  get role(): RaftRole {
    return this.roleSeen;
  }

  get isLeader(): boolean {
    return this.roleSeen === 'leader';
  }

  get term(): number {
    return this.lastHardState.term;
  }

  get committed(): number {
    return this.commitSeen;
  }

  status(): Status {
    return this.raft.status();
  }

  /** The snapshot raft accepted and has not handed out yet, if any. */
  pendingSnapshot(): { index: number; term: number } | undefined {
    return this.raft.pendingSnapshot();
  }

  // ---------------------------------------------------------------- into raft

  /** Ticks `n` times at once (etcd's advanceTicks, to elect sooner at start). */
  advanceTicks(n: number): void {
    for (let i = 0; i < n; i++) this.raft.tick();
    this.scheduleReady();
  }

  /** A message from a peer. Throws what raft throws for one it refuses. */
  step(m: Message): void {
    if (this.stopped) return;
    try {
      this.raft.step(m);
    } finally {
      this.scheduleReady();
    }
  }

  /** Why raft would refuse `m`, without stepping it. */
  check(m: Message): Error | undefined {
    return this.raft.check(m);
  }

  /** Throws raft's ProposalDroppedError when the proposal cannot be taken now. */
  propose(data: Uint8Array): void {
    try {
      this.raft.propose(data);
      probe?.mark('proposed', data.length);
    } finally {
      this.scheduleReady();
    }
  }

  proposeConfChange(cc: ConfChange): void {
    try {
      this.raft.proposeConfChange(cc);
    } finally {
      this.scheduleReady();
    }
  }

  /** Applies a committed conf change to raft's configuration (the applier calls this in raft order). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  readIndex(ctx: Uint8Array): void {
    this.raft.readIndex(ctx);
    this.scheduleReady();
  }

  transferLeader(to: bigint): void {
    this.raft.transferLeader(to);
    this.scheduleReady();
  }

  reportUnreachable(id: bigint): void {
    if (this.stopped) return;
    this.raft.reportUnreachable(id);
    this.scheduleReady();
  }

  reportSnapshot(id: bigint, status: 'finish' | 'failure'): void {
    if (this.stopped) return;
    this.raft.reportSnapshot(id, status);
    this.scheduleReady();
  }

  // ---------------------------------------------------------------- snapshots this member takes

  /**
   * Records a snapshot of the applied state (its file, its WAL record) behind the writes
   * already queued, and lets the WAL release the files before it.
   */
  saveSnapshot(snap: Snapshot): Promise<void> {
    return this.withWal(async () => {
      await this.storage.saveSnap(snap);
      await this.storage.release(snap.metadata.index);
    });
  }

  // ---------------------------------------------------------------- the Ready loop

  private tick(): void {
    if (this.stopped) return;
    this.raft.tick();
    this.onTick?.();
    this.scheduleReady();
  }

  private scheduleReady(): void {
    if (this.readyScheduled || this.stopped) return;
    this.readyScheduled = true;
    this.clock.setImmediate(() => {
      this.readyScheduled = false;
      void this.processReady();
    });
  }

  private async processReady(): Promise<void> {
    if (this.inReady || this.stopped) return;
    const applier = this.applier;
    this.inReady = true;
    try {
      while (!this.stopped && this.raft.hasReady()) {
        const rd = this.raft.ready();
        await this.handleReady(rd, applier);
      }
    } catch (err) {
      applier.fatal(err as Error);
    } finally {
      this.inReady = false;
    }
    if (!this.stopped && this.raft.hasReady()) this.scheduleReady();
  }

  private async handleReady(rd: Ready, applier: RaftApplier): Promise<void> {
    probe?.mark('ready', `${rd.entries.length}e/${rd.committedEntries.length}c/${rd.messages.length}m${rd.mustSync ? '/sync' : ''}`);
    if (rd.softState) {
      const previousLead = this.leadSeen;
      const wasLeader = this.isLeader;
      this.roleSeen = rd.softState.raftState;
      this.leadSeen = rd.softState.lead;
      applier.softStateChanged(previousLead, wasLeader);
    }
    if (rd.hardState) {
      this.lastHardState = rd.hardState;
      if (rd.hardState.commit > this.commitSeen) probe?.mark('commit', rd.hardState.commit);
      this.commitSeen = rd.hardState.commit;
    }
    if (rd.readStates.length > 0) applier.readStates(rd.readStates);

    // The leader sends before persisting (its own fsync runs in parallel with the
    // followers'), unless this Ready changes its term or vote: those must be durable
    // before anyone hears of them. A follower acknowledges only what it has persisted.
    // Nothing leaves before the write either when the Ready commits its own entries (a
    // lone voter's): its messages carry that commit index.
    const hs = rd.hardState;
    const sendFirst =
      this.isLeader &&
      !rd.persistFirst &&
      (hs === undefined || (hs.term === this.persistedTerm && hs.vote === this.persistedVote));
    if (sendFirst) this.send(rd.messages);
    const snap = rd.snapshot;
    // Entries committed in an earlier Ready are durable here already (each Ready is
    // persisted before it is advanced): they apply while this Ready's entries are written,
    // as etcd's raft loop hands them to its applier before saving. On a leader with
    // followers that is the common case (a commit needs their acks, which come after the
    // entries' own Ready), so a client's answer waits for one fsync, not also for the next
    // batch's. A Ready that commits its own entries (a lone voter's, a follower catching
    // up) applies after its write, which carries the entries and the commit index at once
    // (etcd's shouldWaitWALSync).
    // A conf change applies only once the commit index that covers it is durable. Applied
    // on a commit index that a power cut then takes back, it leaves the member restarting
    // in the configuration before it: when that change removed the only other voter (a
    // leader removing itself stops for good), the member waits for that voter's vote
    // forever (the simulator found it). etcd syncs no commit index; this costs one fsync
    // per conf change.
    const syncCommit = commitsConfChange(rd.committedEntries);
    const applyFirst = snap === undefined && !syncCommit && !this.mustSaveBeforeApply(rd);
    if (applyFirst) this.applyCommitted(rd.committedEntries, applier);
    const hardState = syncCommit ? this.lastHardState : hs;
    const mustSync = rd.mustSync || syncCommit;
    const persisted = this.withWal(async () => {
      if (snap) {
        await applier.beforeSnapshotSave(snap);
        await this.storage.saveSnap(snap);
      }
      probe?.mark('wal-save', rd.entries.length);
      await this.storage.save(hardState, rd.entries, mustSync);
      probe?.mark('wal-saved', rd.entries.length);
    });
    // A Ready that only moves the commit index needs no fsync and nothing waits for it:
    // it is queued behind earlier writes (the WAL holds it in memory until its next write)
    // and the loop goes on; a later Ready with entries waits for it anyway, in order.
    if (mustSync || snap !== undefined || rd.entries.length > 0) await persisted;
    else persisted.catch((err: Error) => applier.fatal(err));
    if (snap) {
      this.raftStorage.applySnapshot(snap);
      applier.applySnapshot(snap);
    }
    if (hs) {
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
    this.raftStorage.append(rd.entries);
    if (!sendFirst) this.send(rd.messages);
    this.raft.advance(rd);
    if (!applyFirst) this.applyCommitted(rd.committedEntries, applier);
  }

  /**
   * Whether the Ready's committed entries may apply only once its write is durable.
   * (Protected so the simulator can prove, with a variant that never waits, that its
   * seeds notice.)
   */
  protected mustSaveBeforeApply(rd: Ready): boolean {
    return rd.persistFirst;
  }

  private applyCommitted(entries: readonly Entry[], applier: RaftApplier): void {
    if (entries.length === 0) return;
    probe?.mark('apply', entries.at(-1)!.index);
    applier.applyEntries(entries);
  }

  private send(msgs: readonly Message[]): void {
    if (msgs.length > 0) this.transport.send(msgs);
  }

  private withWal(fn: () => Promise<void>): Promise<void> {
    const next = this.walChain.then(fn);
    this.walChain = next.catch(() => undefined);
    return next;
  }
}

function commitsConfChange(entries: readonly Entry[]): boolean {
  for (const e of entries) if (e.type === EntryType.ConfChange) return true;
  return false;
}
