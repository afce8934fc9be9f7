// The leases the primary lessor will checkpoint, in the order they fall due. etcd keeps
// them in a heap; here every entry is scheduled at now + the one checkpoint interval on a
// monotonic clock, so insertion order is due order and a queue does the heap's job.

/** Entries popped before the arrays are shifted down: a pass pops in batches of 1000. */
const COMPACT_AFTER = 4096;

export class CheckpointQueue {
  // Two flat arrays rather than an object per entry: 100 k scheduled leases cost two
  // array slots each, and the ids are the leases' own bigints.
  private ids: bigint[] = [];
  private dues: number[] = [];
  private head = 0;

  /** Schedules `id` at `due`, which must not be earlier than the last one pushed. */
  push(id: bigint, due: number): void {
    this.ids.push(id);
    this.dues.push(due);
  }

  /** The next lease due at `now` (taken off the queue), or undefined when none is due yet. */
  popDue(now: number): bigint | undefined {
    if (this.head === this.ids.length || this.dues[this.head]! > now) return undefined;
    const id = this.ids[this.head++]!;
    if (this.head === this.ids.length) this.clear();
    else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.dues = this.dues.slice(this.head);
      this.head = 0;
    }
    return id;
  }

  clear(): void {
    this.ids = [];
    this.dues = [];
    this.head = 0;
  }
}
