// A debug-only probe of the write path: with ETCDTS_PROBE=<file> in its environment the
// member notes when each step of a write happens (the request decoded, the proposal
// stepped, each Ready, each peer stream write, the WAL write, each peer message read, the
// commit, the apply, the client's answer written) and writes them to <file> as it exits,
// one `<ns since start> <step> <detail>` line each
// after a `# start-epoch-ms <ms>` line. bench/server/put-timeline.ts turns them
// into the timeline of a single client's put. Off by default: `probe` is then undefined
// and a step costs its call site one test.

import { writeFileSync } from 'node:fs';

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

  constructor(file: string) {
    process.on('exit', () => writeFileSync(file, this.lines()));
  }

  mark(step: string, detail?: string | number): void {
    const n = this.steps.length;
    if (n === MAX_MARKS) return;
    this.at[n] = Number(process.hrtime.bigint() - this.start);
    this.steps.push(step);
    this.details.push(detail);
  }

  private lines(): string {
    const out = [`# start-epoch-ms ${this.startEpochMs}`];
    for (let i = 0; i < this.steps.length; i++) out.push(`${this.at[i]} ${this.steps[i]} ${this.details[i] ?? ''}`);
    return out.join('\n') + '\n';
  }
}

const file = process.env.ETCDTS_PROBE;
export const probe: Probe | undefined = file ? new FileProbe(file) : undefined;
