// A linearizability checker in the style of porcupine: the Wing–Gong–Lowe
// depth-first search over a time-ordered list of call and return events, with a
// cache of (set of linearized operations, model state) already explored.
//
// The model may be non-deterministic (a failed request may or may not have been
// applied): a step yields a set of states, and the search carries the set of all
// states consistent with the linearization so far (the power-set construction used
// by etcd's robustness suite), so it never branches on "applied or not".

export interface TimedOp {
  call: number;
  /** Infinity when the operation never returned (it may take effect any time after its call) */
  return: number;
}

export interface Model<S, Op> {
  init(): S;
  /** possible next states; empty when `op` cannot be linearized here */
  step(state: S, op: Op): S[];
  /** canonical identity of a state */
  key(state: S): string;
}

export type LinearizabilityResult<S> =
  | { verdict: 'ok' }
  | {
      verdict: 'illegal';
      /** the longest linearizable prefix found, as indexes into the input, in order */
      longest: number[];
      /** states after that prefix */
      states: S[];
      /** the operation that had to be linearized next but could not be, and its concurrent rivals */
      blocking: number;
      candidates: number[];
    }
  | { verdict: 'timeout'; explored: number };

interface Entry {
  op: number;
  isCall: boolean;
  time: number;
  /** a call's return entry */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface SearchState<S> {
  states: S[];
  /** two 32-bit hashes of the canonical keys of the states */
  h1: number;
  h2: number;
}

/** A frame of the search: an operation linearized on top of its parent. */
interface Frame<S> {
  entry: Entry;
  before: SearchState<S>;
  parent: Frame<S> | null;
  depth: number;
}

function buildList(ops: readonly TimedOp[]): Entry {
  const entries: Entry[] = [];
  ops.forEach((op, i) => {
    const ret: Entry = { op: i, isCall: false, time: op.return, match: null, prev: null, next: null };
    const call: Entry = { op: i, isCall: true, time: op.call, match: ret, prev: null, next: null };
    entries.push(call, ret);
  });
  // At equal times a call sorts before a return: touching operations count as
  // concurrent, so the checker never demands an order the clock cannot prove.
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Entry = { op: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(e: Entry): void {
  e.prev!.next = e.next;
  e.next!.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next !== null) m.next.prev = m.prev;
}

function unlift(e: Entry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next !== null) m.next.prev = m;
  e.prev!.next = e;
  e.next!.prev = e;
}

/** Two independent 32-bit mixes of an operation index: the linearized set is
 * hashed by XOR, so adding or removing an operation is O(1). */
function mix(x: number, seed: number): number {
  let h = (x ^ seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** 32-bit FNV-1a of a string, with a seed so two independent hashes can be taken. */
function hashString(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix(h, seed);
}

/**
 * The set of explored (linearized set, states) pairs, each identified by a
 * 64-bit hash (two 32-bit halves) in an open-addressing table: 8 bytes per
 * entry, so millions of entries fit. A collision could only prune a branch
 * (never accept a wrong history), with odds around n^2 / 2^64.
 */
class SeenSet {
  private table = new Uint32Array(1 << 16);
  size = 0;

  /** adds (a, b); false if it was already there */
  add(a: number, b: number): boolean {
    if (a === 0 && b === 0) a = 1; // (0, 0) marks an empty slot
    if ((this.size + 1) * 2 > this.table.length / 2) this.grow();
    return this.insert(this.table, a, b);
  }

  private insert(t: Uint32Array, a: number, b: number): boolean {
    const mask = t.length / 2 - 1;
    let i = (a ^ Math.imul(b, 0x9e3779b1)) & mask;
    for (;;) {
      const x = t[2 * i]!;
      const y = t[2 * i + 1]!;
      if (x === 0 && y === 0) {
        t[2 * i] = a;
        t[2 * i + 1] = b;
        if (t === this.table) this.size++;
        return true;
      }
      if (x === a && y === b) return false;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.table;
    const next = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.insert(next, old[i]!, old[i + 1]!);
    }
    this.table = next;
  }
}

function searchState<S, Op>(model: Model<S, Op>, states: S[]): SearchState<S> {
  let key: string;
  if (states.length === 1) {
    key = model.key(states[0]!);
  } else {
    const byKey = new Map<string, S>();
    for (const s of states) byKey.set(model.key(s), s);
    const keys = [...byKey.keys()].sort();
    states = keys.map((k) => byKey.get(k)!);
    key = keys.join('\n');
  }
  return { states, h1: hashString(key, 0x27d4eb2f), h2: hashString(key, 0x165667b1) };
}

export interface CheckOptions {
  /** Date.now() after which the search gives up with 'timeout' */
  deadline?: number;
  /** explored states after which the search gives up with 'timeout' (bounds memory) */
  maxExplored?: number;
}

export function checkLinearizable<S, Op extends TimedOp>(
  ops: readonly Op[],
  model: Model<S, Op>,
  opts: CheckOptions = {},
): LinearizabilityResult<S> {
  const head = buildList(ops);
  const h1 = ops.map((_, i) => mix(i, 0x9e3779b9));
  const h2 = ops.map((_, i) => mix(i, 0x85ebca6b));
  let hash1 = 0;
  let hash2 = 0;
  // (linearized set, states) pairs already explored
  const seen = new SeenSet();
  const maxExplored = opts.maxExplored ?? 10_000_000;
  let current = searchState(model, [model.init()]);
  let top: Frame<S> | null = null;
  let depth = 0;

  let best: { frame: Frame<S> | null; states: S[]; blocking: number; candidates: number[] } | null = null;
  let bestDepth = -1;
  let iterations = 0;

  let entry: Entry | null = head.next;
  while (head.next !== null) {
    if ((++iterations & 1023) === 0 && ((opts.deadline !== undefined && Date.now() > opts.deadline) || seen.size > maxExplored)) {
      return { verdict: 'timeout', explored: seen.size };
    }
    if (entry === null) throw new Error('linearizability: fell off the event list');
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const next: S[] = [];
      for (const s of current.states) for (const n of model.step(s, op)) next.push(n);
      if (next.length > 0) {
        const ns = searchState(model, next);
        const a = mix((hash1 ^ h1[entry.op]!) >>> 0, ns.h1);
        const b = mix((hash2 ^ h2[entry.op]!) >>> 0, ns.h2);
        if (seen.add(a, b)) {
          top = { entry, before: current, parent: top, depth: ++depth };
          hash1 ^= h1[entry.op]!;
          hash2 ^= h2[entry.op]!;
          current = ns;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
      continue;
    }
    // A return entry: its operation had to be linearized before here and was not.
    if (depth > bestDepth) {
      bestDepth = depth;
      const candidates: number[] = [];
      for (let e: Entry | null = head.next; e !== null && e !== entry; e = e.next) if (e.isCall) candidates.push(e.op);
      best = { frame: top, states: current.states, blocking: entry.op, candidates };
    }
    if (top === null) break;
    const frame: Frame<S> = top;
    top = frame.parent;
    depth--;
    current = frame.before;
    hash1 ^= h1[frame.entry.op]!;
    hash2 ^= h2[frame.entry.op]!;
    unlift(frame.entry);
    entry = frame.entry.next;
  }
  if (head.next === null) return { verdict: 'ok' };
  const longest: number[] = [];
  for (let f = best!.frame; f !== null; f = f.parent) longest.push(f.entry.op);
  longest.reverse();
  return { verdict: 'illegal', longest, states: best!.states, blocking: best!.blocking, candidates: best!.candidates };
}
