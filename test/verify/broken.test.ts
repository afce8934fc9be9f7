// The checker must reject a server that cheats: a proxy on the client port
// that serves stale reads or acknowledges writes it never forwarded.
import { describe, expect, it } from 'vitest';
import { formatReport } from '../../verify/check.js';
import { runJepsen } from '../../verify/run.js';

describe('jepsen run against a deliberately broken server', () => {
  it('flags stale reads served without ReadIndex', async () => {
    const r = await runJepsen({ nodes: 1, nemesis: [], timeSec: 5, seed: 21, clients: 6, watchers: 1, broken: 'stale-read', minCheats: 5, saveOnFailure: false, log: () => {} });
    expect(r.cheats).toBeGreaterThanOrEqual(5);
    expect(r.report.verdict, formatReport(r.report)).toBe('invalid');
    const kinds = new Set(r.report.anomalies.map((a) => a.kind));
    expect(kinds.has('nonlinearizable')).toBe(true);
    expect(kinds.has('stale-read')).toBe(true);
  });

  it('flags writes acknowledged but never applied', async () => {
    const r = await runJepsen({ nodes: 1, nemesis: [], timeSec: 5, seed: 22, clients: 6, watchers: 1, broken: 'lost-write', minCheats: 5, saveOnFailure: false, log: () => {} });
    expect(r.cheats).toBeGreaterThanOrEqual(5);
    expect(r.report.verdict, formatReport(r.report)).toBe('invalid');
    const kinds = new Set(r.report.anomalies.map((a) => a.kind));
    expect(kinds.has('lost-write')).toBe(true);
  });
});
