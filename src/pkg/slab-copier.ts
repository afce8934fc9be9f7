// Copies of byte strings that are kept long and dropped in about the order they were
// made (the raft log's entries: appended at its tail, compacted from its front), packed
// into slabs of their own.
//
// Why not keep the bytes as they came: a small Buffer is nearly always a view into a
// bigger ArrayBuffer (a slice of Node's shared 8 KB pool, a socket read, a WAL segment
// read whole), and a view keeps all of it. The raft log held 61 k put entries of ~290
// bytes in 36 MB of pool slabs, twice their bytes (bench/memory/README.md). And why not
// a buffer of its own per copy: an ArrayBuffer of its own costs ~250 bytes of RSS more
// than a view into a shared one (400 k copies of 290 bytes: 745 against 490 bytes each),
// and each is one more object for the GC to track.

/** Copies longer than this get a buffer of their own: a slab is for many small ones. */
const SLAB_SHARE = 4;

export class SlabCopier {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;

  /** `slabBytes`: the size of each shared slab (the last one is partly empty while filling). */
  constructor(readonly slabBytes = 64 * 1024) {}

  /** A copy of `src`, in a slab shared only with other copies made here. */
  copy(src: Uint8Array): Buffer {
    const n = src.length;
    if (n > this.slabBytes / SLAB_SHARE) {
      const own = Buffer.allocUnsafeSlow(n);
      own.set(src);
      return own;
    }
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    out.set(src);
    this.used += n;
    return out;
  }
}
