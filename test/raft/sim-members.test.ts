// Whole members in the simulator: each node runs the server's Applier over a real
// MvccStore (LevelDB in a temporary directory) beside the real driver and WAL, and
// proposes real requests. Beyond raft's invariants, stores at the same index must hash
// alike (HashKV) and no acknowledged put may be lost across crashes. Seeds are costly
// (real LevelDB and bbolt I/O): `npm run sim -- --members --seeds 2000` runs many more.

import { describe, expect, it } from 'vitest';
import { runSeed } from '../../src/raft/sim/index.js';

const SEEDS = [1, 2, 3, 4];

describe('whole-member simulator', () => {
  it(`seeds ${SEEDS.join(', ')} keep every invariant, store agreement and acknowledged writes included`, async () => {
    const failures: string[] = [];
    let acknowledged = 0;
    let hashed = 0;
    for (const seed of SEEDS) {
      const res = await runSeed({ seed, members: true });
      acknowledged += res.stats.acknowledged;
      hashed += res.stats.storeHashes;
      if (!res.ok) failures.push(`seed ${seed}: ${res.error}\n  replay: npm run sim -- --members --seed ${seed}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // the runs applied real requests and compared stores
    expect(acknowledged).toBeGreaterThan(SEEDS.length * 20);
    expect(hashed).toBeGreaterThan(SEEDS.length * 5);
  }, 600_000);
});
