// Waits for the member's applied index to reach a given index (etcd's applyWait): a
// follower answering the leader's lease calls, or a simple token naming the index that
// created it, waits here until this member has applied that far.

export class AppliedWait {
  /** each waiter's wake-up, with the index it waits for */
  private readonly waiters = new Map<() => void, number>();

  constructor(private readonly applied: () => number) {}

  /** Resolves true once `index` is applied, false if that does not happen within `timeoutMs`. */
  wait(index: number, timeoutMs: number): Promise<boolean> {
    if (index <= this.applied()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(onApplied);
        resolve(ok);
      };
      const onApplied = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.set(onApplied, index);
    });
  }

  /** The applied index moved: wakes those it reached. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const applied = this.applied();
    for (const [w, index] of this.waiters) if (index <= applied) w();
  }
}
