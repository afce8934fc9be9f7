// Auto-compaction as etcd 3.4 schedules it (etcdserver/api/v3compactor). The
// compactor only decides *when* and *at which revision*; `compact(rev)` is the
// server's (a raft proposal). Time comes from an injected clock, so tests drive it.
//
// periodic, retention P: every P/10 (P capped at 1h for the interval) remember the
//   current revision, keeping P/(P/10)+1 samples; once P has passed since the last
//   success (then every min(P, 1h)), compact at the oldest sample, i.e. the revision
//   of about P ago.
// revision, retention N: every 5 minutes compact at current-N, unless that is <= 0
//   or the same as last time.

import type { Logger } from 'pino';
import { MvccError, isMvccError } from './errors.js';

export interface CompactorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: CompactorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type AutoCompaction = { mode: 'periodic'; periodMs: number } | { mode: 'revision'; retain: number };

export interface CompactorOptions {
  policy: AutoCompaction;
  currentRevision: () => number;
  /** proposes a compaction; a 'compacted' MvccError counts as success, as in etcd */
  compact: (rev: number) => Promise<void>;
  clock?: CompactorClock;
  logger?: Logger;
}

const HOUR = 3_600_000;
/** etcd's revInterval */
export const REVISION_COMPACTION_INTERVAL_MS = 5 * 60_000;
const RETRY_DIVISOR = 10;
const COMPACTED = new MvccError('compacted').message;

export class Compactor {
  private readonly clock: CompactorClock;
  private timer: unknown;
  private running = false;
  private paused = false;
  // periodic
  private revs: number[] = [];
  private lastSuccess = 0;
  private baseInterval = 0;
  // revision
  private prev = 0;

  constructor(private readonly opts: CompactorOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.opts.policy.mode === 'periodic') {
      this.lastSuccess = this.clock.now();
      this.baseInterval = this.opts.policy.periodMs;
      this.periodicSample();
    } else {
      this.arm(REVISION_COMPACTION_INTERVAL_MS, () => this.revisionTick());
    }
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Only the leader compacts: the server pauses followers and resumes on promotion. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  private arm(ms: number, fn: () => void | Promise<void>): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.running) void fn();
    }, ms);
  }

  // ---- periodic ----

  private get period(): number {
    return (this.opts.policy as { periodMs: number }).periodMs;
  }
  private get compactInterval(): number {
    return Math.min(this.period, HOUR);
  }
  private get retryInterval(): number {
    return this.compactInterval / RETRY_DIVISOR;
  }
  private get retentions(): number {
    return Math.floor(this.period / this.retryInterval) + 1;
  }

  private periodicSample(): void {
    this.revs.push(this.opts.currentRevision());
    if (this.revs.length > this.retentions) this.revs.shift();
    this.arm(this.retryInterval, () => this.periodicTick());
  }

  private async periodicTick(): Promise<void> {
    if (!this.paused && this.clock.now() - this.lastSuccess >= this.baseInterval) {
      // the first compaction waits the whole period; later ones come every compactInterval
      if (this.baseInterval === this.period) this.baseInterval = this.compactInterval;
      const rev = this.revs[0]!;
      this.opts.logger?.info({ revision: rev, 'compact-period': `${this.period}ms` }, 'starting auto periodic compaction');
      if (await this.tryCompact(rev, 'periodic')) this.lastSuccess = this.clock.now();
    }
    if (this.running) this.periodicSample();
  }

  // ---- revision ----

  private async revisionTick(): Promise<void> {
    if (!this.paused) {
      const retain = (this.opts.policy as { retain: number }).retain;
      const rev = this.opts.currentRevision() - retain;
      if (rev > 0 && rev !== this.prev) {
        this.opts.logger?.info({ revision: rev, 'revision-compaction-retention': retain }, 'starting auto revision compaction');
        if (await this.tryCompact(rev, 'revision')) this.prev = rev;
      }
    }
    if (this.running) this.arm(REVISION_COMPACTION_INTERVAL_MS, () => this.revisionTick());
  }

  private async tryCompact(rev: number, kind: 'periodic' | 'revision'): Promise<boolean> {
    try {
      await this.opts.compact(rev);
    } catch (e) {
      // the server may hand back its own error carrying etcd's message
      const compacted = isMvccError(e, 'compacted') || (e instanceof Error && e.message.includes(COMPACTED));
      if (!compacted) {
        this.opts.logger?.warn({ revision: rev, error: String(e) }, `failed auto ${kind} compaction`);
        return false;
      }
    }
    this.opts.logger?.info({ revision: rev }, `completed auto ${kind} compaction`);
    return true;
  }
}
