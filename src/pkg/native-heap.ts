// Gives glibc's free memory back to the system after the passes that churn it.
//
// A physical compaction, the export of etcd's bbolt file at a snapshot and a snapshot
// install each allocate and free hundreds of MB in small chunks: LevelDB's blocks and
// iterators, and the Buffers of every record read. glibc keeps what is freed inside its
// arenas, resident, wherever a live chunk sits above it, so RSS climbed with every
// overwrite-and-compact round while the JS heap stayed flat (bench/memory/README.md:
// 35 → 88 MB free inside the arenas over five rounds). malloc_trim(0) returns every
// free page of every arena (madvise), which the arenas' own top-of-heap trimming cannot.
//
// The trim runs after those passes, rate-limited, on a libuv pool thread (koffi's async
// call), never on the event loop: it walks every arena's free lists, which takes tens of
// milliseconds to seconds on a busy machine. glibc holds an arena's lock while it trims
// it, so a malloc on that arena waits meanwhile: hence after the rare passes only, never
// per request. Where there is no glibc (musl, other systems) it is skipped with one log
// line.

import type { Logger } from 'pino';
import { loadLibc } from './libc.js';

/** What asked for a trim (several requests before it runs become one trim). */
export type TrimReason = 'compaction' | 'etcd-db-export' | 'snapshot-install' | 'store-open' | 'idle';

export interface TrimPolicy {
  /** after a request, before the trim: the pass's garbage is collected meanwhile, and the pass's caller never waits */
  readonly delayMs: number;
  /** least time between two trims: a burst of compactions costs one trim */
  readonly minIntervalMs: number;
}

/**
 * 1 s after the pass, then at most every 10 s. A trim costs ~4 ms of CPU per MB it returns
 * (the kernel freeing pages; bench/memory/README.md), and the bench's passes leave 30–65 MB
 * to return: 0.1–0.3 s of one pool thread, at most every 10 s even under constant
 * compaction.
 */
export const DEFAULT_TRIM_POLICY: TrimPolicy = { delayMs: 1000, minIntervalMs: 10_000 };

type Binding = { readonly kind: 'glibc'; readonly trim: () => Promise<boolean> } | { readonly kind: 'unavailable'; readonly reason: string };

function bindMallocTrim(): Binding {
  try {
    const fn = loadLibc().lib.func('int malloc_trim(size_t pad)');
    // malloc_trim(0) on a pool thread: resolves with whether memory went back
    const trim = (): Promise<boolean> =>
      new Promise((resolve, reject) => {
        fn.async(0, (err: unknown, released: number) => (err ? reject(err as Error) : resolve(released === 1)));
      });
    return { kind: 'glibc', trim };
  } catch (err) {
    return { kind: 'unavailable', reason: (err as Error).message };
  }
}

export class NativeHeapTrimmer {
  private binding: Binding | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly reasons = new Set<TrimReason>();
  private logger: Logger | undefined;
  /** when the last trim started (performance.now()); -Infinity before the first */
  private lastStart = -Infinity;
  private running: Promise<void> | undefined;

  constructor(private readonly policy: TrimPolicy = DEFAULT_TRIM_POLICY) {}

  /** Asks for a trim after the pass that just ended; logs its outcome on `logger`. */
  request(reason: TrimReason, logger: Logger | undefined): void {
    this.reasons.add(reason);
    this.logger = logger;
    if (this.timer !== undefined || this.running !== undefined) return; // that trim, or the one after it, covers this
    this.schedule();
  }

  private schedule(): void {
    const at = Math.max(performance.now() + this.policy.delayMs, this.lastStart + this.policy.minIntervalMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.run().finally(() => {
        this.running = undefined;
        // requested while it ran: the memory those passes freed is not trimmed yet
        if (this.reasons.size > 0) this.schedule();
      });
    }, at - performance.now());
    // a pending trim never keeps a stopping member's process alive
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const reasons = [...this.reasons];
    this.reasons.clear();
    const log = this.logger;
    if (this.binding === undefined) {
      this.binding = bindMallocTrim();
      if (this.binding.kind === 'unavailable') log?.info({ error: this.binding.reason }, 'not trimming the native heap: no glibc malloc_trim');
    }
    if (this.binding.kind === 'unavailable') return;
    this.lastStart = performance.now();
    const rssBefore = process.memoryUsage.rss();
    try {
      const released = await this.binding.trim();
      log?.info(
        { reasons, released, 'rss-before': rssBefore, 'rss-after': process.memoryUsage.rss(), took: `${Math.round(performance.now() - this.lastStart)}ms` },
        'trimmed the native heap',
      );
    } catch (err) {
      // only memory stays resident: never a reason to stop the member
      log?.warn({ reasons, error: (err as Error).message }, 'failed to trim the native heap');
    }
  }
}

/** The process's trimmer: malloc's arenas are the process's, whatever number of stores it runs. */
export const nativeHeapTrimmer = new NativeHeapTrimmer();
