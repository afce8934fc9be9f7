// etcd's key-value semantics as a sequential model for the linearizability
// checker: revision, keys with create/mod revision, version and lease, and leases.
//
// The model is applied to one partition of the history at a time (a group of keys
// and the leases used with them, see partition.ts). Other partitions keep creating
// revisions in between, so the model cannot predict the exact next revision; it
// keeps `rev`, a lower bound on the store revision at the current point, and
// requires every response revision to be consistent with it:
//   - a read or a non-mutating request at R needs R >= rev, and sets rev = R;
//   - a request that creates a revision at R needs R > rev, and sets rev = R.
// That revisions also agree across partitions is checked globally (revisions.ts).
//
// A failed or timed-out request may have been applied (etcd's "non-deterministic"
// model): the step returns both outcomes. An applied unknown put gets a mod
// revision known only to lie in an interval [lo, hi]; later reads that return the
// key pin it down, and every later known revision tightens hi.

import type { Compare, KeyValue, KvRequest, KvResponse, Operation, TxnRequestOp, TxnResponseOp } from './history.js';

/** A revision known to lie in [lo, hi]; exact when lo === hi. */
export interface Rev {
  readonly lo: number;
  readonly hi: number;
}

export interface KeyState {
  readonly value: string;
  readonly create: Rev;
  readonly mod: Rev;
  readonly version: number;
  readonly lease: string;
}

export interface EtcdState {
  /** lower bound on the store revision at this point of the linearization */
  readonly rev: number;
  readonly kvs: ReadonlyMap<string, KeyState>;
  /** leases granted and not revoked */
  readonly leases: ReadonlySet<string>;
}

export const NO_LEASE = '0';

export function initialState(): EtcdState {
  // An empty etcd store is at revision 1; the first write creates revision 2.
  return { rev: 1, kvs: new Map(), leases: new Set() };
}

const exact = (r: number): Rev => ({ lo: r, hi: r });
const isExact = (r: Rev): boolean => r.lo === r.hi;

/** Canonical text of a state: equal states have equal keys (used for the cache). */
export function stateKey(s: EtcdState): string {
  let out = String(s.rev);
  const keys = [...s.kvs.keys()].sort();
  for (const k of keys) {
    const v = s.kvs.get(k)!;
    out += `|${k}=${v.value},${v.create.lo}-${v.create.hi},${v.mod.lo}-${v.mod.hi},${v.version},${v.lease}`;
  }
  if (s.leases.size > 0) out += '|L' + [...s.leases].sort().join(',');
  return out;
}

export function inRange(key: string, rangeKey: string, end: string): boolean {
  if (end === '') return key === rangeKey;
  // etcd: range_end "\0" means every key >= key
  if (end === '\0') return key >= rangeKey;
  return key >= rangeKey && key < end;
}

/** A mutable copy of a state, for executing one request. */
class Draft {
  rev: number;
  kvs: Map<string, KeyState>;
  leases: Set<string>;

  constructor(s: EtcdState) {
    this.rev = s.rev;
    this.kvs = new Map(s.kvs);
    this.leases = new Set(s.leases);
  }

  freeze(): EtcdState {
    return { rev: this.rev, kvs: this.kvs, leases: this.leases };
  }

  keysIn(key: string, end: string): string[] {
    if (end === '') return this.kvs.has(key) ? [key] : [];
    return [...this.kvs.keys()].filter((k) => inRange(k, key, end)).sort();
  }

  /** Every revision still unknown must be <= bound (a later request saw the store at `bound`). */
  tighten(bound: number): boolean {
    for (const [k, v] of this.kvs) {
      if (isExact(v.mod) && isExact(v.create)) continue;
      const mod = v.mod.hi > bound ? { lo: v.mod.lo, hi: bound } : v.mod;
      const create = v.create.hi > bound ? { lo: v.create.lo, hi: bound } : v.create;
      if (mod.lo > mod.hi || create.lo > create.hi) return false;
      if (mod !== v.mod || create !== v.create) this.kvs.set(k, { ...v, mod, create });
    }
    return true;
  }

  put(key: string, value: string, lease: string, rev: Rev): boolean {
    if (lease !== NO_LEASE && !this.leases.has(lease)) return false; // "requested lease not found"
    const prev = this.kvs.get(key);
    this.kvs.set(
      key,
      prev === undefined
        ? { value, create: rev, mod: rev, version: 1, lease }
        : { value, create: prev.create, mod: rev, version: prev.version + 1, lease },
    );
    return true;
  }

  /** Checks a returned kv against the key's state and pins down unknown revisions. */
  match(kv: KeyValue): boolean {
    const s = this.kvs.get(kv.key);
    if (s === undefined) return false;
    if (s.value !== kv.value || s.version !== kv.version || s.lease !== kv.lease) return false;
    if (kv.modRevision < s.mod.lo || kv.modRevision > s.mod.hi) return false;
    if (kv.createRevision < s.create.lo || kv.createRevision > s.create.hi) return false;
    if (s.version === 1 && kv.createRevision !== kv.modRevision) return false;
    if (!isExact(s.mod) || !isExact(s.create)) {
      this.kvs.set(kv.key, { ...s, mod: exact(kv.modRevision), create: exact(kv.createRevision) });
    }
    return true;
  }

  matchRange(key: string, end: string, kvs: KeyValue[], count: number): boolean {
    const keys = this.keysIn(key, end);
    if (keys.length !== kvs.length || count !== keys.length) return false;
    for (let i = 0; i < keys.length; i++) {
      if (kvs[i]!.key !== keys[i] || !this.match(kvs[i]!)) return false;
    }
    return true;
  }
}

type Truth = 'T' | 'F' | '?';

function compareRev(r: Rev, result: Compare['result'], x: number): Truth {
  switch (result) {
    case 'EQUAL':
      return r.lo === x && r.hi === x ? 'T' : x < r.lo || x > r.hi ? 'F' : '?';
    case 'NOT_EQUAL': {
      const eq = compareRev(r, 'EQUAL', x);
      return eq === 'T' ? 'F' : eq === 'F' ? 'T' : '?';
    }
    case 'GREATER':
      return r.lo > x ? 'T' : r.hi <= x ? 'F' : '?';
    case 'LESS':
      return r.hi < x ? 'T' : r.lo >= x ? 'F' : '?';
  }
}

function compareOrdered<T>(a: T, b: T, result: Compare['result']): Truth {
  const ok = result === 'EQUAL' ? a === b : result === 'NOT_EQUAL' ? a !== b : result === 'GREATER' ? a > b : a < b;
  return ok ? 'T' : 'F';
}

function evaluate(d: Draft, c: Compare): Truth {
  const s = d.kvs.get(c.key);
  switch (c.target) {
    case 'VALUE':
      // etcd: a value compare on a missing key is always false
      return s === undefined ? 'F' : compareOrdered(s.value, String(c.operand), c.result);
    case 'VERSION':
      return compareOrdered(s?.version ?? 0, Number(c.operand), c.result);
    case 'LEASE':
      return compareOrdered(BigInt(s?.lease ?? NO_LEASE), BigInt(c.operand), c.result);
    case 'CREATE':
      return compareRev(s?.create ?? exact(0), c.result, Number(c.operand));
    case 'MOD':
      return compareRev(s?.mod ?? exact(0), c.result, Number(c.operand));
  }
}

/** Pins an unknown revision when a txn succeeded on `MOD/CREATE == x`. */
function resolveCompare(d: Draft, c: Compare): void {
  if (c.result !== 'EQUAL' || (c.target !== 'MOD' && c.target !== 'CREATE')) return;
  const s = d.kvs.get(c.key);
  if (s === undefined) return;
  const x = Number(c.operand);
  const pinned = s.version === 1 ? { mod: exact(x), create: exact(x) } : c.target === 'MOD' ? { mod: exact(x) } : { create: exact(x) };
  d.kvs.set(c.key, { ...s, ...pinned });
}

/**
 * Executes a txn branch. `rev` is the revision its writes get; `results` the
 * observed per-op responses (null = not observed). Returns whether anything
 * changed, or null when the results contradict the state.
 */
function runBranch(d: Draft, ops: TxnRequestOp[], rev: Rev, results: TxnResponseOp[] | null): boolean | null {
  if (results !== null && results.length !== ops.length) return null;
  let changed = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const res = results === null ? null : results[i]!;
    if (res !== null && res.type !== op.type) return null;
    switch (op.type) {
      case 'range':
        if (res !== null && res.type === 'range' && !d.matchRange(op.key, op.end, res.kvs, res.count)) return null;
        break;
      case 'put':
        if (!d.put(op.key, op.value, op.lease, rev)) return null;
        changed = true;
        break;
      case 'delete': {
        const keys = d.keysIn(op.key, op.end);
        if (res !== null && res.type === 'delete' && res.deleted !== keys.length) return null;
        for (const k of keys) d.kvs.delete(k);
        if (keys.length > 0) changed = true;
        break;
      }
    }
  }
  return changed;
}

/** All states a known (observed) response allows: zero or one. */
function stepKnown(s: EtcdState, input: KvRequest, output: KvResponse): EtcdState[] {
  const R = output.revision;
  const d = new Draft(s);
  // A request that creates revision R: nothing unknown can be newer than R-1.
  const bump = (): boolean => R > s.rev && d.tighten(R - 1);
  // A request that sees the store at R without changing it.
  const see = (): boolean => R >= s.rev && d.tighten(R);
  switch (input.type) {
    case 'range':
      if (output.type !== 'range' || !see() || !d.matchRange(input.key, input.end, output.kvs, output.count)) return [];
      break;
    case 'put':
      if (output.type !== 'put' || !bump() || !d.put(input.key, input.value, input.lease, exact(R))) return [];
      break;
    case 'delete': {
      if (output.type !== 'delete') return [];
      const keys = d.keysIn(input.key, input.end);
      if (output.deleted !== keys.length) return [];
      if (!(keys.length > 0 ? bump() : see())) return [];
      for (const k of keys) d.kvs.delete(k);
      break;
    }
    case 'leaseGrant':
      if (output.type !== 'leaseGrant' || d.leases.has(input.id) || !see()) return [];
      d.leases.add(input.id);
      break;
    case 'leaseRevoke': {
      if (output.type !== 'leaseRevoke' || !d.leases.has(input.id)) return [];
      const attached = [...d.kvs.entries()].filter(([, v]) => v.lease === input.id).map(([k]) => k);
      if (!(attached.length > 0 ? bump() : see())) return [];
      for (const k of attached) d.kvs.delete(k);
      d.leases.delete(input.id);
      break;
    }
    case 'txn': {
      if (output.type !== 'txn') return [];
      const truths = input.compare.map((c) => evaluate(d, c));
      if (output.succeeded) {
        if (truths.includes('F')) return [];
        input.compare.forEach((c, i) => truths[i] === '?' && resolveCompare(d, c));
      } else if (!truths.includes('F') && !truths.includes('?')) {
        return [];
      }
      const changed = runBranch(d, output.succeeded ? input.success : input.failure, exact(R), output.results);
      if (changed === null) return [];
      // Writes made by this txn carry exactly R; only older unknowns are tightened.
      if (changed ? !(R > s.rev && d.tighten(R - 1)) : !(R >= s.rev && d.tighten(R))) return [];
      break;
    }
  }
  d.rev = R;
  return [d.freeze()];
}

/** States after a request whose outcome is unknown, in the case it was applied. */
function stepApplied(s: EtcdState, input: KvRequest): EtcdState[] {
  const next = s.rev + 1;
  const fresh: Rev = { lo: next, hi: Infinity };
  const d = new Draft(s);
  switch (input.type) {
    case 'range':
      return [];
    case 'put':
      if (!d.put(input.key, input.value, input.lease, fresh)) return [];
      d.rev = next;
      return [d.freeze()];
    case 'delete': {
      const keys = d.keysIn(input.key, input.end);
      if (keys.length === 0) return []; // same as not applied
      for (const k of keys) d.kvs.delete(k);
      d.rev = next;
      return [d.freeze()];
    }
    case 'leaseGrant':
      if (d.leases.has(input.id)) return [];
      d.leases.add(input.id);
      return [d.freeze()];
    case 'leaseRevoke': {
      if (!d.leases.has(input.id)) return [];
      d.leases.delete(input.id);
      let any = false;
      for (const [k, v] of [...d.kvs]) {
        if (v.lease === input.id) {
          d.kvs.delete(k);
          any = true;
        }
      }
      if (any) d.rev = next;
      return [d.freeze()];
    }
    case 'txn': {
      const truths = input.compare.map((c) => evaluate(d, c));
      const branches: boolean[] = [];
      if (!truths.includes('F')) branches.push(true);
      if (truths.includes('F') || truths.includes('?')) branches.push(false);
      const out: EtcdState[] = [];
      for (const succeeded of branches) {
        const b = new Draft(s);
        if (succeeded) input.compare.forEach((c, i) => truths[i] === '?' && resolveCompare(b, c));
        const changed = runBranch(b, succeeded ? input.success : input.failure, fresh, null);
        if (changed === null) continue;
        if (changed) b.rev = next;
        out.push(b.freeze());
      }
      return out;
    }
  }
}

/**
 * The possible states after linearizing `op` in state `s`. Empty means the
 * response contradicts the state. A failed request yields "not applied" (s
 * itself) plus every way it could have been applied.
 */
export function step(s: EtcdState, op: Pick<Operation, 'input' | 'output'>): EtcdState[] {
  if (op.output !== null) return stepKnown(s, op.input, op.output);
  return [s, ...stepApplied(s, op.input)];
}

/** A readable one-line description of a request and its response (for reports). */
export function describeOp(op: Pick<Operation, 'input' | 'output' | 'error'>): string {
  const i = op.input;
  let req: string;
  switch (i.type) {
    case 'range':
      req = `${i.serializable ? 'get(serializable)' : 'get'} ${i.key}${i.end ? '..' + i.end : ''}`;
      break;
    case 'put':
      req = `put ${i.key}=${i.value}${i.lease !== NO_LEASE ? ' lease=' + i.lease : ''}`;
      break;
    case 'delete':
      req = `delete ${i.key}${i.end ? '..' + i.end : ''}`;
      break;
    case 'txn': {
      const cmp = i.compare.map((c) => `${c.target}(${c.key}) ${c.result} ${c.operand}`).join(' && ');
      const ops = (l: TxnRequestOp[]): string =>
        l.map((o) => (o.type === 'put' ? `put ${o.key}=${o.value}` : `${o.type === 'range' ? 'get' : 'delete'} ${o.key}`)).join('; ');
      req = `txn if(${cmp}) then(${ops(i.success)}) else(${ops(i.failure)})`;
      break;
    }
    case 'leaseGrant':
      req = `lease grant ${i.id} ttl=${i.ttl}`;
      break;
    case 'leaseRevoke':
      req = `lease revoke ${i.id}`;
      break;
  }
  const o = op.output;
  if (o === null) return `${req} -> ? (${op.error ?? 'unknown'})`;
  let res = `rev=${o.revision}`;
  if (o.type === 'range') res += ` [${o.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}/v${kv.version}`).join(', ')}]`;
  if (o.type === 'delete') res += ` deleted=${o.deleted}`;
  if (o.type === 'txn') {
    res += ` ${o.succeeded ? 'succeeded' : 'failed'}`;
    if (o.results !== null) {
      const rr = o.results.filter((r) => r.type === 'range') as Extract<TxnResponseOp, { type: 'range' }>[];
      if (rr.length > 0) res += ' ' + rr.map((r) => `[${r.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`).join(', ')}]`).join(' ');
    }
  }
  return `${req} -> ${res}`;
}
