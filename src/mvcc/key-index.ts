// The history of one key, as etcd's keyIndex: a list of generations, each running
// from a creation to a tombstone. The last generation is the live one, or empty when
// the key's last change was a delete. As etcd's treeIndex, it holds revisions only:
// values live in LevelDB (and, for hot keys, in the store's ValueCache), so the heap
// does not grow with the bytes stored.
//
// Example (etcd's key_index.go): put@1 put@2 tombstone@3 put@4 tombstone@5
//   generations: {1,2,3(t)} {4,5(t)} {}

import { keyHash } from './key-table.js';

/** A generation closed by a tombstone (its last revision). `revs` is flattened [main0, sub0, main1, sub1, ...]. */
export interface ClosedGeneration {
  /** puts in this generation since creation, including compacted-away ones, plus the tombstone */
  ver: number;
  /** main revision of the put that created this generation */
  created: number;
  revs: number[];
}

/** What a key looked like at some revision, found through the index alone. */
export interface IndexedRevision {
  main: number;
  sub: number;
  createRevision: number;
  version: number;
}

/** A KeyIndex's fields as an index image keeps them (KeyIndex.imageState / loadImageState). */
export interface KeyIndexState {
  closed: ClosedGeneration[] | undefined;
  ver: number;
  created: number;
  /** the current generation's revisions, flattened; undefined while it holds fewer than two */
  revs: number[] | undefined;
  lastMain: number;
  lastSub: number;
  lease: bigint;
}

/** Every empty current generation's revisions: never pushed to. */
const NO_REVS: readonly number[] = [];

/**
 * The lease of every key without one. A decoded request or record carries a fresh 0n
 * (16 bytes of heap each); a key keeps this shared one instead.
 */
const NO_LEASE = 0n;

/** Index of the last revision in flattened `revs` with main <= atRev, or -1. */
function lastAtOrBefore(revs: readonly number[], atRev: number): number {
  for (let i = (revs.length >> 1) - 1; i >= 0; i--) if (revs[i << 1]! <= atRev) return i;
  return -1;
}

/**
 * Generations are numbered oldest first: the closed ones, then the current one, which
 * lives in the KeyIndex's own fields. Most keys have a single generation holding a
 * single revision (written once, or compacted down to their latest), so that case is
 * this object and its key string alone: the revision sits in `lastMain`/`lastSub`, and
 * a revision array exists only once the generation holds two or more. Every byte per
 * key counts: a store at etcd's 2 GiB quota of 1 KiB values holds two million keys, to
 * mark on each full GC and to build on every restart (bench/scale).
 */
export class KeyIndex {
  /** generations closed by a tombstone, oldest first; absent while there are none */
  private closed: ClosedGeneration[] | undefined = undefined;
  // the current generation: live, or empty after a delete
  private ver = 0;
  private created = 0;
  /** every revision of the current generation, flattened, the last one included; absent while it holds fewer than two */
  private revs: number[] | undefined = undefined;
  /** the current generation's last revision (the live put); lastMain is 0 while it is empty (main revisions start at 1) */
  private lastMain = 0;
  private lastSub = 0;
  /** the live put's lease (0 after a delete) */
  lease: bigint = NO_LEASE;

  /** the key's hash, kept so that the key table can pass over other keys without reading their strings */
  readonly hash: number;

  /** `key` is the raw key bytes as a latin1 string (one char per byte, byte order). */
  constructor(readonly key: string) {
    this.hash = keyHash(key);
  }

  isLive(): boolean {
    return this.lastMain !== 0;
  }

  /** No revision left at all (etcd removes such a keyIndex from the tree). */
  isEmpty(): boolean {
    return this.closed === undefined && this.lastMain === 0;
  }

  /** Latest put's main revision (0 after a delete), createRevision and version (only while live). */
  get modRevision(): number {
    return this.lastMain;
  }
  /** The live put's sub revision. */
  get modSub(): number {
    return this.lastSub;
  }
  get createRevision(): number {
    return this.created;
  }
  get version(): number {
    return this.ver;
  }

  put(main: number, sub: number, lease: bigint): void {
    this.append(main, sub, main);
    this.ver++;
    this.lease = lease === 0n ? NO_LEASE : lease;
  }

  /** Records a delete: the tombstone revision closes the live generation. */
  tombstone(main: number, sub: number): void {
    const revs = this.revs ?? [this.lastMain, this.lastSub];
    revs.push(main, sub);
    (this.closed ??= []).push({ ver: this.ver + 1, created: this.created, revs });
    this.ver = 0;
    this.created = 0;
    this.revs = undefined;
    this.lastMain = 0;
    this.lastSub = 0;
    this.lease = NO_LEASE;
  }

  /**
   * Rebuild from a stored put record: a put that starts a generation takes the
   * record's createRevision and version, like etcd's keyIndex.restore.
   */
  restorePut(main: number, sub: number, createRevision: number, version: number, lease: bigint): void {
    this.append(main, sub, createRevision);
    this.ver = version;
    this.lease = lease === 0n ? NO_LEASE : lease;
  }

  /** Everything this key index holds, for an index image (index-image.ts); the arrays are its own, not copies. */
  imageState(out: KeyIndexState): void {
    out.closed = this.closed;
    out.ver = this.ver;
    out.created = this.created;
    out.revs = this.revs;
    out.lastMain = this.lastMain;
    out.lastSub = this.lastSub;
    out.lease = this.lease;
  }

  /** Takes the state an index image kept (imageState's); the arrays become this key index's. */
  loadImageState(s: KeyIndexState): void {
    this.closed = s.closed;
    this.ver = s.ver;
    this.created = s.created;
    this.revs = s.revs;
    this.lastMain = s.lastMain;
    this.lastSub = s.lastSub;
    this.lease = s.lease === 0n ? NO_LEASE : s.lease;
  }

  /** Adds a put to the current generation; `created` is its creation revision if the put starts it. */
  private append(main: number, sub: number, created: number): void {
    if (this.lastMain === 0) this.created = created;
    else if (this.revs === undefined) this.revs = [this.lastMain, this.lastSub, main, sub];
    else this.revs.push(main, sub);
    this.lastMain = main;
    this.lastSub = sub;
  }

  /** The current generation is the only one and holds at most one revision: the common case, answered without arrays. */
  private get single(): boolean {
    return this.closed === undefined && this.revs === undefined;
  }

  /** Every generation, oldest first, the current one last (empty after a delete). */
  generations(): ClosedGeneration[] {
    return [...(this.closed ?? []), { ver: this.ver, created: this.created, revs: [...this.revsOf(this.generationCount - 1)] }];
  }

  private get generationCount(): number {
    return (this.closed?.length ?? 0) + 1;
  }

  private revsOf(g: number): readonly number[] {
    const closed = this.closed;
    if (closed && g < closed.length) return closed[g]!.revs;
    return this.revs ?? (this.lastMain === 0 ? NO_REVS : [this.lastMain, this.lastSub]);
  }

  /** The revision visible at `atRev`, or undefined when the key did not exist then. */
  get(atRev: number): IndexedRevision | undefined {
    if (this.single) {
      if (this.lastMain === 0 || this.lastMain > atRev) return undefined;
      return { main: this.lastMain, sub: this.lastSub, createRevision: this.created, version: this.ver };
    }
    const last = this.generationCount - 1;
    for (let g = last; g >= 0; g--) {
      const revs = this.revsOf(g);
      if (revs.length === 0) continue;
      // a closed generation whose tombstone is at or before atRev: the key was deleted
      if (g !== last && revs[revs.length - 2]! <= atRev) return undefined;
      if (revs[0]! > atRev) continue;
      const n = lastAtOrBefore(revs, atRev);
      const closed = g === last ? undefined : this.closed![g]!;
      const created = closed ? closed.created : this.created;
      const ver = closed ? closed.ver : this.ver;
      return { main: revs[n << 1]!, sub: revs[(n << 1) + 1]!, createRevision: created, version: ver - ((revs.length >> 1) - n - 1) };
    }
    return undefined;
  }

  /** etcd's doCompact: the generation holding atRev and the index of its last rev <= atRev. */
  private locate(atRev: number): { genIdx: number; revIdx: number } {
    const last = this.generationCount - 1;
    let genIdx = 0;
    while (genIdx < last) {
      const revs = this.revsOf(genIdx);
      if (revs[revs.length - 2]! > atRev) break;
      genIdx++;
    }
    return { genIdx, revIdx: lastAtOrBefore(this.revsOf(genIdx), atRev) };
  }

  /**
   * Drops every revision <= atRev except the latest one of the generation holding
   * atRev, and that one too if it is a tombstone. Returns true when nothing is left.
   */
  compact(atRev: number): boolean {
    // a lone revision is kept whatever atRev is
    if (this.single) return this.isEmpty();
    let { genIdx, revIdx } = this.locate(atRev);
    const last = this.generationCount - 1;
    const revs = this.revsOf(genIdx);
    if (revs.length > 0) {
      let keptCount = revs.length;
      if (revIdx > 0) {
        const kept = revs.slice(revIdx << 1);
        keptCount = kept.length;
        // the current generation's last revision is never dropped: its fields stay as they are
        if (genIdx === last) this.revs = kept.length > 2 ? kept : undefined;
        else this.closed![genIdx]!.revs = kept;
      }
      if (keptCount === 2 && genIdx !== last) genIdx++;
    }
    if (genIdx > 0) {
      const rest = this.closed!.slice(genIdx);
      this.closed = rest.length > 0 ? rest : undefined;
    }
    return this.isEmpty();
  }

  /** The revision compaction at atRev would keep (etcd's keep), without changing anything. */
  keep(atRev: number): { main: number; sub: number } | undefined {
    if (this.single) return this.lastMain !== 0 && this.lastMain <= atRev ? { main: this.lastMain, sub: this.lastSub } : undefined;
    const { genIdx, revIdx } = this.locate(atRev);
    const revs = this.revsOf(genIdx);
    if (revs.length === 0 || revIdx === -1) return undefined;
    if (revIdx === (revs.length >> 1) - 1 && genIdx !== this.generationCount - 1) return undefined; // a tombstone
    return { main: revs[revIdx << 1]!, sub: revs[(revIdx << 1) + 1]! };
  }

  /** True when (main, sub) is the oldest revision the index still holds (a compaction survivor). */
  isOldest(main: number, sub: number): boolean {
    if (this.single) return this.lastMain !== 0 && this.lastMain === main && this.lastSub === sub;
    const revs = this.revsOf(0);
    return revs.length > 0 && revs[0] === main && revs[1] === sub;
  }

  /** The main revision of the oldest revision the index still holds. */
  oldestMain(): number | undefined {
    if (this.single) return this.lastMain === 0 ? undefined : this.lastMain;
    return this.revsOf(0)[0];
  }
}
