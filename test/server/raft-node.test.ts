// The raft driver (RaftNode) of a lone member, on the real WAL over a MemDisk (which knows
// what a power cut leaves): each batch of proposals is one synced WAL write that carries
// both the entries and the commit index covering them, and nothing is applied (answered)
// before that write is durable — as etcd 3.4's raft loop does for a single member (its
// raft commits a lone voter's entries in the Ready that carries them; shouldWaitWALSync).
// A put answered, then the power cut: the WAL's commit index covers the put, so
// `--force-new-cluster` (which drops what is past the commit index) keeps it.

import { expect, it } from 'vitest';
import { type Entry, EntryType, type HardState, MessageType, decodeConfChange, encodeConfChange } from '../../src/raftpb/index.js';
import { RawNode } from '../../src/raft/index.js';
import { makeMessage } from '../../src/raft/message.js';
import { openDiskState } from '../../src/raft/sim/disk-state.js';
import { SimClock } from '../../src/raft/sim/clock.js';
import { RaftNode, type RaftApplier, type RaftStorage } from '../../src/server/raft-node.js';
import { WalStorage } from '../../src/server/wal-storage.js';
import { MemDisk } from '../../src/wal/index.js';

interface Save {
  entries: number;
  commit: number | undefined;
  mustSync: boolean;
}

/** An applier that keeps, as each chosen entry applies, what a power cut would leave of the disk. */
class CutsAtApply implements RaftApplier {
  failure: Error | undefined;
  constructor(
    private readonly disk: MemDisk,
    private readonly node: () => RaftNode,
    private readonly chosen: (e: Entry) => boolean,
    private readonly cuts: Array<{ index: number; disk: MemDisk }>,
  ) {}
  softStateChanged(): void {}
  readStates(): void {}
  async beforeSnapshotSave(): Promise<void> {}
  applyEntries(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (this.chosen(e)) this.cuts.push({ index: e.index, disk: this.disk.afterCrash('power', e.index) });
      if (e.type === EntryType.ConfChange) this.node().applyConfChange(decodeConfChange(e.data));
    }
  }
  applySnapshot(): void {}
  fatal(err: Error): void {
    this.failure = err;
  }
}

/** Lets the driver handle every Ready until it is idle (the WAL on a MemDisk only waits on promises). */
async function settle(clock: SimClock, applier: CutsAtApply): Promise<void> {
  for (;;) {
    const ran = clock.runImmediates();
    await new Promise((resolve) => setImmediate(resolve));
    if (applier.failure !== undefined) throw applier.failure;
    if (!ran) return;
  }
}

it('a lone member writes each batch once, entries and commit index in one synced write, and applies it only once durable', async () => {
  const disk = new MemDisk();
  const { wal, snapshotter, raftStorage } = await openDiskState(disk);
  const raft = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: raftStorage, random: () => 0 });
  raft.bootstrap([{ id: 1n }]);

  // The real WalStorage, watched: every save the driver makes, in order.
  const walStorage = new WalStorage(wal, snapshotter);
  const saves: Save[] = [];
  const storage: RaftStorage = {
    save: async (hs: HardState | undefined, entries: readonly Entry[], mustSync: boolean) => {
      saves.push({ entries: entries.length, commit: hs?.commit, mustSync });
      await walStorage.save(hs, entries, mustSync);
    },
    saveSnap: (snap) => walStorage.saveSnap(snap),
    release: (index) => walStorage.release(index),
  };
  // At each apply (when the server would answer the client), what a power cut would leave.
  const cutsAtApply: Array<{ index: number; disk: MemDisk }> = [];
  const applier = new CutsAtApply(disk, () => node, () => true, cutsAtApply);
  const clock = new SimClock();
  const node = new RaftNode({ raft, raftStorage, storage, transport: { send: () => {} }, applier, clock, heartbeatMs: 100 });
  const work = () => settle(clock, applier);

  node.start();
  await work();
  node.advanceTicks(10); // the election timeout: a lone voter elects itself
  await work();
  expect(node.isLeader).toBe(true);

  const before = saves.length;
  const proposals = [['a'], ['b', 'c', 'd'], ['e']];
  for (const batch of proposals) {
    for (const v of batch) node.propose(new TextEncoder().encode(v));
    await work();
  }
  const batches = saves.slice(before);
  // One write per batch, synced, its commit index covering the batch: no second write
  // for a commit index alone.
  expect(batches.map((s) => s.entries)).toEqual(proposals.map((b) => b.length));
  expect(batches.every((s) => s.mustSync)).toBe(true);
  expect(batches.map((s) => s.commit)).toEqual([3, 6, 7]); // after the bootstrap entry (1) and the leader's empty one (2)
  expect(node.committed).toBe(raftStorage.lastIndex());

  // Everything applied (the bootstrap entry, the leader's empty entry, five proposals) was
  // durable with its commit index when it was applied.
  expect(cutsAtApply.map((c) => c.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  for (const cut of cutsAtApply) {
    const reopened = await openDiskState(cut.disk);
    const { hardState } = reopened.raftStorage.initialState();
    expect(hardState.commit, `the WAL a power cut leaves once entry ${cut.index} is applied`).toBeGreaterThanOrEqual(cut.index);
    await reopened.wal.close();
  }
  await node.stop();
  await wal.close();
});

it('a follower applies a conf change only once the commit index covering it is durable', async () => {
  // Member 2 of {1, 2}, driven by hand as member 1 would lead it: a conf change entry, then
  // the commit index that covers it in an append of its own, whose Ready would otherwise
  // hold that commit index in memory (a commit index alone is not synced). Applied on a
  // commit index that a power cut then takes back, the change would be undone on restart.
  const disk = new MemDisk();
  const { wal, snapshotter, raftStorage } = await openDiskState(disk);
  const raft = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: raftStorage, random: () => 0 });
  raft.bootstrap([{ id: 1n }, { id: 2n }]);
  const cutsAtConfChange: Array<{ index: number; disk: MemDisk }> = [];
  const applier = new CutsAtApply(disk, () => node, (e) => e.type === EntryType.ConfChange, cutsAtConfChange);
  const clock = new SimClock();
  const node = new RaftNode({ raft, raftStorage, storage: new WalStorage(wal, snapshotter), transport: { send: () => {} }, applier, clock, heartbeatMs: 100 });
  const work = () => settle(clock, applier);
  node.start();
  await work();
  const bootstrapped = cutsAtConfChange.length; // the two bootstrap entries, applied with their sync
  const app = (index: number, entries: Entry[], commit: number) =>
    node.step(makeMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 2, logTerm: index === 2 ? 1 : 2, index, entries, commit }));
  // the leader's empty entry of term 2, then the learner 3 added, then the commit of both
  app(2, [{ term: 2, index: 3, type: EntryType.Normal, data: new Uint8Array(0) }], 2);
  await work();
  app(3, [{ term: 2, index: 4, type: EntryType.ConfChange, data: encodeConfChange({ id: 0n, type: 3, nodeId: 3n, context: new Uint8Array(0) }) }], 3);
  await work();
  app(4, [], 4);
  await work();

  expect(cutsAtConfChange.slice(bootstrapped).map((c) => c.index)).toEqual([4]);
  for (const cut of cutsAtConfChange) {
    const reopened = await openDiskState(cut.disk);
    const { hardState } = reopened.raftStorage.initialState();
    expect(hardState.commit, `the WAL a power cut leaves once conf change ${cut.index} is applied`).toBeGreaterThanOrEqual(cut.index);
    await reopened.wal.close();
  }
  await node.stop();
  await wal.close();
});
