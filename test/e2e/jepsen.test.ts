// The verification toolkit against etcd-ts itself: three short runs with different
// faults (kill -9, pauses and partitions, membership changes and delays); the checker
// (linearizability, revision order, watch guarantees) must find nothing. Longer runs:
// `npm run jepsen -- --binary etcd-ts --time 600`.

import { describe, expect, it } from 'vitest';
import { formatReport } from '../../verify/check.js';
import { runJepsen } from '../../verify/run.js';
import type { NemesisKind } from '../../verify/nemesis.js';

const runs: Array<{ nemesis: NemesisKind[]; seed: number }> = [
  { nemesis: ['kill'], seed: 11 },
  { nemesis: ['pause', 'partition'], seed: 12 },
  { nemesis: ['member', 'delay'], seed: 13 },
];

describe('jepsen runs against etcd-ts', () => {
  for (const { nemesis, seed } of runs) {
    it(`finds no anomaly under ${nemesis.join(' + ')} (seed ${seed})`, async () => {
      const r = await runJepsen({ nodes: 3, nemesis, timeSec: 20, seed, binary: 'etcd-ts', clients: 6, watchers: 2, log: () => {} });
      expect(r.report.anomalies, formatReport(r.report)).toEqual([]);
      expect(r.report.verdict).toBe('valid');
      expect(r.report.stats.operations).toBeGreaterThan(0);
      expect(r.history.nemesis.length).toBeGreaterThan(0);
      expect(r.faultMs).toBeGreaterThan(0);
    });
  }
});
