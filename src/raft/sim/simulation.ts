// The deterministic cluster simulator. One seed fixes everything: the profile, the
// network's choices, every node's election timeouts and every disturbance, so a
// failing seed replays exactly. Each step: maybe tick, maybe disturb (crash,
// restart, partition, membership change, compaction, transfer, hostile message,
// client proposal or read), deliver due messages, then let every live node handle
// its Readies the way the server does: persist, send, apply, advance. The Checker
// verifies Raft's safety properties as this happens; the run ends with a calm phase
// that must bring every member to the same applied state (liveness).

import {
  ConfChangeType,
  type ConfChange,
  type ConfState,
  EntryType,
  type Message,
  MessageType,
  type Snapshot,
  decodeConfChange,
  emptyConfState,
  messageTypeName,
} from '../../raftpb/index.js';
import { MemoryStorage } from '../memory-storage.js';
import { ProposalDroppedError, StepError } from '../errors.js';
import type { RaftLogger } from '../logger.js';
import { RawNode } from '../raw-node.js';
import type { Ready } from '../types.js';
import { Checker, InvariantViolation } from './checker.js';
import { SimNetwork } from './network.js';
import { Rng } from './prng.js';
import { hostileMessage } from './hostile.js';
import { type SimProfile, calmFaults, drawProfile } from './profile.js';

/**
 * How the simulated server persists. Anything but 'correct' is a deliberately broken
 * driver, used to prove that the checker notices.
 */
export type Persistence =
  | 'correct'
  /** the vote is not written to disk: after a restart a node may vote twice in a term */
  | 'forget-vote'
  /** reads are served from the local commit index without ReadIndex */
  | 'local-reads';

export interface SimOptions {
  seed: number;
  /** steps to run (default 3000) */
  steps?: number;
  /** force the initial cluster size (default: drawn from the seed) */
  nodes?: number;
  /** override parts of the profile drawn from the seed */
  profile?: Partial<SimProfile>;
  persistence?: Persistence;
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

interface SimNode {
  readonly id: bigint;
  /** the node's disk: survives crashes */
  readonly storage: MemoryStorage;
  readonly rng: Rng;
  rn: RawNode | undefined;
  app: AppState;
  /** entries up to here were verified as committed */
  checkedCommit: number;
  /** applied its own removal: shuts down once another leader is in charge */
  retiring: boolean;
  /** shut down for good */
  removed: boolean;
  restartAt: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Simulation {
  readonly seed: number;
  readonly profile: SimProfile;
  private readonly steps: number;
  private readonly persistence: Persistence;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly net: SimNetwork;
  private readonly act: Rng;
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
  };

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    const root = new Rng(opts.seed);
    this.profile = { ...drawProfile(root.fork(), opts.nodes), ...opts.profile };
    this.steps = opts.steps ?? 3000;
    this.persistence = opts.persistence ?? 'correct';
    this.trace = opts.trace;
    this.net = new SimNetwork(root.fork(), { ...this.profile.faults });
    this.net.onLost = (m) => {
      // The transport reports every failed snapshot send, as etcd's does.
      if (m.type === MessageType.MsgSnap) this.nodes.get(m.from)?.rn?.reportSnapshot(m.to, 'failure');
    };
    this.act = root.fork();
    const nodeRng = root.fork();
    // The last quarter (at least 600 steps) is calm so the cluster must converge.
    this.healAt = this.steps - Math.max(600, this.steps >> 2);
    this.quietAt = this.steps - 200;
    const ids = this.founders().map((p) => p.id);
    this.nextId = BigInt(this.profile.nodes + 1);
    for (const id of ids) this.createNode(id, nodeRng.fork()).rn!.bootstrap(this.founders());
  }

  private founders(): { id: bigint }[] {
    const out: { id: bigint }[] = [];
    for (let i = 1; i <= this.profile.nodes; i++) out.push({ id: BigInt(i) });
    return out;
  }

  private log(line: string): void {
    this.trace?.(`[${this.now}] ${line}`);
  }

  private createNode(id: bigint, rng: Rng): SimNode {
    const n: SimNode = {
      id,
      storage: new MemoryStorage(),
      rng,
      rn: undefined,
      app: { index: 0, hash: 0, confState: emptyConfState },
      checkedCommit: 0,
      retiring: false,
      removed: false,
      restartAt: -1,
    };
    this.nodes.set(id, n);
    this.startRaft(n);
    return n;
  }

  private startRaft(n: SimNode): void {
    const p = this.profile;
    const logger: RaftLogger | undefined =
      this.trace === undefined
        ? undefined
        : {
            debug: () => {},
            info: (m) => this.log(`n${n.id}: ${m}`),
            warn: (m) => this.log(`n${n.id}: WARN ${m}`),
            error: (m) => this.log(`n${n.id}: ERROR ${m}`),
          };
    n.rn = new RawNode({
      id: n.id,
      electionTick: p.electionTick,
      heartbeatTick: p.heartbeatTick,
      storage: n.storage,
      applied: n.app.index,
      maxSizePerMsg: p.maxSizePerMsg,
      maxInflightMsgs: p.maxInflightMsgs,
      maxUncommittedEntriesSize: p.maxUncommittedEntriesSize,
      checkQuorum: p.checkQuorum,
      preVote: p.preVote,
      random: () => n.rng.next(),
      logger,
    });
  }

  private live(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.rn !== undefined) out.push(n);
    return out;
  }

  private leaderNode(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.live()) {
      const st = n.rn!.status();
      if (st.softState.raftState === 'leader' && st.hardState.term > bestTerm) {
        best = n;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  run(): SimResult {
    let error: string | undefined;
    try {
      for (this.now = 0; this.now < this.steps; this.now++) this.step();
      // Calm and without new proposals, the cluster must converge; slow profiles
      // (one in-flight message of 64 bytes) may need extra time to drain a backlog.
      const limit = this.now + 4000;
      for (; this.now < limit && this.livenessProblem() !== undefined; this.now++) this.step();
      const problem = this.livenessProblem();
      if (problem !== undefined) throw new InvariantViolation(`liveness: ${problem}`);
    } catch (e) {
      if (e instanceof InvariantViolation) error = e.message;
      else error = `step ${this.now}: crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
      this.log(`FAILED: ${error}`);
    }
    this.stats.committed = this.checker.maxCommitted;
    this.stats.readsServed = this.checker.readsServed;
    this.stats.messagesSent = this.net.sent;
    this.stats.messagesDropped = this.net.dropped;
    const res: SimResult = { seed: this.seed, ok: error === undefined, steps: this.steps, profile: this.profile, stats: this.stats };
    if (error !== undefined) res.error = error;
    return res;
  }

  private step(): void {
    this.checker.step = this.now;
    const p = this.profile;
    if (this.now === this.healAt) this.heal();
    const calm = this.healed;

    if (this.now % p.tickEvery === 0) for (const n of this.live()) n.rn!.tick();

    for (const n of this.nodes.values()) {
      if (n.rn === undefined && !n.removed && n.restartAt >= 0 && n.restartAt <= this.now) this.restart(n);
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
    for (const n of this.live()) {
      for (let i = 0; i < 4 && n.rn !== undefined && n.rn.hasReady(); i++) this.handleReady(n);
    }
  }

  // ---- the server's Ready loop, simulated ----

  private handleReady(n: SimNode): void {
    const rn = n.rn!;
    const rd = rn.ready();
    const st = rn.status();
    const isLeader = st.softState.raftState === 'leader';
    if (rd.softState?.raftState === 'leader') {
      this.stats.leaders++;
      this.checker.leader(n.id, st.hardState.term);
      this.log(`n${n.id} is leader of term ${st.hardState.term}`);
    }
    // Etcd's leader sends before its own write (thesis §10.2.1) — allowed unless this
    // Ready changes term or vote, which must be durable before anyone hears of them.
    const termOrVoteChanged = rd.hardState !== undefined && (rd.hardState.term !== this.lastHard(n).term || rd.hardState.vote !== this.lastHard(n).vote);
    const sendFirst = this.profile.leaderSendsFirst && isLeader && !termOrVoteChanged;
    if (sendFirst) this.sendAll(n, rd);

    // The bootstrap Ready is written atomically (etcd creates its WAL in a temporary
    // directory and renames it), so no crash in the middle of that one.
    const bootstrapped = n.storage.initialState().hardState.term > 0;
    if (!this.healed && bootstrapped && this.act.chance(this.profile.crashMidReadyRate)) {
      // Power loss during the write: a prefix of the entries made it, nothing else.
      if (rd.snapshot === undefined) {
        const k = this.act.int(rd.entries.length + 1);
        this.persistEntries(n, rd.entries.slice(0, k));
      }
      this.log(`n${n.id} crashed while persisting a Ready`);
      this.stop(n);
      return;
    }

    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    this.persistEntries(n, rd.entries);
    if (rd.hardState !== undefined) {
      n.storage.setHardState(this.persistence === 'forget-vote' ? { ...rd.hardState, vote: 0n } : rd.hardState);
      this.checkCommitted(n, rd.hardState.commit);
    }
    if (rd.softState?.raftState === 'leader') {
      const s = n.storage;
      this.checker.leaderCompleteness(n.id, st.hardState.term, s.firstIndex(), s.lastIndex(), (i) => s.term(i));
    }
    if (!sendFirst) this.sendAll(n, rd);

    if (rd.snapshot !== undefined) this.applySnapshot(n, rd.snapshot);
    let removedSelf = false;
    for (const e of rd.committedEntries) {
      n.app.hash = this.checker.applied(n.id, e, n.app.index, n.app.hash);
      n.app.index = e.index;
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        n.app.confState = rn.applyConfChange(cc);
        if (this.onConfChangeApplied(n, cc)) removedSelf = true;
      }
    }
    for (const rs of rd.readStates) this.checker.readServed(dec.decode(rs.requestCtx), n.id, rs.index);
    rn.advance(rd);
    if (
      !this.healed &&
      rd.hardState !== undefined &&
      rd.hardState.vote !== 0n &&
      rd.hardState.vote !== n.id &&
      this.act.chance(this.profile.crashAfterVoteRate)
    ) {
      this.log(`n${n.id} crashes right after voting for n${rd.hardState.vote}`);
      this.stop(n);
      return;
    }
    if (removedSelf) {
      this.log(`n${n.id} applied its own removal`);
      n.retiring = true;
    }
    // A removed member lingers (etcd waits a moment too) until a leader runs a
    // configuration without it: until then the others may still need its vote, or
    // need a removed leader to hand over and tell them the removal committed.
    if (n.retiring) {
      const l = this.leaderNode();
      if (l !== undefined && l !== n) {
        const cs = l.rn!.status().config;
        if (!cs.voters.includes(n.id) && !cs.learners.includes(n.id)) {
          this.log(`n${n.id} was removed and shuts down`);
          n.removed = true;
          this.stop(n);
        }
      }
    }
  }

  private lastHard(n: SimNode): { term: number; vote: bigint } {
    return n.storage.initialState().hardState;
  }

  private persistEntries(n: SimNode, ents: Ready['entries']): void {
    if (ents.length === 0) return;
    n.storage.append(ents);
    let prevTerm = this.termOf(n.storage, ents[0]!.index - 1);
    for (const e of ents) {
      this.checker.persisted(n.id, e, prevTerm);
      prevTerm = e.term;
    }
  }

  private termOf(s: MemoryStorage, i: number): number | undefined {
    try {
      return s.term(i);
    } catch {
      return undefined;
    }
  }

  /** Everything up to commit in n's (now persisted) log is committed: record it. */
  private checkCommitted(n: SimNode, commit: number): void {
    const s = n.storage;
    const lo = Math.max(n.checkedCommit + 1, s.firstIndex());
    if (commit >= lo) {
      for (const e of s.entries(lo, commit + 1, Number.MAX_SAFE_INTEGER)) this.checker.committedEntry(n.id, e);
    }
    n.checkedCommit = Math.max(n.checkedCommit, commit);
  }

  private sendAll(n: SimNode, rd: Ready): void {
    for (let m of rd.messages) {
      if (m.type === MessageType.MsgSnap) m = { ...m, snapshot: this.freshSnapshot(n) };
      const delivered = this.net.send(m, this.now);
      if (!delivered && this.net.isCut(m.from, m.to) && this.act.chance(0.2)) n.rn?.reportUnreachable(m.to);
    }
  }

  /**
   * Like etcd's createMergedSnapshotMessage: a MsgSnap carries the sender's current
   * applied state and configuration, not the possibly old snapshot in Storage (a
   * member added after that snapshot could not use it: it is not in its ConfState).
   */
  private freshSnapshot(n: SimNode): Snapshot {
    const s = n.storage;
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
      // The new member starts empty and learns everything from the leader.
      this.log(`starting new member n${cc.nodeId}`);
      this.createNode(cc.nodeId, this.act.fork());
    }
    return cc.type === ConfChangeType.RemoveNode && cc.nodeId === n.id;
  }

  private deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    if (to?.rn === undefined) {
      if (m.type === MessageType.MsgSnap) from?.rn?.reportSnapshot(m.to, 'failure');
      return;
    }
    if (this.trace !== undefined) this.log(`deliver ${describeMessage(m)}`);
    try {
      to.rn.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError) this.stats.proposalsDropped++;
      else if (!(e instanceof StepError)) throw e;
    }
    if (m.type === MessageType.MsgSnap) from?.rn?.reportSnapshot(m.to, 'finish');
  }

  // ---- disturbances ----

  private stop(n: SimNode): void {
    n.rn = undefined;
    const [lo, hi] = this.profile.restartDelay;
    n.restartAt = this.healed ? this.now + 1 : this.now + this.act.range(lo, hi);
    this.stats.crashes++;
  }

  private crash(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    this.log(`crash n${n.id}`);
    this.stop(n);
  }

  private restart(n: SimNode): void {
    // The application state is volatile: rebuilt from the snapshot, then replayed.
    const snap = n.storage.snapshot();
    if (snap.metadata.index > 0) {
      const { index, hash } = JSON.parse(dec.decode(snap.data)) as { index: number; hash: number };
      n.app = { index, hash, confState: snap.metadata.confState };
    } else {
      n.app = { index: 0, hash: 0, confState: emptyConfState };
    }
    n.checkedCommit = Math.max(n.app.index, n.storage.initialState().hardState.commit);
    n.restartAt = -1;
    this.startRaft(n);
    // A founding member that died before its bootstrap was written starts over.
    if (n.id <= BigInt(this.profile.nodes) && n.storage.lastIndex() === 0) n.rn!.bootstrap(this.founders());
    this.log(`restart n${n.id} (applied ${n.app.index}, last index ${n.storage.lastIndex()})`);
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
    const cs = l.rn!.status().config;
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
        cc = mkcc(op === 'add-voter' ? ConfChangeType.AddNode : ConfChangeType.AddLearnerNode, this.nextId++);
        break;
      case 'promote':
        cc = mkcc(ConfChangeType.AddNode, this.act.pick(cs.learners));
        break;
      case 'remove-learner':
        cc = mkcc(ConfChangeType.RemoveNode, this.act.pick(cs.learners));
        break;
      case 'remove-voter':
        cc = mkcc(ConfChangeType.RemoveNode, this.act.pick(cs.voters));
        break;
      default:
        cc = mkcc(ConfChangeType.AddLearnerNode, this.act.pick(cs.voters));
    }
    try {
      l.rn!.proposeConfChange(cc);
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
    const voters = l.rn!.status().config.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.act.pick(voters);
    this.log(`n${l.id} transfers leadership to n${to}`);
    l.rn!.transferLeader(to);
  }

  private propose(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const data = enc.encode(`v${this.seq++}`);
    try {
      n.rn!.propose(data);
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
      this.checker.readServed(ctx, n.id, n.rn!.status().hardState.commit);
      return;
    }
    n.rn!.readIndex(enc.encode(ctx));
  }

  private compact(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const s = n.storage;
    const snapIndex = s.snapshot().metadata.index;
    if (n.app.index - snapIndex < 5) return;
    s.createSnapshot(n.app.index, n.app.confState, this.encodeApp(n.app));
    const to = n.app.index - this.act.int(6);
    if (to >= s.firstIndex()) s.compact(to);
    this.log(`n${n.id} snapshot at ${n.app.index}, compacted to ${to}`);
  }

  /** A message no correct peer would send; it must be refused without effect. */
  private hostile(): void {
    const live = this.live();
    if (live.length === 0) return;
    const n = this.act.pick(live);
    const rn = n.rn!;
    const m = hostileMessage(n.id, rn.status(), this.act);
    if (m === undefined) return;
    try {
      rn.step(m);
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

  private heal(): void {
    this.healed = true;
    this.net.healAll();
    this.partitionEndsAt = -1;
    this.net.faults = { ...calmFaults };
    for (const n of this.nodes.values()) if (n.rn === undefined && !n.removed) n.restartAt = this.now;
    this.commitAtHeal = this.checker.maxCommitted;
    this.log('--- heal: no more faults; the cluster must converge ---');
  }

  /** undefined once a leader leads every member to the same applied state, after new commits */
  private livenessProblem(): string | undefined {
    const l = this.leaderNode();
    if (l === undefined) return 'no leader after the calm phase';
    if (this.checker.maxCommitted <= this.commitAtHeal) {
      return `nothing committed during the calm phase (commit ${this.checker.maxCommitted})`;
    }
    const st = l.rn!.status();
    if (l.app.index !== st.hardState.commit) return `leader n${l.id} applied ${l.app.index} of ${st.hardState.commit}`;
    for (const id of [...st.config.voters, ...st.config.learners]) {
      const n = this.nodes.get(id);
      if (n?.rn === undefined) return `member n${id} is not running`;
      if (n.app.index !== l.app.index) {
        return `member n${id} applied ${n.app.index}, leader n${l.id} applied ${l.app.index} (commit ${st.hardState.commit}); leader's progress for it: ${json(st.progress?.get(id))}; its status: ${json(n.rn.status())}`;
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

function mkcc(type: ConfChangeType, nodeId: bigint): ConfChange {
  return { id: 0n, type, nodeId, context: new Uint8Array(0) };
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
