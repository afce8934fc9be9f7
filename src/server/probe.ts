// A debug-only probe of the write path: with ETCDTS_PROBE=<file> in its environment the
// member notes when each step of a write happens (the request decoded, the proposal
// stepped, each Ready, each peer stream write, the WAL write, each peer message read, the
// commit, the apply, the client's answer written) and each pause of its main thread for
// garbage collection ('gc', its length as the detail, placed at its start), and writes
// them to <file> as it exits, one `<ns since start> <step> <detail>` line each after a
// `# start-epoch-ms <ms>` line and a `# start-epoch-ms-precise <ms>` one (to a
// microsecond, for lining up the probes of several members). GC pauses are noted as they
// are reported, after later steps: a reader sorts by time. bench/server/put-timeline.ts
// turns them into the timeline of a single client's put. Off by default: `probe` is then
// undefined and a step costs its call site one test.

import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

/** Steps noted at most; later ones are not (a probe left on must not grow without end). */
const MAX_MARKS = 1 << 20;

export interface Probe {
  /** Notes that `step` happened now; `detail` (a peer, a size, a message type) goes beside it. */
  mark(step: string, detail?: string | number): void;
}

class FileProbe implements Probe {
  private readonly at = new Float64Array(MAX_MARKS);
  private readonly steps: string[] = [];
  private readonly details: Array<string | number | undefined> = [];
  private readonly start = process.hrtime.bigint();
  /** the wall clock at `start`, so a reader can pick the marks of a time window */
  private readonly startEpochMs = Date.now();

  /** performance.now() at `start`, to place the garbage collector's pauses among the steps */
  private readonly startPerfMs = performance.now();

  constructor(file: string) {
    process.on('exit', () => writeFileSync(file, this.lines()));
    // each pause of the main thread for garbage collection, as a step at its start with its length
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.markAt((e.startTime - this.startPerfMs) * 1e6, 'gc', `${e.duration.toFixed(2)}ms`);
    }).observe({ entryTypes: ['gc'] });
  }

  mark(step: string, detail?: string | number): void {
    this.markAt(Number(process.hrtime.bigint() - this.start), step, detail);
  }

  private markAt(ns: number, step: string, detail?: string | number): void {
    const n = this.steps.length;
    if (n === MAX_MARKS) return;
    this.at[n] = ns;
    this.steps.push(step);
    this.details.push(detail);
  }

  private lines(): string {
    const out = [`# start-epoch-ms ${this.startEpochMs}`, `# start-epoch-ms-precise ${(performance.timeOrigin + this.startPerfMs).toFixed(3)}`];
    for (let i = 0; i < this.steps.length; i++) out.push(`${this.at[i]} ${this.steps[i]} ${this.details[i] ?? ''}`);
    return out.join('\n') + '\n';
  }
}

const file = process.env.ETCDTS_PROBE;
export const probe: Probe | undefined = file ? new FileProbe(file) : undefined;
