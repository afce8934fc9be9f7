// One full GC once the process has gone idle after a load, so V8 gives its young
// generation back. Under load V8 grows new space to two 16 MB semi-spaces, and it
// shrinks them only at a GC that finds allocation slow; an idle member allocates almost
// nothing, so no GC comes and the 32 MB stay committed (~28 MB resident) for good. One
// GC after ~10 s of idleness returned them: 164 -> 136 MB RSS after 10 s of puts
// (bench/memory/idle-gc-probe.ts). Under load nothing here runs but a reading of the
// event loop's utilization every few seconds; the GC itself (a full one, tens of milliseconds for a heap of
// ~100 MB) runs only while the process is idle, once per idle period.

import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleGcOptions {
  /** how often the event loop's utilization is read */
  intervalMs: number;
  /**
   * the event loop utilization (time not waiting for I/O) under which an interval counts
   * as idle: unlike CPU time, it stays high for a busy process the machine starves
   */
  idleShare: number;
  /**
   * idle intervals in a row before a GC: V8 shrinks new space only if allocation since
   * the GCs of the last 5 s was slow, so the GC must come 5 s or more into the quiet
   */
  idleIntervals: number;
  /** a young generation committed below this is left alone */
  minYoungBytes: number;
  /** told after each GC, with the young generation committed before and after */
  onCollect?: (youngBefore: number, youngAfter: number) => void;
}

/**
 * A GC 6-9 s into the quiet (two readings 3 s apart, both idle): late enough for V8 to
 * find allocation slow, early enough that a member idle for 15 s has given memory back.
 */
export const DEFAULT_IDLE_GC: IdleGcOptions = { intervalMs: 3000, idleShare: 0.05, idleIntervals: 2, minYoungBytes: 8 << 20 };

/** GCs per idle period at most: one that came too early to shrink (see idleIntervals) is followed by another. */
const MAX_TRIES = 3;

function youngCommitted(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * V8's gc(), which Node exposes only under --expose-gc: with the flag set at run time, a
 * context created afterwards gets it. Node calls flags changed after start "undefined
 * behaviour", so test/pkg/idle-gc.test.ts checks this one on the Node we run.
 */
export function gcFunction(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Starts watching; returns the stop. The timer does not keep the process alive. */
export function startIdleGc(opts: IdleGcOptions = DEFAULT_IDLE_GC): () => void {
  const gc = gcFunction();
  let last = performance.eventLoopUtilization();
  let idleRun = 0;
  /** GCs in this idle period */
  let tries = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (share > opts.idleShare) {
      idleRun = 0;
      tries = 0;
      return;
    }
    if (++idleRun < opts.idleIntervals || tries >= MAX_TRIES) return;
    const before = youngCommitted();
    if (before < opts.minYoungBytes) return;
    idleRun = 0;
    tries++;
    gc();
    // the GC's own time is not the next interval's load
    last = performance.eventLoopUtilization();
    opts.onCollect?.(before, youngCommitted());
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
