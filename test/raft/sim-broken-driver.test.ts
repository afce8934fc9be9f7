// The simulator's broken driver 'apply-before-fsync' must really be broken: a follower
// whose Ready brings entries together with a commit index covering them hands them to
// the applier while their WAL write is still under way, where the real driver waits.
// (Whole-member seeds catch it once a lone leader commits at append, as etcd's raft does;
// with today's rule the entries applied early are durable on a quorum already.)

import { describe, expect, it } from 'vitest';
import { EntryType, type Entry, type Message, MessageType, emptyConfState } from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';
import { RaftNode, type RaftNodeParts } from '../../src/server/raft-node.js';
import { ApplyBeforeFsyncNode } from '../../src/raft/sim/broken-driver.js';

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
