// The raft log's stable entries as columns of numbers, their bytes copied into slabs.
//
// MemoryStorage keeps up to --snapshot-count entries (100 k by default) for slow
// followers. As objects, each entry cost ~160 bytes of JS heap (the entry and its data
// view) that every one of them was copied through the young generation to get into,
// and that every full GC marks again: 16 MB of heap at 100 k entries, a sixth of what a
// scavenge copies per put. Here an entry is five numbers in typed arrays (off the JS
// heap, never scanned) and its bytes in a shared slab; the Entry a caller asks for is
// made on the spot and dies young.
//
// The bytes are copies, never views of what came in: a small buffer is nearly always a
// view into a bigger one (a slice of Node's 8 KB pool, a socket read, a WAL segment read
// whole), and a view keeps all of it alive for as long as the log keeps the entry.

import type { Entry, EntryType } from '../raftpb/index.js';

/** Size of each shared slab. */
const SLAB_BYTES = 64 * 1024;
/** Entries bigger than this get a buffer of their own: a slab is for many small ones. */
const OWN_BUFFER_OVER = SLAB_BYTES / 4;
const INITIAL_SLOTS = 1024;
const EMPTY = Buffer.alloc(0);

export class PackedEntries {
  private terms = new Float64Array(INITIAL_SLOTS);
  private types = new Uint8Array(INITIAL_SLOTS);
  /** which buffer holds the entry's bytes (an id; see bufs); unused for empty data */
  private bufIds = new Uint32Array(INITIAL_SLOTS);
  private offsets = new Uint32Array(INITIAL_SLOTS);
  private lengths = new Uint32Array(INITIAL_SLOTS);
  /** slot of entry 0; entries live in slots [head, tail) */
  private head = 0;
  private tail = 0;
  /** how many entries were ever dropped from the front: entry i's position is dropped + i */
  private dropped = 0;
  /**
   * The buffers entries' bytes are in, by id: buffer `id` is bufs[id - firstBufId], and
   * lastUse[id - firstBufId] the position of the last entry put in it. They go from the
   * front once the log has dropped past that entry (a big entry's own buffer may wait
   * for the slab before it: at most one slab's worth of entries).
   */
  private bufs: Buffer[] = [];
  private lastUse: number[] = [];
  private firstBufId = 0;
  /** the shared slab being filled, its id, and how much of it is used */
  private slab: Buffer = EMPTY;
  private slabId = 0;
  private slabUsed = 0;

  get length(): number {
    return this.tail - this.head;
  }

  term(i: number): number {
    return this.terms[this.head + i]!;
  }

  /** Bytes of entry i's data. */
  dataLength(i: number): number {
    return this.lengths[this.head + i]!;
  }

  /** Entry i, as an object of its own whose data is a view into the log's copy. */
  entry(i: number, index: number): Entry {
    const s = this.head + i;
    const n = this.lengths[s]!;
    let data: Uint8Array = EMPTY;
    if (n > 0) {
      const off = this.offsets[s]!;
      data = this.bufs[this.bufIds[s]! - this.firstBufId]!.subarray(off, off + n);
    }
    return { term: this.terms[s]!, index, type: this.types[s]! as EntryType, data };
  }

  /** Appends an entry, copying its data. */
  push(term: number, type: EntryType, data: Uint8Array): void {
    if (this.tail === this.terms.length) this.makeRoom();
    const position = this.dropped + this.length;
    const s = this.tail++;
    this.terms[s] = term;
    this.types[s] = type;
    const n = data.length;
    this.lengths[s] = n;
    this.offsets[s] = 0;
    if (n === 0) return;
    if (n > OWN_BUFFER_OVER) {
      const own = Buffer.allocUnsafeSlow(n);
      own.set(data);
      this.bufIds[s] = this.addBuffer(own, position);
      return;
    }
    if (this.slabUsed + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = 0;
      this.slabId = this.addBuffer(this.slab, position);
    }
    this.lastUse[this.slabId - this.firstBufId] = position;
    this.slab.set(data, this.slabUsed);
    this.bufIds[s] = this.slabId;
    this.offsets[s] = this.slabUsed;
    this.slabUsed += n;
  }

  /** Keeps the first n entries (a follower's log replaced from a conflicting index on). */
  truncate(n: number): void {
    this.tail = this.head + Math.min(n, this.length);
    // The buffers stay until the front passes where their entries were (positions are
    // reused by the entries that come next, so that only keeps them longer), and the
    // slab keeps filling after the dropped bytes: views handed out earlier still point
    // into what was written. A truncation is rare.
  }

  /** Drops the first n entries (compaction), and the buffers only they used. */
  dropFront(n: number): void {
    const k = Math.min(n, this.length);
    this.head += k;
    this.dropped += k;
    if (this.head === this.tail) this.head = this.tail = 0;
    // a log compacted to a fraction of its columns gives most of them back
    if (this.terms.length > INITIAL_SLOTS && this.length * 4 < this.terms.length) this.resize(Math.max(INITIAL_SLOTS, this.length * 2));
    let free = 0;
    while (free < this.bufs.length && this.lastUse[free]! < this.dropped && this.bufs[free] !== this.slab) free++;
    if (free > 0) {
      this.bufs.splice(0, free);
      this.lastUse.splice(0, free);
      this.firstBufId += free;
    }
  }

  private addBuffer(b: Buffer, position: number): number {
    this.bufs.push(b);
    this.lastUse.push(position);
    return this.firstBufId + this.bufs.length - 1;
  }

  /** At the end of the columns: slide the entries down if most slots are free, else grow. */
  private makeRoom(): void {
    this.resize(this.length * 2 <= this.terms.length ? this.terms.length : this.terms.length * 2);
  }

  /** Columns of `capacity` slots (at least the entries held), the entries from slot 0. */
  private resize(capacity: number): void {
    const n = this.length;
    const move = <T extends Float64Array | Uint8Array | Uint32Array>(col: T, make: (size: number) => T): T => {
      const out = capacity === col.length ? col : make(capacity);
      out.set(col.subarray(this.head, this.tail), 0); // set() copies correctly within one array too
      return out;
    };
    this.terms = move(this.terms, (c) => new Float64Array(c));
    this.types = move(this.types, (c) => new Uint8Array(c));
    this.bufIds = move(this.bufIds, (c) => new Uint32Array(c));
    this.offsets = move(this.offsets, (c) => new Uint32Array(c));
    this.lengths = move(this.lengths, (c) => new Uint32Array(c));
    this.head = 0;
    this.tail = n;
  }
}
