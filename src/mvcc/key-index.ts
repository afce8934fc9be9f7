// The history of one key, as etcd's keyIndex: a list of generations, each running
// from a creation to a tombstone. The last generation is the live one, or empty when
// the key's last change was a delete. The key's latest value is kept here too, so
// reads at the current revision never touch LevelDB.
//
// Example (etcd's key_index.go): put@1 put@2 tombstone@3 put@4 tombstone@5
//   generations: {1,2,3(t)} {4,5(t)} {}

/** One generation. `revs` is flattened [main0, sub0, main1, sub1, ...] to save memory. */
export class Generation {
  constructor(
    /** puts in this generation since creation, including compacted-away ones */
    public ver: number,
    /** main revision of the put that created this generation */
    public created: number,
    public revs: number[],
  ) {}

  get length(): number {
    return this.revs.length >> 1;
  }

  isEmpty(): boolean {
    return this.revs.length === 0;
  }

  mainAt(i: number): number {
    return this.revs[i << 1]!;
  }

  subAt(i: number): number {
    return this.revs[(i << 1) + 1]!;
  }

  /** Index of the last revision with main <= atRev, or -1. */
  lastAtOrBefore(atRev: number): number {
    for (let i = this.length - 1; i >= 0; i--) if (this.mainAt(i) <= atRev) return i;
    return -1;
  }
}

/** What a key looked like at some revision, found through the index alone. */
export interface IndexedRevision {
  main: number;
  sub: number;
  createRevision: number;
  version: number;
}

export class KeyIndex {
  gens: Generation[] = [new Generation(0, 0, [])];
  /** latest value and lease while the key is live (value undefined = deleted) */
  value: Buffer | undefined = undefined;
  lease = 0n;
  // the live put's revisions, copied out of the generations so that a read of the
  // latest value touches this object alone
  private liveMod = 0;
  private liveCreate = 0;
  private liveVersion = 0;

  /** `key` is the raw key bytes as a latin1 string (one char per byte, byte order). */
  constructor(readonly key: string) {}

  private get current(): Generation {
    return this.gens[this.gens.length - 1]!;
  }

  isLive(): boolean {
    return this.value !== undefined;
  }

  /** No revision left at all (etcd removes such a keyIndex from the tree). */
  isEmpty(): boolean {
    return this.gens.length === 1 && this.gens[0]!.isEmpty();
  }

  /** Latest put's main revision, createRevision and version (only while live). */
  get modRevision(): number {
    return this.liveMod;
  }
  get createRevision(): number {
    return this.liveCreate;
  }
  get version(): number {
    return this.liveVersion;
  }

  private setLive(g: Generation, main: number, value: Buffer, lease: bigint): void {
    this.value = value;
    this.lease = lease;
    this.liveMod = main;
    this.liveCreate = g.created;
    this.liveVersion = g.ver;
  }

  put(main: number, sub: number, value: Buffer, lease: bigint): void {
    const g = this.current;
    if (g.isEmpty()) {
      g.created = main;
      g.revs = [main, sub]; // exact size: most keys never get a second revision before compaction
    } else {
      g.revs.push(main, sub);
    }
    g.ver++;
    this.setLive(g, main, value, lease);
  }

  /** Records a delete: the tombstone revision closes the live generation. */
  tombstone(main: number, sub: number): void {
    const g = this.current;
    g.revs.push(main, sub);
    g.ver++;
    this.gens.push(new Generation(0, 0, []));
    this.value = undefined;
    this.lease = 0n;
  }

  /**
   * Rebuild from a stored put record: a put that starts a generation takes the
   * record's createRevision and version, like etcd's keyIndex.restore.
   */
  restorePut(main: number, sub: number, createRevision: number, version: number, value: Buffer, lease: bigint): void {
    const g = this.current;
    if (g.isEmpty()) {
      g.created = createRevision;
      g.revs = [main, sub];
    } else {
      g.revs.push(main, sub);
    }
    g.ver = version;
    this.setLive(g, main, value, lease);
  }

  /** The revision visible at `atRev`, or undefined when the key did not exist then. */
  get(atRev: number): IndexedRevision | undefined {
    const g = this.findGeneration(atRev);
    if (!g) return undefined;
    const n = g.lastAtOrBefore(atRev);
    if (n === -1) return undefined;
    return { main: g.mainAt(n), sub: g.subAt(n), createRevision: g.created, version: g.ver - (g.length - n - 1) };
  }

  private findGeneration(rev: number): Generation | undefined {
    const last = this.gens.length - 1;
    for (let cg = last; cg >= 0; cg--) {
      const g = this.gens[cg]!;
      if (g.isEmpty()) continue;
      // a closed generation whose tombstone is at or before rev: the key was deleted
      if (cg !== last && g.mainAt(g.length - 1) <= rev) return undefined;
      if (g.mainAt(0) <= rev) return g;
    }
    return undefined;
  }

  /** etcd's doCompact: the generation holding atRev and the index of its last rev <= atRev. */
  private locate(atRev: number): { genIdx: number; revIdx: number } {
    let genIdx = 0;
    while (genIdx < this.gens.length - 1) {
      const g = this.gens[genIdx]!;
      if (g.mainAt(g.length - 1) > atRev) break;
      genIdx++;
    }
    return { genIdx, revIdx: this.gens[genIdx]!.lastAtOrBefore(atRev) };
  }

  /**
   * Drops every revision <= atRev except the latest one of the generation holding
   * atRev, and that one too if it is a tombstone. Returns true when nothing is left.
   */
  compact(atRev: number): boolean {
    let { genIdx, revIdx } = this.locate(atRev);
    const g = this.gens[genIdx]!;
    if (!g.isEmpty()) {
      if (revIdx !== -1) g.revs = g.revs.slice(revIdx << 1);
      if (g.length === 1 && genIdx !== this.gens.length - 1) genIdx++;
    }
    if (genIdx > 0) this.gens = this.gens.slice(genIdx);
    return this.isEmpty();
  }

  /** The revision compaction at atRev would keep (etcd's keep), without changing anything. */
  keep(atRev: number): { main: number; sub: number } | undefined {
    if (this.isEmpty()) return undefined;
    const { genIdx, revIdx } = this.locate(atRev);
    const g = this.gens[genIdx]!;
    if (g.isEmpty() || revIdx === -1) return undefined;
    if (revIdx === g.length - 1 && genIdx !== this.gens.length - 1) return undefined; // a tombstone
    return { main: g.mainAt(revIdx), sub: g.subAt(revIdx) };
  }

  /** True when (main, sub) is the oldest revision the index still holds (a compaction survivor). */
  isOldest(main: number, sub: number): boolean {
    const g = this.gens[0]!;
    return !g.isEmpty() && g.mainAt(0) === main && g.subAt(0) === sub;
  }
}
