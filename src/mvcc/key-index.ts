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

/** Shared by every empty current generation; replaced (never pushed to) on the first put. */
const NO_REVS: number[] = [];

/** Index of the last revision in flattened `revs` with main <= atRev, or -1. */
function lastAtOrBefore(revs: number[], atRev: number): number {
  for (let i = (revs.length >> 1) - 1; i >= 0; i--) if (revs[i << 1]! <= atRev) return i;
  return -1;
}

/**
 * Generations are numbered oldest first: the closed ones, then the current one, which
 * lives in the KeyIndex's own fields. Most keys have a single generation, so they cost
 * this object, its key and one revision array: every object per key counts, with a
 * million keys to mark on each full GC and to build on every restart.
 */
export class KeyIndex {
  /** generations closed by a tombstone, oldest first; absent while there are none */
  private closed: ClosedGeneration[] | undefined = undefined;
  // the current generation: live, or empty after a delete
  private ver = 0;
  private created = 0;
  private revs: number[] = NO_REVS;
  /** the live put's lease (0 after a delete) */
  lease = 0n;
  /** the live put's main revision; 0 after a delete (main revisions start at 1) */
  private liveMod = 0;

  /** the key's hash, kept so that the key table can pass over other keys without reading their strings */
  readonly hash: number;

  /** `key` is the raw key bytes as a latin1 string (one char per byte, byte order). */
  constructor(readonly key: string) {
    this.hash = keyHash(key);
  }

  isLive(): boolean {
    return this.liveMod !== 0;
  }

  /** No revision left at all (etcd removes such a keyIndex from the tree). */
  isEmpty(): boolean {
    return this.closed === undefined && this.revs.length === 0;
  }

  /** Latest put's main revision, createRevision and version (only while live). */
  get modRevision(): number {
    return this.liveMod;
  }
  /** The live put's sub revision: the live generation's last revision is that put. */
  get modSub(): number {
    return this.revs[this.revs.length - 1]!;
  }
  get createRevision(): number {
    return this.created;
  }
  get version(): number {
    return this.ver;
  }

  put(main: number, sub: number, lease: bigint): void {
    if (this.revs.length === 0) {
      this.created = main;
      this.revs = [main, sub]; // exact size: most keys never get a second revision before compaction
    } else {
      this.revs.push(main, sub);
    }
    this.ver++;
    this.setLive(main, lease);
  }

  /** Records a delete: the tombstone revision closes the live generation. */
  tombstone(main: number, sub: number): void {
    this.revs.push(main, sub);
    (this.closed ??= []).push({ ver: this.ver + 1, created: this.created, revs: this.revs });
    this.ver = 0;
    this.created = 0;
    this.revs = NO_REVS;
    this.liveMod = 0;
    this.lease = 0n;
  }

  /**
   * Rebuild from a stored put record: a put that starts a generation takes the
   * record's createRevision and version, like etcd's keyIndex.restore.
   */
  restorePut(main: number, sub: number, createRevision: number, version: number, lease: bigint): void {
    if (this.revs.length === 0) {
      this.created = createRevision;
      this.revs = [main, sub];
    } else {
      this.revs.push(main, sub);
    }
    this.ver = version;
    this.setLive(main, lease);
  }

  private setLive(main: number, lease: bigint): void {
    this.lease = lease;
    this.liveMod = main;
  }

  /** Every generation, oldest first, the current one last (empty after a delete). */
  generations(): ClosedGeneration[] {
    return [...(this.closed ?? []), { ver: this.ver, created: this.created, revs: this.revs }];
  }

  private get generationCount(): number {
    return (this.closed?.length ?? 0) + 1;
  }

  private revsOf(g: number): number[] {
    const closed = this.closed;
    return closed && g < closed.length ? closed[g]!.revs : this.revs;
  }

  /** The revision visible at `atRev`, or undefined when the key did not exist then. */
  get(atRev: number): IndexedRevision | undefined {
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
    let { genIdx, revIdx } = this.locate(atRev);
    const last = this.generationCount - 1;
    const revs = this.revsOf(genIdx);
    if (revs.length > 0) {
      let kept = revs;
      if (revIdx > 0) {
        kept = revs.slice(revIdx << 1);
        if (genIdx === last) this.revs = kept;
        else this.closed![genIdx]!.revs = kept;
      }
      if (kept.length === 2 && genIdx !== last) genIdx++;
    }
    if (genIdx > 0) {
      const rest = this.closed!.slice(genIdx);
      this.closed = rest.length > 0 ? rest : undefined;
    }
    return this.isEmpty();
  }

  /** The revision compaction at atRev would keep (etcd's keep), without changing anything. */
  keep(atRev: number): { main: number; sub: number } | undefined {
    if (this.isEmpty()) return undefined;
    const { genIdx, revIdx } = this.locate(atRev);
    const revs = this.revsOf(genIdx);
    if (revs.length === 0 || revIdx === -1) return undefined;
    if (revIdx === (revs.length >> 1) - 1 && genIdx !== this.generationCount - 1) return undefined; // a tombstone
    return { main: revs[revIdx << 1]!, sub: revs[(revIdx << 1) + 1]! };
  }

  /** True when (main, sub) is the oldest revision the index still holds (a compaction survivor). */
  isOldest(main: number, sub: number): boolean {
    const revs = this.revsOf(0);
    return revs.length > 0 && revs[0] === main && revs[1] === sub;
  }

  /** The main revision of the oldest revision the index still holds. */
  oldestMain(): number | undefined {
    return this.revsOf(0)[0];
  }
}
