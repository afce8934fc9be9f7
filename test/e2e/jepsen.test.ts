// The verification toolkit against etcd-ts itself: three short runs with different
// faults (kill -9, pauses and partitions, membership changes and delays), and one on a
// mixed cluster (etcd-ts and real etcd 3.4.23 members, one raft group over etcd's peer
// protocol); the checker (linearizability, revision order, watch guarantees) must find
// nothing. Longer runs: `npm run jepsen -- --binary etcd-ts --time 600` (or `--binary mixed`).

import { describe, expect, it } from 'vitest';
import { formatReport } from '../../verify/check.js';
import type { ClusterBinary } from '../../verify/cluster.js';
import { runJepsen } from '../../verify/run.js';
import type { NemesisKind } from '../../verify/nemesis.js';

const runs: Array<{ nemesis: NemesisKind[]; seed: number; binary: ClusterBinary; timeSec: number }> = [
  { nemesis: ['kill'], seed: 11, binary: 'etcd-ts', timeSec: 20 },
  { nemesis: ['pause', 'partition'], seed: 12, binary: 'etcd-ts', timeSec: 20 },
  { nemesis: ['member', 'delay'], seed: 13, binary: 'etcd-ts', timeSec: 20 },
  { nemesis: ['kill', 'pause', 'partition'], seed: 14, binary: 'mixed', timeSec: 15 },
];

describe('jepsen runs against etcd-ts', () => {
  for (const { nemesis, seed, binary, timeSec } of runs) {
    it(`finds no anomaly on ${binary} members under ${nemesis.join(' + ')} (seed ${seed})`, async () => {
      const r = await runJepsen({ nodes: 3, nemesis, timeSec, seed, binary, clients: 6, watchers: 2, log: () => {} });
      expect(r.report.anomalies, formatReport(r.report)).toEqual([]);
      expect(r.report.verdict).toBe('valid');
      if (binary === 'mixed') expect(r.members).toEqual(['etcd-ts', 'etcd', 'etcd-ts']);
      expect(r.report.stats.operations).toBeGreaterThan(0);
      expect(r.history.nemesis.length).toBeGreaterThan(0);
      expect(r.faultMs).toBeGreaterThan(0);
      // a start, a heal and a membership change may each take up to HEALTHY_WITHIN_MS on a loaded machine
    }, 600_000);
  }
});
