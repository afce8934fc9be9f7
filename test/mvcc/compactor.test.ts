import { describe, expect, it } from 'vitest';
import { type AutoCompaction, Compactor, MvccError, type CompactorClock } from '../../src/mvcc/index.js';

/** A clock that only moves when told to, running due timers in order. */
class FakeClock implements CompactorClock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      // let the async tick (compact and re-arm) finish
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.t = end;
  }
}

const MIN = 60_000;
const HOUR = 60 * MIN;

function setup(policy: AutoCompaction, fail?: (rev: number) => Error | undefined) {
  const clock = new FakeClock();
  const compacted: Array<[number, number]> = []; // [minute, rev]
  // the revision grows by one per minute, from 1000
  const c = new Compactor({
    policy,
    currentRevision: () => 1000 + Math.floor(clock.t / MIN),
    compact: async (rev) => {
      const err = fail?.(rev);
      if (err) throw err;
      compacted.push([clock.t / MIN, rev]);
    },
    clock,
  });
  return { clock, compacted, c };
}

describe('Compactor', () => {
  it('periodic 1h: samples every 6 minutes, first compacts after an hour, then hourly', async () => {
    const { clock, compacted, c } = setup({ mode: 'periodic', periodMs: HOUR });
    c.start();
    await clock.advance(59 * MIN);
    expect(compacted).toEqual([]);
    await clock.advance(MIN);
    expect(compacted).toEqual([[60, 1000]]); // the revision of an hour ago
    await clock.advance(60 * MIN);
    // the oldest of the 11 samples kept (every 6 minutes): taken at minute 54
    expect(compacted).toEqual([
      [60, 1000],
      [120, 1054],
    ]);
    await clock.advance(60 * MIN);
    expect(compacted[2]).toEqual([180, 1114]);
    c.stop();
  });

  it('periodic 10m: compacts every 10 minutes at the revision of 10 minutes before', async () => {
    const { clock, compacted, c } = setup({ mode: 'periodic', periodMs: 10 * MIN });
    c.start();
    await clock.advance(30 * MIN);
    expect(compacted).toEqual([
      [10, 1000],
      [20, 1009],
      [30, 1019],
    ]);
    c.stop();
  });

  it('periodic retries every tenth of the period after a failure; "compacted" counts as success', async () => {
    let failures = 2;
    const { clock, compacted, c } = setup({ mode: 'periodic', periodMs: 10 * MIN }, (rev) => {
      if (rev === 1000 && failures-- > 0) return new Error('etcdserver: request timed out');
      if (rev === 1011) return new MvccError('compacted');
      return undefined;
    });
    c.start();
    await clock.advance(12 * MIN);
    // failed at 10 and 11; meanwhile the sample window slid by one
    expect(compacted).toEqual([[12, 1001]]);
    await clock.advance(10 * MIN); // 1011 reported compacted at 22: a success, nothing recorded
    await clock.advance(10 * MIN);
    expect(compacted).toEqual([
      [12, 1001],
      [32, 1021],
    ]);
    c.stop();
  });

  it('revision mode: every 5 minutes compacts at current minus retention, skipping repeats', async () => {
    const clock = new FakeClock();
    let rev = 50;
    const compacted: number[] = [];
    const c = new Compactor({
      policy: { mode: 'revision', retain: 100 },
      currentRevision: () => rev,
      compact: async (r) => void compacted.push(r),
      clock,
    });
    c.start();
    await clock.advance(5 * MIN); // 50-100 <= 0
    rev = 300;
    await clock.advance(5 * MIN);
    await clock.advance(5 * MIN); // same revision again: skipped
    rev = 420;
    await clock.advance(4 * MIN);
    expect(compacted).toEqual([200]);
    await clock.advance(MIN);
    expect(compacted).toEqual([200, 320]);
    c.stop();
    await clock.advance(60 * MIN);
    expect(compacted).toEqual([200, 320]);
  });

  it('does nothing while paused', async () => {
    const { clock, compacted, c } = setup({ mode: 'periodic', periodMs: 10 * MIN });
    c.start();
    c.pause();
    await clock.advance(30 * MIN);
    expect(compacted).toEqual([]);
    c.resume();
    await clock.advance(MIN);
    expect(compacted).toEqual([[31, 1020]]);
    c.stop();
  });
});
