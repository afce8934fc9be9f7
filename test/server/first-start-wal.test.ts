// Every state a crash can leave the WAL of a first start in is one the next start
// continues from: no WAL (bootstrap), a WAL holding no raft state (bootstrap again, see
// holdsRaftState), or the whole of raft's first Ready (restart). The crashes: the process
// dying before each disk operation of WAL.create and of the first Ready's save, and a
// power cut during that save keeping any subset of its unsynced sectors.

import { describe, expect, it } from 'vitest';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';
import type { Ready } from '../../src/raft/types.js';
import { holdsRaftState } from '../../src/server/restart-member.js';
import { computeMemberId } from '../../src/server/ids.js';
import { encodeMemberContext } from '../../src/server/membership.js';
import { MemDisk, SimulatedCrash, WAL } from '../../src/wal/index.js';

const DIR = '/data/member/wal';
const META = new TextEncoder().encode('member and cluster IDs');
/** small segments: a replay reads the preallocated tail of the segment for non-zero bytes */
const OPTS = { segmentSizeBytes: 64 * 1024 };

/** Raft's first Ready for a new three-member cluster, as startNewCluster bootstraps it. */
function firstReady(): Ready {
  const members = [1, 2, 3].map((i) => {
    const peerUrls = [`https://infra${i}.etcd.example.internal:2380`];
    return { id: computeMemberId(peerUrls, 'etcd-cluster-1'), name: `infra${i}.etcd.example.internal`, peerUrls, clientUrls: [], isLearner: false };
  });
  const raft = new RawNode({ id: members[0]!.id, electionTick: 10, heartbeatTick: 1, storage: new MemoryStorage(), random: () => 0.5 });
  raft.bootstrap(members.map((m) => ({ id: m.id, context: encodeMemberContext(m) })));
  return raft.ready();
}

async function firstStart(disk: MemDisk, rd: Ready): Promise<void> {
  const wal = await WAL.create(DIR, META, { ...OPTS, disk });
  await wal.save(rd.hardState, rd.entries, rd.mustSync);
  await wal.close();
}

type Outcome = 'no WAL' | 'no raft state' | 'first Ready whole';

/** What the next start finds, checked the way bootstrap decides, and that it can go on from there. */
async function nextStart(disk: MemDisk, rd: Ready, what: string): Promise<Outcome> {
  if (!WAL.exists(DIR, disk)) {
    await firstStart(disk, rd); // what create() left behind (a DIR.tmp) is no obstacle
    return 'no WAL';
  }
  const wal = await WAL.open(DIR, { index: 0, term: 0 }, { ...OPTS, disk });
  const contents = await wal.readAll();
  await wal.close();
  if (!holdsRaftState(contents)) {
    await disk.removeAll(DIR);
    await firstStart(disk, rd);
    return 'no raft state';
  }
  // a member that restarts: it must have every bootstrap entry its HardState commits
  expect(contents.hardState, what).toEqual(rd.hardState);
  expect(contents.entries, what).toEqual(rd.entries);
  return 'first Ready whole';
}

describe("a crash during a first start's WAL work", () => {
  it('before any disk operation of WAL.create and of the first Ready: the next start continues', async () => {
    const rd = firstReady();
    let ops = 0;
    const counter = new MemDisk();
    counter.fault = () => {
      ops++;
      return undefined;
    };
    await firstStart(counter, rd);

    const seen = new Set<Outcome>();
    for (let k = 1; k <= ops; k++) {
      const disk = new MemDisk();
      let n = 0;
      disk.fault = () => (++n === k ? { crash: true, afterBytes: 0 } : undefined);
      await expect(firstStart(disk, rd)).rejects.toBeInstanceOf(SimulatedCrash);
      seen.add(await nextStart(disk.afterCrash('process'), rd, `crash before op ${k} of ${ops}`));
    }
    expect([...seen].sort()).toEqual(['first Ready whole', 'no WAL', 'no raft state']);
  });

  it('a power cut while the first Ready is written: whatever sectors landed, the next start continues', async () => {
    const rd = firstReady();
    const sized = new MemDisk();
    const created = await WAL.create(DIR, META, { ...OPTS, disk: sized });
    const before = sized.bytesWritten;
    await created.save(rd.hardState, rd.entries, rd.mustSync);
    const readyBytes = sized.bytesWritten - before;
    // the Ready spans two sectors after the header: a cut can keep entries and lose the HardState
    expect(readyBytes).toBeGreaterThan(512);

    const seen = new Set<Outcome>();
    for (let seed = 1; seed <= 60; seed++) {
      const disk = new MemDisk();
      const wal = await WAL.create(DIR, META, { ...OPTS, disk });
      disk.crashAfterBytes = disk.bytesWritten + (seed % 3 === 0 ? readyBytes : (seed * 37) % readyBytes);
      await expect(wal.save(rd.hardState, rd.entries, rd.mustSync)).rejects.toBeInstanceOf(SimulatedCrash);
      seen.add(await nextStart(disk.afterCrash('power', seed), rd, `power cut, seed ${seed}`));
    }
    expect(seen).toContain('no raft state');
    expect(seen).toContain('first Ready whole');
  });
});
