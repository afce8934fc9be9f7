// Deliberately broken drivers must be caught by some seed that CI runs on whole members
// (sim-members.test.ts, seeds 1..MEMBER_SEEDS), and the simulator's apply-before-fsync
// driver must really be broken: a follower whose Ready brings entries together with a
// commit index covering them hands them to the applier while their WAL write is still
// under way, where the real driver waits. (Whole-member seeds catch it with a lone leader,
// which commits at append as etcd's raft does; in a larger cluster the entries applied
// early are durable on a quorum already.)

import { describe, expect, it } from 'vitest';
import { EntryType, type Entry, type Message, MessageType, emptyConfState } from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';
import { RaftNode, type RaftNodeParts } from '../../src/server/raft-node.js';
import { ApplyBeforeFsyncNode } from '../../src/raft/sim/broken-driver.js';
import { type Persistence, runSeed } from '../../src/raft/sim/index.js';
import { MEMBER_SEEDS } from './sim-ci.js';

/** Follower 1 of {1, 2}, its log at 1/1; its WAL writes wait for release(). */
function follower(Driver: typeof RaftNode) {
  const raftStorage = new MemoryStorage();
  raftStorage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 1, term: 1, confState: { ...emptyConfState, voters: [1n, 2n] } } });
  const raft = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: raftStorage, applied: 1, random: () => 0.5 });
  const applied: number[] = [];
  const immediates: Array<() => void> = [];
  let release = (): void => undefined;
  const written = new Promise<void>((resolve) => (release = resolve));
  const parts: RaftNodeParts = {
    raft,
    raftStorage,
    storage: { save: () => written, saveSnap: async () => undefined, release: async () => undefined },
    transport: { send: () => undefined },
    applier: {
      softStateChanged: () => undefined,
      readStates: () => undefined,
      beforeSnapshotSave: async () => undefined,
      applyEntries: (entries) => applied.push(...entries.map((e) => e.index)),
      applySnapshot: () => undefined,
      fatal: (err) => {
        throw err;
      },
    },
    clock: { setInterval: () => undefined, clearInterval: () => undefined, setImmediate: (fn) => void immediates.push(fn) },
    heartbeatMs: 100,
  };
  const node = new Driver(parts);
  /** runs the driver's queued turns and lets its promises settle */
  const turn = async (): Promise<void> => {
    for (const fn of immediates.splice(0)) fn();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { node, applied, release, turn };
}

const entry: Entry = { index: 2, term: 1, type: EntryType.Normal, data: new TextEncoder().encode('put') };
/** the leader's append of entry 2, already committed on the leader and its other follower */
const append: Message = { type: MessageType.MsgApp, to: 1n, from: 2n, term: 1, logTerm: 1, index: 1, entries: [entry], commit: 2, reject: false, rejectHint: 0 };

describe("the simulator's apply-before-fsync driver", () => {
  it('applies a Ready’s own committed entries before its WAL write is durable; the real driver waits for the write', async () => {
    const real = follower(RaftNode);
    real.node.step(append);
    await real.turn();
    expect(real.applied).toEqual([]);
    real.release();
    await real.turn();
    expect(real.applied).toEqual([2]);

    const broken = follower(ApplyBeforeFsyncNode);
    broken.node.step(append);
    await broken.turn();
    expect(broken.applied).toEqual([2]);
  });
});

/**
 * A CI seed (run there with the real driver, which must pass) catches the broken one: its
 * run fails with `error`.
 */
async function caughtBy(seed: number, persistence: Persistence, error: RegExp): Promise<void> {
  expect(seed).toBeLessThanOrEqual(MEMBER_SEEDS);
  const broken = await runSeed({ seed, members: true, persistence });
  expect(broken.error).toMatch(error);
  const correct = await runSeed({ seed, members: true });
  expect(correct.error).toBeUndefined();
}

describe('whole-member seeds that CI runs catch broken drivers', () => {
  it("freezing a snapshot's store before its staged writes are written out loses them (seed 2, at step 400)", async () => {
    // a member that crashes after recording such a snapshot finds its store behind the
    // WAL it restarts from; one installing such a shipped store diverges from the others
    await caughtBy(2, 'snapshot-before-flush', /holds entries up to index \d+, but the snapshot the WAL resumes from|store divergence/);
  }, 600_000);

  it("applying a lone voter's entries before their WAL write is durable loses a committed entry in a power cut (seed 115, at step 304)", async () => {
    await caughtBy(115, 'apply-before-fsync', /commit durability: index \d+ was committed as term \d+/);
  }, 600_000);

  it('writing entries without fsync loses a committed entry in a power cut (seed 35, at step 468)', async () => {
    await caughtBy(35, 'no-fsync', /commit durability: index \d+ was committed as term \d+/);
  }, 600_000);
});
