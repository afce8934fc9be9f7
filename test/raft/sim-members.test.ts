// Whole members in the simulator: each node runs the server's Applier over a real
// MvccStore (LevelDB in a temporary directory) beside the real driver and WAL, and
// proposes real requests. Beyond raft's invariants, stores at the same index must hash
// alike (HashKV) and no acknowledged put may be lost across crashes. Seeds are costly
// (real LevelDB and bbolt I/O): `npm run sim -- --members --seeds 2000` runs many more.

import { describe, expect, it } from 'vitest';
import { type SimResult, runSeed } from '../../src/raft/sim/index.js';

const SEEDS = [1, 2, 3, 4, 5, 6];
/** ships a leader's snapshot and crashes members 16 times: the most I/O-timing-prone of SEEDS */
const REPLAYED_SEED = 6;
/** the broken applier's damage shows at step 774 of it */
const SNAPSHOT_BEFORE_FLUSH_SEED = 2;
/** a lone voter commits at append: applying before the sync shows at step 1708 of it */
const APPLY_BEFORE_FSYNC_SEED = 1;

/** Each seed's correct run, once per file: the proofs below compare with it. */
const results = new Map<number, Promise<SimResult>>();
function correctRun(seed: number): Promise<SimResult> {
  let res = results.get(seed);
  if (res === undefined) {
    res = runSeed({ seed, members: true });
    results.set(seed, res);
  }
  return res;
}

describe('whole-member simulator', () => {
  it(`seeds ${SEEDS.join(', ')} keep every invariant, store agreement and acknowledged writes included`, async () => {
    const failures: string[] = [];
    let acknowledged = 0;
    let hashed = 0;
    for (const seed of SEEDS) {
      const res = await correctRun(seed);
      acknowledged += res.stats.acknowledged;
      hashed += res.stats.storeHashes;
      if (!res.ok) failures.push(`seed ${seed}: ${res.error}\n  replay: npm run sim -- --members --seed ${seed}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // the runs applied real requests and compared stores
    expect(acknowledged).toBeGreaterThan(SEEDS.length * 20);
    expect(hashed).toBeGreaterThan(SEEDS.length * 5);
  }, 600_000);

  it(`seed ${REPLAYED_SEED} run twice gives the same result and the same counters, whatever the disk's timing`, async () => {
    const first = await correctRun(REPLAYED_SEED);
    const again = await runSeed({ seed: REPLAYED_SEED, members: true });
    // the run did what makes it timing-prone: store I/O around snapshots and crashes
    expect(first.stats.snapshotsApplied).toBeGreaterThan(0);
    expect(first.stats.crashes).toBeGreaterThan(0);
    expect({ ok: again.ok, error: again.error, stats: again.stats }).toEqual({ ok: first.ok, error: first.error, stats: first.stats });
  }, 600_000);
});

describe('whole-member simulator catches broken drivers', () => {
  it("freezing a snapshot's store before its staged writes are written out loses them", async () => {
    const seed = SNAPSHOT_BEFORE_FLUSH_SEED;
    const broken = await runSeed({ seed, members: true, persistence: 'snapshot-before-flush' });
    // a member installing such a shipped store diverges from the others; one that crashes
    // after recording such a snapshot finds its store behind the WAL it restarts from
    expect(broken.error).toMatch(/store divergence|holds entries up to index \d+, but the snapshot the WAL resumes from/);
    // the same world with the real applier is fine
    expect((await correctRun(seed)).error).toBeUndefined();
  }, 600_000);

  it('applying a lone voter\'s entries before their WAL write is durable loses a committed entry in a power cut', async () => {
    const seed = APPLY_BEFORE_FSYNC_SEED;
    const broken = await runSeed({ seed, members: true, nodes: 1, persistence: 'apply-before-fsync' });
    expect(broken.error).toMatch(/commit durability: index \d+ was committed as term \d+/);
    expect((await runSeed({ seed, members: true, nodes: 1 })).error).toBeUndefined();
  }, 600_000);
});
