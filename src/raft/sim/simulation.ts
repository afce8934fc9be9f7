// The deterministic cluster simulator. One seed fixes everything: the profile, the
// network's choices, every node's election timeouts and every disturbance, so a
// failing seed replays exactly. Each simulated member runs the server's own raft
// driver (RaftNode) on a virtual clock, with the real WAL and snapshotter on a MemDisk
// (which knows what a crash leaves) and the simulated network as its transport. Each
// step: maybe tick, maybe disturb (crash, restart, partition, membership change,
// compaction, transfer, hostile message, client proposal or read), deliver due
// messages, then let every live member work until it is idle. The Checker verifies
// Raft's safety properties as this happens; the run ends with a calm phase that must
// bring every member to the same applied state (liveness).

import {
  ConfChangeType,
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type Snapshot,
  decodeConfChange,
  emptyConfState,
  messageTypeName,
  withSnapshot,
} from '../../raftpb/index.js';
import type { MemoryStorage } from '../memory-storage.js';
import { ProposalDroppedError, StepError } from '../errors.js';
import type { RaftLogger } from '../logger.js';
import { RawNode } from '../raw-node.js';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RaftNode, type RaftApplier, type RaftStorage } from '../../server/raft-node.js';
import { encodeMemberContext } from '../../server/membership.js';
import { WalStorage } from '../../server/wal-storage.js';
import { MemDisk, SimulatedCrash } from '../../wal/index.js';
import { Checker, InvariantViolation } from './checker.js';
import { SimClock } from './clock.js';
import { openDiskState } from './disk-state.js';
import { SimNetwork } from './network.js';
import { Rng } from '../../pkg/rng.js';
import { hostileMessage } from './hostile.js';
import { type SimProfile, calmFaults, drawProfile } from './profile.js';
import { type MemberTuning, SimMember, openMemberState } from './member.js';
import { Workload } from './workload.js';
import { ApplyBeforeFsyncNode } from './broken-driver.js';

/**
 * How the simulated server persists. Anything but 'correct' is a deliberately broken
 * driver, used to prove that the checker notices.
 */
export type Persistence =
  | 'correct'
  /** the vote is not written to disk: after a restart a node may vote twice in a term */
  | 'forget-vote'
  /** reads are served from the local commit index without ReadIndex */
  | 'local-reads'
  /** entries are written but never fsynced: a power cut loses what was acknowledged */
  | 'no-fsync'
  /** the driver applies committed entries before the Ready's WAL write is durable */
  | 'apply-before-fsync'
  /** (whole members) a snapshot's store is frozen, to be recorded or shipped, before the staged writes are committed to it */
  | 'snapshot-before-flush';

export const persistenceModes: readonly Persistence[] = ['correct', 'forget-vote', 'local-reads', 'no-fsync', 'apply-before-fsync', 'snapshot-before-flush'];

export interface SimOptions {
  seed: number;
  /** steps to run (default 3000; 1000 for whole members) */
  steps?: number;
  /** force the initial cluster size (default: drawn from the seed) */
  nodes?: number;
  /** override parts of the profile drawn from the seed */
  profile?: Partial<SimProfile>;
  persistence?: Persistence;
  /** whole members: the server's Applier over a real MvccStore, and real requests */
  members?: boolean;
  /** receives a line per event (verbose replay) */
  trace?: (line: string) => void;
}

export interface SimStats {
  leaders: number;
  committed: number;
  readsServed: number;
  crashes: number;
  partitions: number;
  memberChanges: number;
  snapshotsApplied: number;
  hostileRefused: number;
  proposalsDropped: number;
  messagesSent: number;
  messagesDropped: number;
  /** whole members: requests whose result came back to the proposer */
  acknowledged: number;
  /** whole members: HashKV comparisons made */
  storeHashes: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  /** what went wrong, when !ok */
  error?: string;
  steps: number;
  profile: SimProfile;
  stats: SimStats;
}

interface AppState {
  /** last applied index */
  index: number;
  /** chain hash of everything applied */
  hash: number;
  confState: ConfState;
}

/** What the checker is owed by the next save of the Ready being handled. */
interface PendingChecks {
  /** became leader of this term: its log is checked once saved */
  leaderSince: number | undefined;
  /** the leader's snapshot the Ready carries, saved ahead of its entries */
  snapshotInSave: Snapshot | undefined;
}

/** One run of a member, from a (re)start until it crashes or leaves. */
interface Incarnation {
  readonly node: RaftNode;
  /** whole members: the apply side */
  readonly member: SimMember | undefined;
  readonly clock: SimClock;
  readonly raftStorage: MemoryStorage;
  readonly pending: PendingChecks;
}

interface SimNode {
  readonly id: bigint;
  /** the node's disk: what survives a crash is what afterCrash keeps */
  disk: MemDisk;
  readonly rng: Rng;
  run: Incarnation | undefined;
  app: AppState;
  /** entries up to here were verified as committed */
  checkedCommit: number;
  /** crash once the members are idle (a failpoint after a vote was saved) */
  crashDue: boolean;
  /** applied its own removal: shuts down once another leader is in charge */
  retiring: boolean;
  /** shut down for good */
  removed: boolean;
  restartAt: number;
  /** whole members: the directory its store lives in, and its last crash's store shutdown */
  dir: string | undefined;
  crashed: Promise<void>;
}

/** A member that has never run: an empty disk, nothing applied. */
function newSimNode(id: bigint, rng: Rng): SimNode {
  return {
    id,
    disk: new MemDisk(),
    rng,
    run: undefined,
    app: { index: 0, hash: 0, confState: emptyConfState },
    checkedCommit: 0,
    crashDue: false,
    retiring: false,
    removed: false,
    restartAt: -1,
    dir: undefined,
    crashed: Promise.resolve(),
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Where whole members' stores go: memory (tmpfs) where there is some. A crash keeps what
 * LevelDB committed (MvccStore.abandon), never what a power cut would leave, so the disk
 * under LevelDB only costs time.
 */
function storeRoot(): string {
  try {
    accessSync(SHM, constants.W_OK);
    return SHM;
  } catch {
    return tmpdir();
  }
}
const SHM = '/dev/shm';

/** Lets every pending promise settle: the MemDisk and the WAL only ever wait on each other. */
function settlePromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Simulation {
  readonly seed: number;
  readonly profile: SimProfile;
  private readonly steps: number;
  private readonly persistence: Persistence;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly net: SimNetwork;
  private readonly act: Rng;
  private readonly nodeRng: Rng;
  private readonly checker = new Checker();
  private readonly nodes = new Map<bigint, SimNode>();
  private nextId: bigint;
  private now = 0;
  private seq = 0;
  private healAt: number;
  private quietAt: number;
  private healed = false;
  private partitionEndsAt = -1;
  private commitAtHeal = 0;
  /** an error a member's driver hit that is no simulated crash */
  private failure: Error | undefined;
  readonly stats: SimStats = {
    leaders: 0,
    committed: 0,
    readsServed: 0,
    crashes: 0,
    partitions: 0,
    memberChanges: 0,
    snapshotsApplied: 0,
    hostileRefused: 0,
    proposalsDropped: 0,
    messagesSent: 0,
    messagesDropped: 0,
    acknowledged: 0,
    storeHashes: 0,
  };
  private readonly members: boolean;
  /** whole members: where their stores live, removed at the end */
  private readonly root: string | undefined;
  private readonly tuning: MemberTuning | undefined;
  private readonly workload: Workload | undefined;
  /** store work the simulation started (snapshots sent and received, crashes): each step waits for it */
  private readonly inflight = new Set<Promise<unknown>>();
  /**
   * Whole members' snapshots on their way out, in the order their sends started: each
   * turn waits for their stores to be written and then hands the MsgSnaps to the network
   * in this order, so its draws come in the same order whatever the disk's timing.
   */
  private outgoingSnapshots: Promise<Message | undefined>[] = [];
  /** received snapshots whose store is being saved: settle once raft was offered the MsgSnap (or it was refused) */
  private snapshotOffers: Promise<void>[] = [];
  /** the members whose inbox is saving a snapshot's store, and what to call once raft was offered it */
  private readonly offerWaiters = new Map<bigint, () => void>();
  /** the store of each MsgSnap in flight, as its sender wrote it */
  private readonly snapshotDbs = new WeakMap<Message, Buffer>();

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    const root = new Rng(opts.seed);
    this.profile = { ...drawProfile(root.fork(), opts.nodes), ...opts.profile };
    this.members = opts.members ?? false;
    // a whole member's step costs some four raft-only ones (real stores): more, shorter seeds
    this.steps = opts.steps ?? (this.members ? 1000 : 3000);
    this.persistence = opts.persistence ?? 'correct';
    this.trace = opts.trace;
    this.net = new SimNetwork(root.fork(), { ...this.profile.faults });
    this.net.onLost = (m) => {
      // The transport reports every failed snapshot send, as etcd's does.
      if (m.type === MessageType.MsgSnap) this.nodes.get(m.from)?.run?.node.reportSnapshot(m.to, 'failure');
    };
    this.act = root.fork();
    this.nodeRng = root.fork();
    // The last quarter (at least 600 steps) is calm so the cluster must converge.
    this.healAt = this.steps - Math.max(600, this.steps >> 2);
    this.quietAt = this.steps - 200;
    this.nextId = BigInt(this.profile.nodes + 1);
    if (this.persistence === 'snapshot-before-flush' && !this.members) throw new Error('snapshot-before-flush breaks a store: it needs whole members');
    if (this.members) {
      const r = root.fork();
      this.root = mkdtempSync(path.join(storeRoot(), 'etcd-ts-sim-'));
      this.tuning = {
        snapshotCount: r.range(4, 30),
        // low, so that lagging, restarted and new members install the leader's snapshot
        snapshotCatchUpEntries: r.range(1, 20),
        backendBatchIntervalMs: r.range(5, 100),
        backendBatchLimit: r.range(2, 40),
        electionMs: this.profile.electionTick * this.profile.tickEvery,
      };
      this.workload = new Workload(r.fork());
    }
  }

  private founders(): { id: bigint; context?: Uint8Array }[] {
    const out: { id: bigint; context?: Uint8Array }[] = [];
    for (let i = 1; i <= this.profile.nodes; i++) out.push({ id: BigInt(i), context: this.memberContext(BigInt(i), false) });
    return out;
  }

  /** What a conf change adding `id` carries (whole members apply it to their membership). */
  private memberContext(id: bigint, isLearner: boolean): Uint8Array | undefined {
    if (!this.members) return undefined;
    return encodeMemberContext({ id, name: `n${id}`, peerUrls: [`http://n${id}:2380`], clientUrls: [], isLearner });
  }

  private log(line: string): void {
    this.trace?.(`[${this.now}] ${line}`);
  }

  private async createNode(id: bigint, rng: Rng): Promise<SimNode> {
    const n = newSimNode(id, rng);
    this.nodes.set(id, n);
    await this.startNode(n);
    return n;
  }

  /** Starts n from what its disk holds: the application state is rebuilt from the snapshot, then replayed. */
  private async startNode(n: SimNode): Promise<void> {
    const p = this.profile;
    const { wal, snapshotter, raftStorage, snapshot } = await openDiskState(n.disk);
    let state: Awaited<ReturnType<typeof openMemberState>> | undefined;
    if (this.members) {
      // the snapshot's data is etcd's (membership, v2 store): the applied state's hash is the checker's
      const index = snapshot?.metadata.index ?? 0;
      n.app = { index, hash: index === 0 ? 0 : (this.checker.hashAt(index) ?? 0), confState: snapshot?.metadata.confState ?? emptyConfState };
      await n.crashed;
      n.dir ??= mkdtempSync(path.join(this.root!, `n${n.id}-`));
      state = await openMemberState(n.id, n.dir, snapshot, () => this.now);
    } else if (snapshot !== undefined) {
      const { index, hash } = JSON.parse(dec.decode(snapshot.data)) as { index: number; hash: number };
      n.app = { index, hash, confState: snapshot.metadata.confState };
    } else {
      n.app = { index: 0, hash: 0, confState: emptyConfState };
    }
    n.checkedCommit = Math.max(n.app.index, raftStorage.initialState().hardState.commit);
    n.crashDue = false;
    const logger: RaftLogger | undefined =
      this.trace === undefined
        ? undefined
        : {
            debug: () => {},
            info: (m) => this.log(`n${n.id}: ${m}`),
            warn: (m) => this.log(`n${n.id}: WARN ${m}`),
            error: (m) => this.log(`n${n.id}: ERROR ${m}`),
          };
    const raft = new RawNode({
      id: n.id,
      electionTick: p.electionTick,
      heartbeatTick: p.heartbeatTick,
      storage: raftStorage,
      applied: n.app.index,
      maxSizePerMsg: p.maxSizePerMsg,
      maxInflightMsgs: p.maxInflightMsgs,
      maxUncommittedEntriesSize: p.maxUncommittedEntriesSize,
      checkQuorum: p.checkQuorum,
      preVote: p.preVote,
      // as members run (member-start.ts)
      quietCommitAcks: true,
      random: () => n.rng.next(),
      logger,
    });
    // A founding member that died before its bootstrap was written starts over.
    if (n.id <= BigInt(p.nodes) && raftStorage.lastIndex() === 0) raft.bootstrap(this.founders());
    const clock = new SimClock(() => this.now);
    const pending: PendingChecks = { leaderSince: undefined, snapshotInSave: undefined };
    // the driver's callbacks run only after construction; they ignore an incarnation that crashed
    const current = (): boolean => n.run?.node === node;
    const Driver = this.persistence === 'apply-before-fsync' ? ApplyBeforeFsyncNode : RaftNode;
    const node: RaftNode = new Driver({
      raft,
      raftStorage,
      storage: this.checkedStorage(n, pending, raftStorage, new WalStorage(wal, snapshotter)),
      transport: { send: (msgs) => current() && this.sendAll(n, msgs) },
      applier: this.applier(n, pending, () => node, current),
      clock,
      heartbeatMs: p.tickEvery,
    });
    const member =
      state === undefined
        ? undefined
        : new SimMember(n.id, n.dir!, state, node, clock, this.tuning!, this.persistence === 'snapshot-before-flush', {
            removed: () => {
              if (!current()) return;
              this.log(`n${n.id} applied its own removal`);
              n.retiring = true;
            },
            fatal: (err) => {
              if (current()) this.failure ??= err;
            },
            committed: () => node.committed,
            term: () => node.term,
            leader: () => node.lead,
            step: (m) => {
              try {
                node.step(m);
              } finally {
                this.offerWaiters.get(n.id)?.();
              }
            },
            pendingSnapshot: () => node.pendingSnapshot(),
            stopped: () => !current(),
          }, snapshot);
    n.run = { node, member, clock, raftStorage, pending };
    n.restartAt = -1;
    node.start();
    this.log(`start n${n.id} (applied ${n.app.index}, last index ${raftStorage.lastIndex()})`);
  }

  private live(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.run !== undefined) out.push(n);
    return out;
  }

  private leaderNode(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.live()) {
      const st = n.run!.node.status();
      if (st.softState.raftState === 'leader' && st.hardState.term > bestTerm) {
        best = n;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  async run(): Promise<SimResult> {
    let error: string | undefined;
    try {
      for (const p of this.founders()) await this.createNode(p.id, this.nodeRng.fork());
      for (this.now = 0; this.now < this.steps; this.now++) await this.step();
      // Calm and without new proposals, the cluster must converge; slow profiles
      // (one in-flight message of 64 bytes) may need extra time to drain a backlog.
      const limit = this.now + 4000;
      for (; this.now < limit && this.livenessProblem() !== undefined; this.now++) await this.step();
      const problem = this.livenessProblem();
      if (problem !== undefined) throw new InvariantViolation(`liveness: ${problem}`);
      if (this.members) await this.checkAcknowledged();
    } catch (e) {
      if (e instanceof InvariantViolation) error = e.message;
      else error = `step ${this.now}: crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
      this.log(`FAILED: ${error}`);
    }
    for (const n of this.nodes.values()) if (n.run !== undefined) this.halt(n);
    await Promise.all([...this.inflight]);
    if (this.root !== undefined) rmSync(this.root, { recursive: true, force: true });
    this.stats.committed = this.checker.maxCommitted;
    this.stats.readsServed = this.checker.readsServed;
    this.stats.messagesSent = this.net.sent;
    this.stats.messagesDropped = this.net.dropped;
    const res: SimResult = { seed: this.seed, ok: error === undefined, steps: this.steps, profile: this.profile, stats: this.stats };
    if (error !== undefined) res.error = error;
    return res;
  }

  private async step(): Promise<void> {
    this.checker.step = this.now;
    const p = this.profile;
    if (this.now === this.healAt) this.heal();
    const calm = this.healed;

    if (this.now % p.tickEvery === 0) for (const n of this.live()) n.run!.clock.tick();
    for (const n of this.live()) n.run!.clock.fireDue();

    for (const n of this.nodes.values()) {
      if (n.run === undefined && !n.removed && n.restartAt >= 0 && n.restartAt <= this.now) await this.startNode(n);
    }
    if (this.partitionEndsAt >= 0 && this.now >= this.partitionEndsAt) {
      this.net.healAll();
      this.partitionEndsAt = -1;
      this.log('partition healed');
    }

    const a = this.act;
    if (this.now < this.quietAt && a.chance(p.proposeRate)) this.propose();
    if (this.now < this.quietAt && a.chance(p.readRate)) this.read();
    if (!calm) {
      if (a.chance(p.crashRate)) this.crash();
      if (a.chance(p.partitionRate) && !this.net.partitioned) this.partition();
      if (a.chance(p.memberChangeRate)) this.changeMembership();
      if (a.chance(p.transferRate)) this.transfer();
      if (a.chance(p.hostileRate)) this.hostile();
    }
    if (a.chance(p.compactRate)) this.compact();

    for (const m of this.net.due(this.now)) this.deliver(m);
    await this.snapshotsOffered();
    await this.work();
    if (this.members) await this.checkStores();
    for (const n of this.live()) {
      if (n.crashDue) {
        this.log(`n${n.id} crashes right after saving its vote`);
        this.stop(n, 'process');
      } else if (n.retiring) {
        this.retireIfReplaced(n);
      }
    }
    for (const n of this.nodes.values()) if (n.run === undefined && !n.removed && n.restartAt < 0) this.scheduleRestart(n);
  }

  /**
   * Every whole member whose applied entries are all written out to its store hashes it
   * (etcd's HashKV): members at the same applied index must agree.
   */
  private async checkStores(): Promise<void> {
    for (const n of this.live()) {
      const member = n.run!.member!;
      const { applier, store } = member;
      if (applier.hasStagedEntries || member.inbox.busy) continue;
      // the store's own index: after a restart it holds entries the applier has not reached again yet
      const index = store.consistentIndex;
      if (member.lastHashed === index) continue;
      member.lastHashed = index;
      // with no key live, HashKV counts the records a compaction has yet to delete (etcd 3.4's quirk)
      await store.compactionsDone();
      const { hash, revision } = await store.hashKV(0);
      this.checker.storeHash(n.id, index, hash, revision);
      this.stats.storeHashes++;
    }
  }

  /**
   * Waits until each snapshot delivered this step has its store saved and raft's verdict
   * on it, before any member takes a turn: whenever the disk finishes, raft hears of the
   * snapshot between the same two turns in every run of a seed.
   */
  private async snapshotsOffered(): Promise<void> {
    const offers = this.snapshotOffers;
    this.snapshotOffers = [];
    await Promise.all(offers);
  }

  /** Hands the MsgSnaps whose stores are written to the network, in the order they were sent. */
  private async sendSnapshots(): Promise<void> {
    const out = this.outgoingSnapshots;
    this.outgoingSnapshots = [];
    for (const p of out) {
      const m = await p;
      if (m !== undefined) this.net.send(m, this.now);
    }
  }

  /** Lets every live member handle its Readies until none has work left. */
  private async work(): Promise<void> {
    for (;;) {
      let ran = false;
      for (const n of this.live()) ran = n.run!.clock.runImmediates() || ran;
      await settlePromises();
      // a whole member's store writes are real I/O: each turn waits for them to land
      for (const n of this.live()) await n.run!.member?.applier.idle();
      await this.sendSnapshots();
      if (this.failure !== undefined) throw this.failure;
      if (ran) continue;
      if (this.inflight.size === 0) return;
      // a snapshot on its way through a store: let its I/O finish (it may then queue a Ready)
      await Promise.race([Promise.all(this.inflight), settlePromises()]);
    }
  }

  // ---- what the simulated server does around the real driver ----

  /**
   * The real WAL storage, watched: the checker hears of every entry and commit index
   * once durable, a seeded failpoint may cut the power in the middle of a write, and a
   * broken persistence mode may change what gets written.
   */
  private checkedStorage(n: SimNode, pending: PendingChecks, raftStorage: MemoryStorage, wal: WalStorage): RaftStorage {
    return {
      save: async (hs, entries, mustSync) => {
        const snap = pending.snapshotInSave;
        pending.snapshotInSave = undefined;
        const bootstrapped = raftStorage.initialState().hardState.term > 0;
        // The bootstrap Ready is written as a whole (etcd creates its WAL in a temporary
        // directory and renames it), so no crash in the middle of that one.
        if (!this.healed && bootstrapped && this.act.chance(this.profile.crashMidReadyRate)) this.armPowerCut(n, entries);
        const written = hs !== undefined && this.persistence === 'forget-vote' ? { ...hs, vote: 0n } : hs;
        try {
          await wal.save(written, entries, this.persistence === 'no-fsync' ? false : mustSync);
        } finally {
          n.disk.fault = undefined;
        }
        this.checkSaved(n, pending, raftStorage, snap, hs, entries);
      },
      saveSnap: async (snap) => {
        await wal.saveSnap(snap);
        n.checkedCommit = Math.max(n.checkedCommit, snap.metadata.index);
      },
      release: (index) => wal.release(index),
    };
  }

  /** The next write dies part way: power loss during a Ready's save. */
  private armPowerCut(n: SimNode, entries: readonly Entry[]): void {
    let bytes = 0;
    for (const e of entries) bytes += e.data.length + 32;
    const afterBytes = this.act.int(bytes + 1);
    n.disk.fault = (op) => (op.op === 'write' ? { crash: true, afterBytes } : undefined);
    this.log(`n${n.id} will lose power after ${afterBytes} bytes of its next write`);
  }

  /** What one save made durable, told to the checker. */
  private checkSaved(
    n: SimNode,
    pending: PendingChecks,
    raftStorage: MemoryStorage,
    snap: Snapshot | undefined,
    hs: HardState | undefined,
    entries: readonly Entry[],
  ): void {
    const log = savedLog(raftStorage, snap, entries);
    if (entries.length > 0) {
      let prevTerm = log.term(entries[0]!.index - 1);
      for (const e of entries) {
        this.checker.persisted(n.id, e, prevTerm);
        prevTerm = e.term;
      }
    }
    if (hs !== undefined) {
      const lo = Math.max(n.checkedCommit + 1, log.first);
      for (let i = lo; i <= hs.commit; i++) {
        const e = log.entry(i);
        if (e === undefined) throw new InvariantViolation(`n${n.id} saved commit index ${hs.commit} beyond its log (${log.last})`);
        this.checker.committedEntry(n.id, e);
      }
      n.checkedCommit = Math.max(n.checkedCommit, hs.commit);
      if (!this.healed && hs.vote !== 0n && hs.vote !== n.id && this.act.chance(this.profile.crashAfterVoteRate)) n.crashDue = true;
    }
    if (pending.leaderSince !== undefined) {
      this.checker.leaderCompleteness(n.id, pending.leaderSince, log.first, log.last, (i) => log.term(i) ?? -1);
      pending.leaderSince = undefined;
    }
  }

  private applier(n: SimNode, pending: PendingChecks, node: () => RaftNode, current: () => boolean): RaftApplier {
    return {
      softStateChanged: (_previousLead, wasLeader) => {
        if (!current() || !node().isLeader || wasLeader) return;
        const term = node().status().hardState.term;
        this.stats.leaders++;
        this.checker.leader(n.id, term);
        pending.leaderSince = term;
        this.log(`n${n.id} is leader of term ${term}`);
      },
      readStates: (states) => {
        if (!current()) return;
        for (const rs of states) this.checker.readServed(dec.decode(rs.requestCtx), n.id, rs.index);
      },
      beforeSnapshotSave: async (snap) => {
        // a whole member installs only the snapshot whose store it received
        n.run?.member?.inbox.accepted(snap);
        // the leader's snapshot, saved ahead of the entries of its Ready
        pending.snapshotInSave = snap;
      },
      applyEntries: (entries) => {
        if (!current()) return;
        this.applyEntries(n, node(), entries);
        n.run?.member?.applier.applyEntries(entries);
      },
      applySnapshot: (snap) => {
        if (!current()) return;
        const member = n.run?.member;
        if (member === undefined) return this.applySnapshot(n, snap);
        const received = member.inbox.accepted(snap);
        this.track(member.inbox.installing(member.applier.applySnapshot(snap, received)));
        n.app = { index: snap.metadata.index, hash: this.checker.hashAt(snap.metadata.index) ?? 0, confState: snap.metadata.confState };
        n.checkedCommit = Math.max(n.checkedCommit, snap.metadata.index);
        this.stats.snapshotsApplied++;
        this.log(`n${n.id} installs the store of the snapshot at ${snap.metadata.index}`);
      },
      fatal: (err) => {
        if (!current()) return;
        if (err instanceof SimulatedCrash) {
          this.log(`n${n.id} lost power while persisting a Ready`);
          this.stop(n, 'power');
        } else {
          this.failure ??= err;
        }
      },
    };
  }

  private applyEntries(n: SimNode, node: RaftNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      // The driver applies entries committed by an earlier Ready while the Ready that
      // records their commit index is still being written (as etcd does): they are
      // committed as of now, whether or not this member's WAL says so yet.
      if (e.index > n.checkedCommit) {
        this.checker.committedEntry(n.id, e);
        n.checkedCommit = e.index;
      }
      n.app.hash = this.checker.applied(n.id, e, n.app.index, n.app.hash);
      n.app.index = e.index;
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        // a whole member's applier applies it to raft, and says when it removed itself
        if (this.members) {
          this.onConfChangeApplied(n, cc);
          continue;
        }
        n.app.confState = node.applyConfChange(cc);
        if (this.onConfChangeApplied(n, cc)) {
          this.log(`n${n.id} applied its own removal`);
          n.retiring = true;
        }
      }
    }
  }

  /**
   * A removed member lingers (etcd waits a moment too) until a leader runs a
   * configuration without it: until then the others may still need its vote, or
   * need a removed leader to hand over and tell them the removal committed.
   */
  private retireIfReplaced(n: SimNode): void {
    const l = this.leaderNode();
    if (l === undefined || l === n) return;
    const cs = l.run!.node.status().config;
    if (!cs.voters.includes(n.id) && !cs.learners.includes(n.id)) {
      this.log(`n${n.id} was removed and shuts down`);
      n.removed = true;
      this.halt(n);
    }
  }

  private sendAll(n: SimNode, msgs: readonly Message[]): void {
    for (let m of msgs) {
      if (m.type === MessageType.MsgSnap && n.run?.member !== undefined) {
        const out = this.snapshotToSend(n, m);
        this.track(out);
        this.outgoingSnapshots.push(out.catch(() => undefined));
        continue;
      }
      if (m.type === MessageType.MsgSnap) m = withSnapshot(m, this.freshSnapshot(n));
      const delivered = this.net.send(m, this.now);
      if (!delivered && this.net.isCut(m.from, m.to) && this.act.chance(0.2)) n.run?.node.reportUnreachable(m.to);
    }
  }

  /**
   * A whole member's MsgSnap, ready to go once its store is written out (as the
   * transport's prepare hook does); undefined if the member crashed meanwhile.
   */
  private async snapshotToSend(n: SimNode, m: Message): Promise<Message | undefined> {
    const run = n.run!;
    let out: { message: Message; db: Buffer };
    try {
      out = await run.member!.snapshotToSend(m);
    } catch (e) {
      if (n.run === run) run.node.reportSnapshot(m.to, 'failure');
      if (n.run === run && !(e instanceof Error && /closed/.test(e.message))) throw e;
      return undefined;
    }
    if (n.run !== run) return undefined;
    this.snapshotDbs.set(out.message, out.db);
    return out.message;
  }

  /** Keeps the simulation's own store work in sight: each step waits for it. */
  private track(p: Promise<unknown>): void {
    const t = p.then(
      () => undefined,
      (e: unknown) => {
        this.failure ??= e instanceof Error ? e : new Error(String(e));
      },
    );
    this.inflight.add(t);
    void t.finally(() => this.inflight.delete(t));
  }

  /**
   * Like etcd's createMergedSnapshotMessage: a MsgSnap carries the sender's current
   * applied state and configuration, not the possibly old snapshot in Storage (a
   * member added after that snapshot could not use it: it is not in its ConfState).
   */
  private freshSnapshot(n: SimNode): Snapshot {
    const s = n.run!.raftStorage;
    if (n.app.index > s.snapshot().metadata.index) {
      s.createSnapshot(n.app.index, n.app.confState, this.encodeApp(n.app));
    }
    return s.snapshot();
  }

  private encodeApp(app: AppState): Uint8Array {
    return enc.encode(JSON.stringify({ index: app.index, hash: app.hash }));
  }

  private applySnapshot(n: SimNode, snap: Snapshot): void {
    const { index, hash } = JSON.parse(dec.decode(snap.data)) as { index: number; hash: number };
    if (index !== snap.metadata.index) throw new InvariantViolation(`snapshot data for ${index} labelled ${snap.metadata.index}`);
    this.checker.restoredSnapshot(n.id, index, hash);
    n.app = { index, hash, confState: snap.metadata.confState };
    n.checkedCommit = Math.max(n.checkedCommit, index);
    this.stats.snapshotsApplied++;
    this.log(`n${n.id} applied snapshot at ${index}`);
  }

  /** Returns true when n applied its own removal. */
  private onConfChangeApplied(n: SimNode, cc: ConfChange): boolean {
    const added = cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode;
    if (added && !this.nodes.has(cc.nodeId)) {
      // The new member starts empty and learns everything from the leader; it starts
      // once the members are idle (scheduleRestart).
      this.log(`adding new member n${cc.nodeId}`);
      this.nodes.set(cc.nodeId, newSimNode(cc.nodeId, this.act.fork()));
    }
    return cc.type === ConfChangeType.RemoveNode && cc.nodeId === n.id;
  }

  private deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    if (to?.run === undefined) {
      if (m.type === MessageType.MsgSnap) from?.run?.node.reportSnapshot(m.to, 'failure');
      return;
    }
    if (this.trace !== undefined) this.log(`deliver ${describeMessage(m)}`);
    const inbox = to.run.member?.inbox;
    if (m.type === MessageType.MsgSnap && inbox !== undefined) {
      const db = this.snapshotDbs.get(m) ?? Buffer.alloc(0);
      const wasBusy = inbox.busy;
      const received = inbox.receive(m, (async function* () {
        yield db;
      })());
      // refused at once (busy, stale) or now saving its store, after which raft is offered it
      if (!wasBusy && inbox.busy) {
        const offered = new Promise<void>((resolve) => this.offerWaiters.set(to.id, resolve));
        this.snapshotOffers.push(Promise.race([offered, received.catch(() => undefined)]).finally(() => this.offerWaiters.delete(to.id)));
      }
      this.track(
        received.then(
          () => from?.run?.node.reportSnapshot(m.to, 'finish'),
          (e: unknown) => {
            this.log(`n${m.to} refused the snapshot from n${m.from}: ${e instanceof Error ? e.message : String(e)}`);
            from?.run?.node.reportSnapshot(m.to, 'failure');
          },
        ),
      );
      return;
    }
    try {
      to.run.node.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError) this.stats.proposalsDropped++;
      else if (!(e instanceof StepError)) throw e;
    }
    if (m.type === MessageType.MsgSnap) from?.run?.node.reportSnapshot(m.to, 'finish');
  }

  // ---- disturbances ----

  /** Stops n's driver; its disk is left as it is. */
  private halt(n: SimNode): void {
    void n.run?.node.stop();
    const member = n.run?.member;
    if (member !== undefined) {
      n.crashed = member.crash();
      this.track(n.crashed);
    }
    n.run = undefined;
  }

  /** n crashes: its disk becomes what survives a crash of this kind, and it restarts later. */
  private stop(n: SimNode, mode: 'process' | 'power'): void {
    this.halt(n);
    if (!n.disk.crashed) {
      try {
        n.disk.die();
      } catch (e) {
        if (!(e instanceof SimulatedCrash)) throw e;
      }
    }
    n.disk = n.disk.afterCrash(mode, this.act.int(0x7fffffff));
    n.restartAt = -1;
    this.stats.crashes++;
  }

  private scheduleRestart(n: SimNode): void {
    const [lo, hi] = this.profile.restartDelay;
    // a member added by a conf change starts at once
    const fresh = n.disk.readdirSync('/member') === undefined;
    n.restartAt = this.healed || fresh ? this.now + 1 : this.now + this.act.range(lo, hi);
  }

  private crash(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const mode = this.act.chance(0.5) ? 'power' : 'process';
    this.log(`crash n${n.id} (${mode})`);
    this.stop(n, mode);
  }

  private partition(): void {
    const ids = this.live().map((n) => n.id);
    if (ids.length < 2) return;
    const kind = this.act.int(3);
    if (kind === 0) {
      // symmetric split into two sides
      const side = new Set(ids.filter(() => this.act.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.net.cutLink(a, b);
      this.log(`partition {${[...side].join(',')}} | rest`);
    } else if (kind === 1) {
      // isolate one node
      const x = this.act.pick(ids);
      for (const b of ids) if (b !== x) {
        this.net.cutLink(x, b);
        this.net.cutLink(b, x);
      }
      this.log(`isolate n${x}`);
    } else {
      // one-way: x cannot hear from some others (but they hear x)
      const x = this.act.pick(ids);
      const deaf = ids.filter((b) => b !== x && this.act.chance(0.6));
      for (const b of deaf) this.net.cutLink(b, x);
      this.log(`one-way: n${x} stops hearing from {${deaf.join(',')}}`);
    }
    this.partitionEndsAt = this.now + this.act.range(50, 400);
    this.stats.partitions++;
  }

  private changeMembership(): void {
    const l = this.leaderNode();
    if (l === undefined) return;
    const cs = l.run!.node.status().config;
    const ops: string[] = [];
    if (this.nextId <= BigInt(this.profile.nodes + 4)) ops.push('add-learner', 'add-learner', 'add-voter');
    if (cs.learners.length > 0) ops.push('promote', 'promote', 'remove-learner');
    if (cs.voters.length > 1) ops.push('remove-voter', 'demote');
    if (ops.length === 0) return;
    const op = this.act.pick(ops);
    let cc: ConfChange;
    switch (op) {
      case 'add-learner':
      case 'add-voter':
        cc = mkcc(op === 'add-voter' ? ConfChangeType.AddNode : ConfChangeType.AddLearnerNode, this.nextId, this.memberContext(this.nextId, op === 'add-learner'));
        this.nextId++;
        break;
      case 'promote': {
        const id = this.act.pick(cs.learners);
        cc = mkcc(ConfChangeType.AddNode, id, this.memberContext(id, false));
        break;
      }
      case 'remove-learner':
        cc = mkcc(ConfChangeType.RemoveNode, this.act.pick(cs.learners));
        break;
      case 'remove-voter':
        cc = mkcc(ConfChangeType.RemoveNode, this.act.pick(cs.voters));
        break;
      default: {
        const id = this.act.pick(cs.voters);
        cc = mkcc(ConfChangeType.AddLearnerNode, id, this.memberContext(id, true));
      }
    }
    try {
      l.run!.node.proposeConfChange(cc);
      this.stats.memberChanges++;
      this.log(`n${l.id} proposes ${op} n${cc.nodeId}`);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.log(`n${l.id} refused ${op} n${cc.nodeId}: ${e.message}`);
    }
  }

  private transfer(): void {
    const l = this.leaderNode();
    if (l === undefined) return;
    const voters = l.run!.node.status().config.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.act.pick(voters);
    this.log(`n${l.id} transfers leadership to n${to}`);
    l.run!.node.transferLeader(to);
  }

  private propose(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const member = n.run!.member;
    if (member !== undefined) {
      const { req, onResult } = this.workload!.next();
      const node = n.run!.node;
      member
        .request(BigInt(++this.seq), req, (data) => node.propose(data))
        .then(
          (res) => {
            this.stats.acknowledged++;
            onResult(res);
          },
          () => undefined, // refused (a bad revision, an unknown lease), dropped or lost in a crash
        );
      return;
    }
    const data = enc.encode(`v${this.seq++}`);
    try {
      n.run!.node.propose(data);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.stats.proposalsDropped++;
    }
  }

  private read(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const ctx = `r${this.seq++}`;
    this.checker.readStarted(ctx, n.id);
    if (this.persistence === 'local-reads') {
      // Broken on purpose: trust our own commit index.
      this.checker.readServed(ctx, n.id, n.run!.node.status().hardState.commit);
      return;
    }
    n.run!.node.readIndex(enc.encode(ctx));
  }

  /** n snapshots what it applied, as the server does every --snapshot-count entries, and compacts its log once that is durable. */
  private compact(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const run = n.run!;
    // a whole member snapshots every --snapshot-count entries itself
    if (run.member !== undefined) return;
    const s = run.raftStorage;
    const snapIndex = s.snapshot().metadata.index;
    if (n.app.index - snapIndex < 5) return;
    const snap = s.createSnapshot(n.app.index, n.app.confState, this.encodeApp(n.app));
    const to = n.app.index - this.act.int(6);
    this.log(`n${n.id} snapshot at ${n.app.index}, compacts to ${to}`);
    run.node.saveSnapshot(snap).then(
      () => {
        if (n.run === run && to >= s.firstIndex()) s.compact(to);
      },
      () => undefined, // a crash meanwhile: the driver has reported it
    );
  }


  /** A message no correct peer would send; it must be refused without effect. */
  private hostile(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const node = n.run!.node;
    const m = hostileMessage(n.id, node.status(), this.act);
    if (m === undefined) return;
    try {
      node.step(m);
    } catch (e) {
      if (e instanceof StepError) {
        this.stats.hostileRefused++;
        return;
      }
      throw e;
    }
    throw new InvariantViolation(`hostile message accepted by n${n.id}: type ${m.type} from ${m.from} term ${m.term}`);
  }

  // ---- the end: calm, then everyone must agree ----

  /** What the member applied: a whole member's applier, or the simulated state machine. */
  private appliedIndex(n: SimNode): number {
    return n.run?.member?.applier.applied ?? n.app.index;
  }

  private heal(): void {
    this.healed = true;
    this.net.healAll();
    this.partitionEndsAt = -1;
    this.net.faults = { ...calmFaults };
    for (const n of this.nodes.values()) if (n.run === undefined && !n.removed) n.restartAt = this.now;
    this.commitAtHeal = this.checker.maxCommitted;
    this.log('--- heal: no more faults; the cluster must converge ---');
  }

  /** No member's store lost a put its proposer was answered for (run once the cluster converged). */
  private async checkAcknowledged(): Promise<void> {
    const st = this.leaderNode()!.run!.node.status();
    for (const id of [...st.config.voters, ...st.config.learners]) {
      const n = this.nodes.get(id)!;
      const lost = await this.workload!.lostWrite(n.run!.member!.store);
      if (lost !== undefined) throw new InvariantViolation(`lost write: n${n.id}: ${lost}`);
    }
  }

  /** undefined once a leader leads every member to the same applied state, after new commits */
  private livenessProblem(): string | undefined {
    const l = this.leaderNode();
    if (l === undefined) return 'no leader after the calm phase';
    if (this.checker.maxCommitted <= this.commitAtHeal) {
      return `nothing committed during the calm phase (commit ${this.checker.maxCommitted})`;
    }
    const st = l.run!.node.status();
    if (this.appliedIndex(l) !== st.hardState.commit) return `leader n${l.id} applied ${l.app.index} of ${st.hardState.commit}`;
    for (const id of [...st.config.voters, ...st.config.learners]) {
      const n = this.nodes.get(id);
      if (n?.run === undefined) return `member n${id} is not running`;
      if (this.appliedIndex(n) !== this.appliedIndex(l)) {
        return `member n${id} applied ${this.appliedIndex(n)}, leader n${l.id} applied ${this.appliedIndex(l)} (commit ${st.hardState.commit}); leader's progress for it: ${json(st.progress?.get(id))}; its status: ${json(n.run.node.status())}`;
      }
    }
    return undefined;
  }
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
}

function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${messageTypeName(m.type)} term=${m.term}`;
  if (m.type === MessageType.MsgApp) s += ` prev=${m.index}/${m.logTerm} ents=${m.entries.length} commit=${m.commit}`;
  else if (m.type === MessageType.MsgAppResp) s += ` index=${m.index}${m.reject ? ` reject hint=${m.rejectHint}/${m.logTerm}` : ''}`;
  else if (m.type === MessageType.MsgHeartbeat) s += ` commit=${m.commit}`;
  else if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) s += ` last=${m.index}/${m.logTerm}`;
  else if (m.type === MessageType.MsgSnap) s += ` snap=${m.snapshot?.metadata.index}/${m.snapshot?.metadata.term}`;
  else if (m.reject) s += ' reject';
  return s;
}

function mkcc(type: ConfChangeType, nodeId: bigint, context: Uint8Array = new Uint8Array(0)): ConfChange {
  return { id: 0n, type, nodeId, context };
}

export function runSeed(opts: SimOptions): Promise<SimResult> {
  return new Simulation(opts).run();
}

/**
 * The log as a save left it: the entries just written over what raft's storage held
 * (a snapshot saved with them replaces everything up to its index).
 */
function savedLog(s: MemoryStorage, snap: Snapshot | undefined, entries: readonly Entry[]): {
  first: number;
  last: number;
  entry(i: number): Entry | undefined;
  term(i: number): number | undefined;
} {
  const from = entries[0]?.index;
  const first = snap !== undefined ? snap.metadata.index + 1 : s.firstIndex();
  const last = entries.at(-1)?.index ?? (snap !== undefined ? snap.metadata.index : s.lastIndex());
  const entry = (i: number): Entry | undefined => {
    if (from !== undefined && i >= from) return entries[i - from];
    if (snap !== undefined || i < s.firstIndex() || i > s.lastIndex()) return undefined;
    return s.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
  };
  return {
    first,
    last,
    entry,
    term: (i) => {
      const e = entry(i);
      if (e !== undefined) return e.term;
      if (snap !== undefined) return i === snap.metadata.index ? snap.metadata.term : undefined;
      try {
        return s.term(i);
      } catch {
        return undefined;
      }
    },
  };
}
