// The deterministic cluster simulator over 250 raft-only seeds, each member running the
// server's RaftNode on the real WAL over a MemDisk: every run must keep Raft's safety
// invariants at every step and converge once the faults stop. Whole members
// (sim-members.test.ts, 300 seeds) cover the same faults with real stores; these seeds
// cost about a quarter as much per step and keep what whole members cannot reach: long runs
// (3,000 steps, 2,250 of them with faults, where a whole member's run has 400: several
// crash, partition and membership cycles in one history, terms and logs that grow long)
// and log compaction at any point of the log (the simulator's compact(), where a whole
// member snapshots only every --snapshot-count entries).
// A failure names the seed and the command that replays it verbosely.

import { afterAll, describe, expect, it } from 'vitest';
import { runSeedsInChild } from './sim-runner.js';

const SEEDS = 250;
const CHUNK = 10;

describe('raft cluster simulator', () => {
  // seeds 1..SEEDS run in one child process (sim-runner.ts), ahead of the chunks that check them
  const seeds = runSeedsInChild('raft', 1, SEEDS);
  afterAll(() => seeds.stop());

  for (let from = 1; from <= SEEDS; from += CHUNK) {
    it(`seeds ${from}..${from + CHUNK - 1} keep every invariant`, async () => {
      const failures: string[] = [];
      let committed = 0;
      for (const res of await seeds.range(from, from + CHUNK - 1)) {
        const { seed } = res;
        committed += res.stats.committed;
        if (!res.ok) failures.push(`seed ${seed}: ${res.error}\n  replay: npm run sim -- --seed ${seed}`);
      }
      expect(failures, failures.join('\n')).toEqual([]);
      // The runs did real work, not just idle ticking.
      expect(committed).toBeGreaterThan(CHUNK * 50);
    });
  }
});
