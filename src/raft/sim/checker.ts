// Safety invariants of Raft, checked incrementally as the simulated nodes persist,
// commit, apply and read:
//
//   election safety    — at most one leader per term;
//   log matching       — entries with the same index and term hold the same data and
//                        follow the same previous term (so, by induction, the same prefix);
//   leader completeness— a new leader's log holds every committed entry;
//   commit durability  — an index, once committed anywhere, never holds anything else;
//   state machine safety — every node applies the same entry at each index, in order,
//                        and snapshots carry the same applied state;
//   store agreement    — whole members' stores at the same applied index hash the same;
//   linearizable reads — a ReadIndex answer is at least the highest commit index known
//                        anywhere when the read was issued.

import type { Entry } from '../../raftpb/index.js';

export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

interface LogRecord {
  readonly key: string;
  readonly prevTerm: number | undefined;
  readonly node: bigint;
}

interface CommitRecord {
  readonly term: number;
  readonly key: string;
  readonly node: bigint;
}

interface PendingRead {
  readonly node: bigint;
  readonly startCommit: number;
  readonly step: number;
}

/** A compact, exact identity of an entry's contents. */
export function entryKey(e: Entry): string {
  let s = `${e.type}:`;
  const d = e.data;
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]!);
  return s;
}

/** FNV-1a step over a string, chaining applied entries into one number. */
export function chainHash(prev: number, term: number, key: string): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  const s = `${term}|${key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class Checker {
  private readonly leaders = new Map<number, bigint>();
  private readonly logEntries = new Map<string, LogRecord>();
  private readonly committed = new Map<number, CommitRecord>();
  /** hash of the applied state after each index */
  private readonly appliedHash = new Map<number, number>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly storeHashes = new Map<number, { hash: number; revision: number; node: bigint }>();
  /** the highest index known committed anywhere */
  maxCommitted = 0;
  readsServed = 0;
  step = 0;

  private fail(msg: string): never {
    throw new InvariantViolation(`step ${this.step}: ${msg}`);
  }

  leader(node: bigint, term: number): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, node);
    else if (prev !== node) this.fail(`election safety: both ${prev} and ${node} are leaders of term ${term}`);
  }

  /** `e` is now persisted in node's log, right after an entry of term prevTerm (undefined: compacted). */
  persisted(node: bigint, e: Entry, prevTerm: number | undefined): void {
    const id = `${e.index}/${e.term}`;
    const key = entryKey(e);
    const rec = this.logEntries.get(id);
    if (rec === undefined) {
      this.logEntries.set(id, { key, prevTerm, node });
      return;
    }
    if (rec.key !== key) {
      this.fail(`log matching: entry ${id} differs between node ${rec.node} and node ${node}`);
    }
    if (rec.prevTerm !== undefined && prevTerm !== undefined && rec.prevTerm !== prevTerm) {
      this.fail(
        `log matching: entry ${id} follows term ${rec.prevTerm} on node ${rec.node} but term ${prevTerm} on node ${node}`,
      );
    }
  }

  /** node holds entry `e` at an index it knows to be committed */
  committedEntry(node: bigint, e: Entry): void {
    const key = entryKey(e);
    const rec = this.committed.get(e.index);
    if (rec === undefined) {
      this.committed.set(e.index, { term: e.term, key, node });
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      return;
    }
    if (rec.term !== e.term || rec.key !== key) {
      this.fail(
        `commit durability: index ${e.index} was committed as term ${rec.term} (node ${rec.node}) but node ${node} committed term ${e.term}`,
      );
    }
  }

  /** A node just became leader; termAt(i) reads its log (undefined: compacted), lastIndex its end. */
  leaderCompleteness(node: bigint, term: number, firstIndex: number, lastIndex: number, termAt: (i: number) => number): void {
    if (lastIndex < this.maxCommitted) {
      this.fail(
        `leader completeness: node ${node} leads term ${term} with last index ${lastIndex} < committed ${this.maxCommitted}`,
      );
    }
    for (let i = Math.max(firstIndex, 1); i <= this.maxCommitted; i++) {
      const rec = this.committed.get(i);
      if (rec !== undefined && termAt(i) !== rec.term) {
        this.fail(
          `leader completeness: node ${node} leads term ${term} but holds term ${termAt(i)} at committed index ${i} (term ${rec.term})`,
        );
      }
    }
  }

  /** node applies e after having applied up to prevIndex with state hash prevHash; returns the new hash */
  applied(node: bigint, e: Entry, prevIndex: number, prevHash: number): number {
    if (e.index !== prevIndex + 1) this.fail(`state machine safety: node ${node} applied ${e.index} after ${prevIndex}`);
    const rec = this.committed.get(e.index);
    if (rec === undefined) this.fail(`state machine safety: node ${node} applied index ${e.index}, never seen committed`);
    if (rec.term !== e.term || rec.key !== entryKey(e)) {
      this.fail(`state machine safety: node ${node} applied a different entry at index ${e.index} than was committed`);
    }
    const h = chainHash(prevHash, e.term, rec.key);
    this.recordHash(node, e.index, h);
    return h;
  }

  /** node restored the applied state (index, hash) from a snapshot */
  restoredSnapshot(node: bigint, index: number, hash: number): void {
    this.recordHash(node, index, hash);
  }

  /** the applied state's hash after `index`, if some member applied it */
  hashAt(index: number): number | undefined {
    return this.appliedHash.get(index);
  }

  /**
   * A member's store, with everything up to `index` applied and written out: every
   * member's store at the same index must hash the same (etcd's HashKV) at the same revision.
   */
  storeHash(node: bigint, index: number, hash: number, revision: number): void {
    const prev = this.storeHashes.get(index);
    if (prev === undefined) this.storeHashes.set(index, { hash, revision, node });
    else if (prev.hash !== hash || prev.revision !== revision) {
      this.fail(`store divergence: at index ${index} node ${prev.node} has HashKV ${prev.hash} at revision ${prev.revision}, node ${node} has ${hash} at revision ${revision}`);
    }
  }

  private recordHash(node: bigint, index: number, hash: number): void {
    const h = this.appliedHash.get(index);
    if (h === undefined) this.appliedHash.set(index, hash);
    else if (h !== hash) this.fail(`state machine safety: node ${node} has a different applied state at index ${index}`);
  }

  readStarted(ctx: string, node: bigint): void {
    this.reads.set(ctx, { node, startCommit: this.maxCommitted, step: this.step });
  }

  readServed(ctx: string, node: bigint, index: number): void {
    const r = this.reads.get(ctx);
    if (r === undefined) return; // a duplicate answer
    this.reads.delete(ctx);
    if (r.node !== node) this.fail(`read ${ctx} issued on node ${r.node} was answered on node ${node}`);
    if (index < r.startCommit) {
      this.fail(
        `linearizability: read ${ctx} (issued at step ${r.step} on node ${node}) got index ${index}, but ${r.startCommit} was committed before it started`,
      );
    }
    this.readsServed++;
  }
}
