// A small synchronous cluster harness for raft unit tests: every node persists to a
// MemoryStorage, messages go through an in-memory queue that tests can filter, and
// stabilize() runs Ready/deliver rounds until nothing moves.

import {
  type ConfChange,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  decodeConfChange,
  messageTypeName,
} from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode, type RaftConfig, type ReadState, type Ready, StepError } from '../../src/raft/index.js';
import { seededRandom } from '../../src/pkg/rng.js';

/** A tiny deterministic PRNG for election timeouts. */
export const prng = seededRandom;

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface TestNode {
  id: bigint;
  rn: RawNode;
  storage: MemoryStorage;
  /** data of applied normal entries, in order */
  applied: string[];
  appliedEntries: Entry[];
  readStates: ReadState[];
  down: boolean;
}

export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

export class Cluster {
  readonly nodes = new Map<bigint, TestNode>();
  /** messages sent but not yet delivered */
  queue: Message[] = [];
  /** return false to drop a message */
  filter: (m: Message) => boolean = () => true;
  /** rewrite a message in flight (after filter) */
  mutate: (m: Message) => Message = (m) => m;
  /** every message ever sent, for assertions */
  readonly sent: Message[] = [];
  readonly stepErrors: StepError[] = [];

  constructor(
    ids: readonly bigint[],
    private readonly opts: NodeOptions = {},
    seed = 1,
  ) {
    for (const id of ids) this.add(id, true, ids, seed);
  }

  /** Create a node; `boot` bootstraps it with peers (a new cluster), otherwise it starts empty (joining). */
  add(id: bigint, boot: boolean, peers: readonly bigint[] = [], seed = 1, opts: NodeOptions = {}): TestNode {
    const storage = new MemoryStorage();
    const rn = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: prng(seed * 1000 + Number(id)),
      ...this.opts,
      ...opts,
    });
    if (boot) rn.bootstrap(peers.map((p) => ({ id: p })));
    const n: TestNode = { id, rn, storage, applied: [], appliedEntries: [], readStates: [], down: false };
    this.nodes.set(id, n);
    return n;
  }

  node(id: bigint): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Process one Ready of one node (persist, queue messages, apply, advance). */
  processReady(n: TestNode): boolean {
    if (n.down || !n.rn.hasReady()) return false;
    this.handleReady(n, n.rn.ready());
    return true;
  }

  /** Handle a Ready the test took from n itself: persist, queue messages, apply, advance. */
  handleReady(n: TestNode, rd: Ready): void {
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      this.sent.push(m);
      this.queue.push(m);
    }
    for (const e of rd.committedEntries) {
      n.appliedEntries.push(e);
      if (e.type === EntryType.ConfChange) {
        n.rn.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.length > 0) {
        n.applied.push(dec(e.data));
      }
    }
    n.readStates.push(...rd.readStates);
    n.rn.advance(rd);
  }

  /** Deliver every queued message once (messages they cause are queued for the next round). */
  deliverAll(): boolean {
    const q = this.queue;
    this.queue = [];
    for (const m of q) this.deliver(m);
    return q.length > 0;
  }

  deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    if (to === undefined || to.down || !this.filter(m)) return;
    try {
      to.rn.step(this.mutate(m));
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      this.stepErrors.push(e);
    }
  }

  /** Run Ready and delivery rounds until quiet. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      let moved = false;
      for (const n of this.nodes.values()) while (this.processReady(n)) moved = true;
      if (this.deliverAll()) moved = true;
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tickAll(times = 1): void {
    for (let t = 0; t < times; t++) {
      for (const n of this.nodes.values()) if (!n.down) n.rn.tick();
      this.stabilize();
    }
  }

  /** Elect `id` by campaigning and stabilizing. */
  elect(id: bigint): void {
    this.node(id).rn.campaign();
    this.stabilize();
  }

  /** the leader of the highest term (a deposed leader may not know it yet) */
  leader(): TestNode | undefined {
    let best: TestNode | undefined;
    for (const n of this.nodes.values()) {
      const st = n.rn.status();
      if (n.down || st.softState.raftState !== 'leader') continue;
      if (best === undefined || st.hardState.term > best.rn.status().hardState.term) best = n;
    }
    return best;
  }

  propose(id: bigint, data: string): void {
    this.node(id).rn.propose(enc(data));
  }

  proposeConfChange(id: bigint, cc: Omit<ConfChange, 'id' | 'context'>): void {
    this.node(id).rn.proposeConfChange({ id: 0n, context: new Uint8Array(0), ...cc });
  }

  /** isolate id from everyone (both directions) */
  isolate(id: bigint): void {
    const prev = this.filter;
    this.filter = (m) => m.to !== id && m.from !== id && prev(m);
  }

  /** only messages between members of the same group get through */
  partition(...groups: bigint[][]): void {
    const side = new Map<bigint, number>();
    groups.forEach((g, i) => g.forEach((id) => side.set(id, i)));
    this.filter = (m) => side.get(m.from) === side.get(m.to);
  }

  heal(): void {
    this.filter = () => true;
    this.mutate = (m) => m;
  }

  /** Restart a node from its storage (losing nothing: everything processed was persisted). */
  restart(id: bigint, opts: NodeOptions = {}): TestNode {
    const old = this.node(id);
    const rn = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: old.storage,
      random: prng(Number(id) * 7919),
      ...this.opts,
      ...opts,
    });
    const n: TestNode = { ...old, rn, applied: [], appliedEntries: [], readStates: [], down: false };
    this.nodes.set(id, n);
    return n;
  }

  state(id: bigint): string {
    return this.node(id).rn.status().softState.raftState;
  }

  term(id: bigint): number {
    return this.node(id).rn.status().hardState.term;
  }

  commit(id: bigint): number {
    return this.node(id).rn.status().hardState.commit;
  }

  /** terms of the persisted log entries from firstIndex to lastIndex */
  logTerms(id: bigint): number[] {
    const s = this.node(id).storage;
    const out: number[] = [];
    for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
    return out;
  }
}

export function describe(m: Message): string {
  return `${m.from}->${m.to} ${messageTypeName(m.type)} term=${m.term} idx=${m.index}`;
}

export { EntryType, MessageType };
