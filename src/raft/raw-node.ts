// RawNode: the driver-facing API. The driver (the server's raft loop, or the
// simulator) feeds it ticks, messages and requests, and drains its output one
// Ready at a time:
//
//   while (node.hasReady()) {
//     const rd = node.ready();
//     persist(rd.snapshot, rd.entries, rd.hardState);   // one sync if rd.mustSync
//     send(rd.messages);
//     apply(rd.snapshot, rd.committedEntries);          // conf changes → applyConfChange
//     node.advance(rd);
//   }
//
// Calls may interleave with an outstanding Ready (proposals and messages arriving
// while the driver writes); only ready() must wait for advance().
//
// What the driver owes raft (the simulator checks a driver that does all this):
// - Persist before sending, except that a leader may send first when the Ready does
//   not change hardState.term or .vote (see Ready). Write the bootstrap Ready atomically.
// - When rd.persistFirst, persist before sending or applying anything of rd: the leader
//   counts its own log toward a commit before it is written, so a lone voter's entries
//   commit in the Ready that carries them (as in etcd's raft).
// - Report every MsgSnap's fate with reportSnapshot(to, 'finish' | 'failure'); until
//   then the leader sends that follower nothing.
// - Send a MsgSnap with a snapshot of the *current* applied state and configuration
//   (as etcd's createMergedSnapshotMessage does), not an older one from Storage: a
//   member added after that older snapshot is not in its ConfState and must refuse it.
// - Give applyConfChange every committed ConfChange entry, in log order. It may do
//   so after advance() (applying asynchronously, as etcd does); until it has, the
//   node neither campaigns nor accepts another conf change.

import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type SnapshotMetadata,
  emptyHardState,
  encodeConfChange,
  hardStateEqual,
  isEmptyHardState,
} from '../raftpb/index.js';
import { type RaftConfig, resolveConfig } from './config.js';
import { toConfState } from './confchange.js';
import { type StepDropReason, StepError } from './errors.js';
import { applyConfChange } from './membership.js';
import { discardLogger, hex16 } from './logger.js';
import { makeMessage } from './message.js';
import { Raft } from './raft.js';
import { flushBcastAppend } from './replicate.js';
import type { Peer, ProgressStatus, Ready, SoftState, Status } from './types.js';
import { checkAgainstState, checkStructure } from './validate.js';

const emptyData = new Uint8Array(0);

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** the Ready handed out and not yet advanced */
  private outstanding: Ready | undefined = undefined;
  private readonly drops: Record<StepDropReason, number> = {
    malformed: 0,
    'local-only': 0,
    'wrong-recipient': 0,
    'non-member': 0,
    inconsistent: 0,
    'term-limit': 0,
    'proposal-dropped': 0,
  };

  constructor(config: RaftConfig) {
    this.raft = new Raft(resolveConfig(config), config.logger ?? discardLogger);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Start a new cluster: append one ConfChangeAddNode per peer (term 1, indexes
   * 1..n, context = peer.context) and mark them committed. The first Ready hands
   * them out as entries to persist and as committed entries to apply (applying
   * them again through applyConfChange is harmless). Storage must be empty.
   */
  bootstrap(peers: readonly Peer[]): void {
    if (peers.length === 0) throw new Error('must provide at least one peer to Bootstrap');
    const r = this.raft;
    if (r.log.lastIndex() !== 0 || r.term !== 0) throw new Error("can't bootstrap a nonempty Storage");
    const seen = new Set<bigint>();
    for (const p of peers) {
      if (p.id === 0n) throw new Error('cannot bootstrap a peer with id 0');
      if (seen.has(p.id)) throw new Error(`duplicate peer ${hex16(p.id)} in bootstrap`);
      seen.add(p.id);
    }
    // The bootstrap entries must show up in the first Ready's hardState.
    this.prevHardState = emptyHardState;
    r.becomeFollower(1, 0n);
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ id: 0n, type: 0, nodeId: p.id, context: p.context ?? emptyData }),
    }));
    r.log.append(ents);
    r.log.committed = ents.length;
    for (const p of peers) applyConfChange(r, { id: 0n, type: 0, nodeId: p.id, context: p.context ?? emptyData });
  }

  tick(): void {
    this.raft.tick();
  }

  /** Campaign now (used to elect a leader quickly in tests and single-member clusters). */
  campaign(): void {
    this.raft.step(local(MessageType.MsgHup, 0n));
  }

  /** Propose data for the log. Throws ProposalDroppedError when it cannot be accepted now. */
  propose(data: Uint8Array): void {
    this.raft.step(
      makeMessage({
        type: MessageType.MsgProp,
        to: 0n,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Propose a membership change. Refused (ProposalDroppedError) while another change
   * is not yet applied, when it would remove the last voter, and in every case
   * propose() is refused. Apply it with applyConfChange once committed.
   */
  proposeConfChange(cc: ConfChange): void {
    this.raft.step(
      makeMessage({
        type: MessageType.MsgProp,
        to: 0n,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  /** Apply a committed conf change entry; returns the resulting configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    return toConfState(applyConfChange(this.raft, cc));
  }

  /**
   * Step a message received from a peer. A message that is malformed, local-only,
   * misaddressed, from a non-member or inconsistent with our state is counted and
   * refused with a StepError (as is a forwarded proposal we cannot accept, with
   * ProposalDroppedError); the node is unaffected and the caller may ignore it.
   */
  step(m: Message): void {
    try {
      const err = this.check(m);
      if (err !== undefined) throw err;
      this.raft.step(m);
    } catch (e) {
      if (e instanceof StepError) this.drops[e.reason]++;
      throw e;
    }
  }

  /**
   * Whether step(m) would refuse m now, without stepping or counting it: a transport
   * asks before it takes in the store that travels behind a MsgSnap.
   */
  check(m: Message): StepError | undefined {
    return checkStructure(m, this.raft.id) ?? checkAgainstState(this.raft, m);
  }

  /** Request a linearizable read; the answer arrives as a ReadState with this context. */
  readIndex(context: Uint8Array): void {
    this.raft.step(
      makeMessage({
        type: MessageType.MsgReadIndex,
        to: 0n,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data: context }],
      }),
    );
  }

  /** Ask the leader (this node, or forwarded to it) to hand leadership to transferee. */
  transferLeader(transferee: bigint): void {
    this.raft.step(local(MessageType.MsgTransferLeader, transferee));
  }

  /** The transport could not reach id: the leader stops optimistic replication to it. */
  reportUnreachable(id: bigint): void {
    this.raft.step(local(MessageType.MsgUnreachable, id));
  }

  /** Outcome of sending a MsgSnap to id. */
  reportSnapshot(id: bigint, status: 'finish' | 'failure'): void {
    this.raft.step(makeMessage({ type: MessageType.MsgSnapStatus, to: 0n, from: id, reject: status === 'failure' }));
  }

  /**
   * The snapshot raft has restored from a MsgSnap and whose Ready is not yet advanced;
   * undefined when there is none. Right after step(MsgSnap), it tells whether raft
   * accepted that snapshot or ignored it.
   */
  pendingSnapshot(): SnapshotMetadata | undefined {
    return this.raft.log.unstable.snapshot?.metadata;
  }

  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    if (r.bcastPending && r.state === 'leader') return true;
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.log.unstable.snapshot !== undefined) return true;
    return (
      r.msgs.length > 0 || r.log.unstable.entries.length > 0 || r.readStates.length > 0 || r.log.hasNextCommittedEnts()
    );
  }

  /** The next batch of work. Call advance(rd) when it is handled, before the next ready(). */
  ready(): Ready {
    if (this.outstanding !== undefined) throw new Error('raft: ready() called before advance() of the previous Ready');
    const r = this.raft;
    flushBcastAppend(r);
    const entries = r.log.unstableEntries();
    const committedEntries = r.log.nextCommittedEnts();
    const snapshot = r.log.unstable.snapshot;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = !softStateEqual(ss, this.prevSoftState);
    const hardChanged = !isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState);
    const firstEntry = entries[0];
    const mustSync =
      entries.length > 0 ||
      snapshot !== undefined ||
      (hardChanged && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote));
    const rd: Ready = {
      softState: softChanged ? ss : undefined,
      hardState: hardChanged ? hs : undefined,
      readStates: r.readStates,
      entries,
      snapshot,
      committedEntries,
      messages: r.msgs,
      mustSync,
      persistFirst: firstEntry !== undefined && hs.commit >= firstEntry.index,
    };
    if (softChanged) {
      this.logLeaderChange(ss);
      this.prevSoftState = ss;
    }
    if (hardChanged) this.prevHardState = hs;
    r.msgs = [];
    r.readStates = [];
    if (committedEntries.length > 0) {
      r.log.acceptApplying(committedEntries[committedEntries.length - 1]!.index);
      for (const e of committedEntries) if (e.type === EntryType.ConfChange) r.confChangesToApply++;
    }
    this.outstanding = rd;
    return rd;
  }

  /** rd was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('raft: advance() called with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.snapshot !== undefined) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      r.log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      r.onPersisted(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
      if (r.state === 'leader') {
        let payload = 0;
        for (const e of rd.committedEntries) payload += e.data.length;
        r.reduceUncommittedSize(payload);
      }
      r.onApplied();
    }
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<bigint, ProgressStatus> | undefined;
    if (r.state === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.trk.progress) progress.set(id, pr.toStatus());
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      config: r.trk.confState(),
      leadTransferee: r.leadTransferee,
      progress,
      droppedMessages: { ...this.drops },
    };
  }

  private logLeaderChange(ss: SoftState): void {
    const prev = this.prevSoftState.lead;
    if (ss.lead === prev) return;
    const r = this.raft;
    const id = hex16(r.id);
    if (ss.lead === 0n) r.logger.info(`raft.node: ${id} lost leader ${hex16(prev)} at term ${r.term}`);
    else if (prev === 0n) r.logger.info(`raft.node: ${id} elected leader ${hex16(ss.lead)} at term ${r.term}`);
    else r.logger.info(`raft.node: ${id} changed leader from ${hex16(prev)} to ${hex16(ss.lead)} at term ${r.term}`);
  }
}

function local(type: MessageType, from: bigint): Message {
  return makeMessage({ type, to: 0n, from });
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}
