// The interaction environment: RawNodes over MemoryStorage driven one command at a
// time, with everything they do written out as text. There is no clock and no
// randomness: time passes only through tick commands, and every node's randomized
// election timeout is exactly electionTick (its PRNG always returns 0), so
// `tick-election` makes a follower campaign. Messages wait in one in-flight queue
// until a deliver command (or stabilize) hands them to their recipient.
//
// The driver does what RawNode's contract asks of a server: persist a Ready's
// snapshot, entries and HardState to MemoryStorage, queue its messages, apply its
// committed conf changes, then advance. A MsgSnap leaves carrying the sender's
// applied state and configuration (etcd's createMergedSnapshotMessage) rather
// than the possibly older snapshot in its Storage.

import { EntryType, type Message, MessageType, type Snapshot, decodeConfChange } from '../../../src/raftpb/index.js';
import {
  MemoryStorage,
  type RaftConfig,
  type RaftLogger,
  RawNode,
  StepError,
  defaultMaxSizePerMsg,
} from '../../../src/raft/index.js';
import { Args } from './args.js';
import type { Directive } from './datadriven.js';
import {
  formatEntry,
  formatMessage,
  formatProgress,
  formatReady,
  formatSnapshotMeta,
  parseConfChange,
} from './format.js';

const levels = ['debug', 'info', 'warn', 'error', 'none'] as const;
type Level = (typeof levels)[number];

interface TraceNode {
  readonly id: bigint;
  readonly rn: RawNode;
  readonly storage: MemoryStorage;
  readonly electionTick: number;
  readonly heartbeatTick: number;
}

const noData = new Uint8Array(0);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export class InteractionEnv {
  /** in ID order: nodes are only ever added with increasing IDs */
  private readonly nodes = new Map<bigint, TraceNode>();
  /** sent and not yet delivered or dropped, in send order */
  private inFlight: Message[] = [];
  /** messages from or to these nodes are dropped when delivered */
  private readonly isolated = new Set<bigint>();
  private level: Level = 'info';
  private out: string[] = [];
  private indent = '';
  /** every node logs here: its lines appear in the output where they happen */
  private readonly raftLogger: RaftLogger = {
    debug: (msg) => this.log('debug', msg),
    info: (msg) => this.log('info', msg),
    warn: (msg) => this.log('warn', msg),
    error: (msg) => this.log('error', msg),
  };

  /** Run one directive; returns its output (log lines included). */
  handle(d: Directive): string {
    this.out = [];
    this.indent = '';
    const a = new Args(d);
    switch (d.cmd) {
      case 'log-level':
        this.level = this.levelWord(a);
        break;
      case 'add-nodes':
        this.addNodes(a);
        break;
      case 'campaign':
        this.node(a, a.id(0)).rn.campaign();
        break;
      case 'propose': {
        const n = this.node(a, a.id(0));
        this.refusable(() => n.rn.propose(enc(a.word(1, 'data'))));
        break;
      }
      case 'propose-conf-change':
        this.proposeConfChange(a);
        break;
      case 'tick-election': {
        const n = this.node(a, a.id(0));
        for (let i = 0; i < n.electionTick; i++) n.rn.tick();
        break;
      }
      case 'tick-heartbeat': {
        const n = this.node(a, a.id(0));
        for (let i = 0; i < n.heartbeatTick; i++) n.rn.tick();
        break;
      }
      case 'process-ready':
        for (const id of a.ids()) this.processReady(this.node(a, id));
        break;
      case 'deliver-msgs':
        for (const id of a.ids()) this.deliverMsgs(this.node(a, id));
        break;
      case 'drop-msgs':
        for (const id of a.ids()) this.dropMsgs(id);
        break;
      case 'stabilize':
        this.stabilize(a);
        break;
      case 'isolate':
        this.isolated.add(this.node(a, a.id(0)).id);
        break;
      case 'heal':
        this.isolated.clear();
        break;
      case 'raft-log':
        this.raftLog(this.node(a, a.id(0)));
        break;
      case 'raft-state':
        this.raftState();
        break;
      case 'status':
        this.status(this.node(a, a.id(0)));
        break;
      case 'read-index':
        this.node(a, a.id(0)).rn.readIndex(enc(a.word(1, 'request context')));
        break;
      case 'transfer-leadership':
        this.node(a, a.id(0)).rn.transferLeader(a.id(1));
        break;
      case 'compact':
        this.compact(this.node(a, a.id(0)));
        break;
      case 'report-snapshot':
        this.node(a, a.id(0)).rn.reportSnapshot(a.id(1), a.oneOf('status', ['finish', 'failure'] as const, 'finish'));
        break;
      default:
        throw a.error('unknown command');
    }
    a.finish();
    return this.out.join('\n');
  }

  // ---- output ----

  private emit(line: string): void {
    this.out.push(this.indent + line);
  }

  /** A titled block whose lines (log lines included) are indented under the title. */
  private section(title: string, body: () => void): void {
    this.emit(title);
    const outer = this.indent;
    this.indent += '  ';
    try {
      body();
    } finally {
      this.indent = outer;
    }
  }

  private log(level: Level, msg: string): void {
    if (levels.indexOf(level) >= levels.indexOf(this.level)) this.emit(`${level.toUpperCase()} ${msg}`);
  }

  /** Requests raft refuses with a StepError (a dropped proposal) are part of the story. */
  private refusable(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      this.emit(`refused: ${e.message}`);
    }
  }

  private levelWord(a: Args): Level {
    const w = a.word(0, 'level');
    const found = levels.find((l) => l === w);
    if (found === undefined) throw a.error(`level must be one of ${levels.join(', ')}`);
    return found;
  }

  // ---- nodes ----

  private node(a: Args, id: bigint): TraceNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw a.error(`no node ${id}`);
    return n;
  }

  /**
   * add-nodes N [voters=(..) [learners=(..)] index=I | voters=(..) bootstrap=true]
   *           [pre-vote=true] [check-quorum=true] [election-tick=10] [heartbeat-tick=1] [read-only=safe|lease-based]
   *           [max-size-per-msg=BYTES]
   *
   * With voters and index, each node starts from a snapshot at index I (term 1) of
   * that configuration, at term 1, as a member restored from it. With bootstrap=true,
   * it starts empty and RawNode.bootstrap adds the voters, as a new cluster does.
   * With neither, it starts empty and unconfigured: a member about to be added,
   * which learns everything from the leader.
   */
  private addNodes(a: Args): void {
    const count = Number(a.word(0, 'node count'));
    const voters = a.idList('voters');
    const learners = a.idList('learners');
    const index = a.int('index', 0);
    const bootstrap = a.bool('bootstrap');
    const electionTick = a.int('election-tick', 10);
    const heartbeatTick = a.int('heartbeat-tick', 1);
    const cfg: Omit<RaftConfig, 'id' | 'storage'> = {
      electionTick,
      heartbeatTick,
      preVote: a.bool('pre-vote'),
      checkQuorum: a.bool('check-quorum'),
      readOnlyOption: a.oneOf('read-only', ['safe', 'lease-based'] as const, 'safe'),
      maxSizePerMsg: a.int('max-size-per-msg', defaultMaxSizePerMsg),
      random: () => 0,
      logger: this.raftLogger,
    };
    if (!Number.isSafeInteger(count) || count < 1) throw a.error('the node count must be a positive integer');
    if (bootstrap && (voters.length === 0 || learners.length > 0 || index !== 0)) {
      throw a.error('bootstrap=true takes voters and neither learners nor index');
    }
    if (!bootstrap && (voters.length > 0) !== index > 0) throw a.error('voters and index go together');
    for (let i = 0; i < count; i++) {
      const id = BigInt(this.nodes.size + 1);
      const storage = new MemoryStorage();
      if (index > 0) {
        storage.applySnapshot({
          data: noData,
          metadata: {
            index,
            term: 1,
            confState: { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false },
          },
        });
        // Whoever wrote the snapshot's last entry was at term 1 at least: a member
        // at term 0 would believe that entry is of a term it could still lead in
        // (a leader elected at term 1 would count it as committed in its own term).
        storage.setHardState({ term: 1, vote: 0n, commit: index });
      }
      const rn = new RawNode({ ...cfg, id, storage });
      if (bootstrap) rn.bootstrap(voters.map((v) => ({ id: v })));
      this.nodes.set(id, { id, rn, storage, electionTick, heartbeatTick });
    }
  }

  /** propose-conf-change ID CHANGE: v4 (add voter), l4 (add learner or demote), r4 (remove) or u4 (update). */
  private proposeConfChange(a: Args): void {
    const n = this.node(a, a.id(0));
    const changes = a.wordsFrom(1);
    if (changes.length !== 1) {
      // etcd-ts raft refuses ConfChangeV2: there is no joint configuration to trace.
      throw a.error('takes exactly one change (etcd-ts raft does single-step changes only, no joint consensus)');
    }
    const cc = parseConfChange(changes[0]!);
    if (cc === undefined) throw a.error(`a change is v<id>, l<id>, r<id> or u<id>, got ${changes[0]}`);
    this.refusable(() => n.rn.proposeConfChange(cc));
  }

  // ---- the driver ----

  /** Handle one Ready: persist, send, apply, advance. False when there was none. */
  private processReady(n: TraceNode): boolean {
    if (!n.rn.hasReady()) return false;
    this.section(`> ${n.id} handling Ready`, () => {
      const rd = n.rn.ready();
      for (const line of formatReady(rd)) this.emit(line);
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.send(n, m);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) n.rn.applyConfChange(decodeConfChange(e.data));
      }
      n.rn.advance(rd);
    });
    return true;
  }

  private send(n: TraceNode, m: Message): void {
    if (m.type === MessageType.MsgSnap) {
      const snap = this.appliedStateSnapshot(n);
      if (snap.metadata.index !== m.snapshot?.metadata.index) {
        this.emit(`MsgSnap to ${m.to} carries the applied state instead: ${formatSnapshotMeta(snap.metadata)}`);
      }
      m = { ...m, snapshot: snap };
    }
    this.inFlight.push(m);
  }

  /** A snapshot of n's applied index and configuration, recorded in its Storage. */
  private appliedStateSnapshot(n: TraceNode): Snapshot {
    const st = n.rn.status();
    if (st.applied > n.storage.snapshot().metadata.index) n.storage.createSnapshot(st.applied, st.config, noData);
    return n.storage.snapshot();
  }

  /** Step every in-flight message addressed to n. False when there was none. */
  private deliverMsgs(n: TraceNode): boolean {
    const mine = this.inFlight.filter((m) => m.to === n.id);
    if (mine.length === 0) return false;
    this.inFlight = this.inFlight.filter((m) => m.to !== n.id);
    this.section(`> ${n.id} receiving messages`, () => {
      for (const m of mine) {
        if (this.isolated.has(m.from) || this.isolated.has(m.to)) {
          this.emit(`dropped: ${formatMessage(m)}`);
          continue;
        }
        this.emit(formatMessage(m));
        this.refusable(() => n.rn.step(m));
      }
    });
    return true;
  }

  private dropMsgs(to: bigint): void {
    for (const m of this.inFlight) if (m.to === to) this.emit(`dropped: ${formatMessage(m)}`);
    this.inFlight = this.inFlight.filter((m) => m.to !== to);
  }

  /**
   * stabilize [ID...]: rounds of (every node handles one Ready, then every node
   * receives what was sent to it) until nothing moves. With IDs, only those nodes
   * take part; messages to the others stay in flight.
   */
  private stabilize(a: Args): void {
    const ids = a.ids();
    const sel = ids.length === 0 ? [...this.nodes.values()] : ids.map((id) => this.node(a, id));
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const n of sel) if (this.processReady(n)) moved = true;
      for (const n of sel) if (this.deliverMsgs(n)) moved = true;
      if (!moved) return;
    }
    throw a.error('did not stabilize within 1000 rounds');
  }

  /**
   * compact ID: record a snapshot of the node's applied state and discard its log up
   * to it, as a server does every --snapshot-count entries.
   */
  private compact(n: TraceNode): void {
    const snap = this.appliedStateSnapshot(n);
    n.storage.compact(snap.metadata.index);
    this.raftLog(n);
  }

  // ---- inspection ----

  /** raft-log ID: the persisted log (MemoryStorage), after its snapshot. */
  private raftLog(n: TraceNode): void {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    if (last < first) {
      this.emit(`log is empty: first index=${first}, last index=${last}`);
      return;
    }
    for (const e of n.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) this.emit(formatEntry(e));
  }

  /** raft-state: every node's role, membership (as it sees itself), term and leader. */
  private raftState(): void {
    for (const n of this.nodes.values()) {
      const st = n.rn.status();
      const { voters, learners } = st.config;
      const member = voters.includes(n.id) ? 'Voter' : learners.includes(n.id) ? 'Learner' : 'Non-member';
      const cut = this.isolated.has(n.id) ? ' isolated' : '';
      const { raftState, lead } = st.softState;
      this.emit(`${n.id}: ${raftState} (${member}) Term:${st.hardState.term} Lead:${lead}${cut}`);
    }
  }

  /** status ID: a leader's progress for every member. */
  private status(n: TraceNode): void {
    const st = n.rn.status();
    if (st.progress === undefined) {
      this.emit(`${n.id} is a ${st.softState.raftState}: only a leader tracks progress`);
      return;
    }
    const ids = [...st.progress.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    for (const id of ids) this.emit(formatProgress(id, st.progress.get(id)!));
  }
}
