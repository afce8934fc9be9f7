// Values the raft library hands to its driver (the server or a simulator).

import type { ConfState, Entry, HardState, Message, Snapshot } from '../raftpb/index.js';
import type { StepDropReason } from './errors.js';

export type StateType = 'follower' | 'candidate' | 'pre-candidate' | 'leader';

/** Volatile state worth telling the driver about: who leads, and our role. */
export interface SoftState {
  /** the leader's member ID, 0n when unknown */
  readonly lead: bigint;
  readonly raftState: StateType;
}

/** A confirmed linearizable read: once applied ≥ index, serve the read tagged requestCtx. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

/**
 * One batch of work for the driver. Handle it in this order: persist snapshot,
 * entries and hardState (one sync if mustSync); send messages; apply the snapshot
 * then committedEntries; call advance(rd). A leader may send its messages before
 * its own write completes (Raft thesis §10.2.1) except when this Ready changes
 * hardState.term or hardState.vote: those must be durable before any message leaves.
 * Committed entries already persisted may be applied while the write is under way —
 * unless persistFirst.
 */
export interface Ready {
  /** present only when changed since the previous Ready */
  readonly softState?: SoftState;
  /** present only when changed since the previous Ready */
  readonly hardState?: HardState;
  readonly readStates: readonly ReadState[];
  /** entries to append to stable storage (they may replace a conflicting tail) */
  readonly entries: readonly Entry[];
  /** snapshot to persist and apply; entries in this Ready follow it */
  readonly snapshot?: Snapshot;
  /** entries to apply; all of them are in storage or in this Ready's entries */
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  /** true when entries, term or vote changed: the write must be synced before sending */
  readonly mustSync: boolean;
  /**
   * The commit index reaches this Ready's own entries (a lone voter's, which commit as
   * they are appended, or a follower's that the leader says are committed): nothing of
   * this Ready may be sent or applied before its write is durable, or a crash could
   * lose entries that were applied or that others were told are committed.
   */
  readonly persistFirst: boolean;
}

export type ProgressStateType = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one member's replication, as reported by status(). */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressStateType;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly pendingSnapshot: number;
  readonly inflight: number;
  readonly paused: boolean;
}

export interface Status {
  readonly id: bigint;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  /** last index of the log (stable or not) */
  readonly lastIndex: number;
  /** the configuration raft currently acts on */
  readonly config: ConfState;
  /** 0n unless a leadership transfer is in progress (leader only) */
  readonly leadTransferee: bigint;
  /** leader only: replication state of every member, including itself */
  readonly progress?: ReadonlyMap<bigint, ProgressStatus>;
  /** messages refused by step(), by reason */
  readonly droppedMessages: Readonly<Record<StepDropReason, number>>;
}

export interface Peer {
  readonly id: bigint;
  readonly context?: Uint8Array;
}

/**
 * Size of an entry for flow control (MaxSizePerMsg, MaxUncommittedEntriesSize, the
 * committed-entries budget of a Ready): its payload plus a fixed allowance for the
 * protobuf framing of type, term and index.
 */
export const entryOverhead = 16;

export function entrySize(e: Entry): number {
  return e.data.length + entryOverhead;
}

/** Take entries from the front of ents while their total size stays within maxSize (always at least one). */
export function limitSize<T extends Entry>(ents: T[], maxSize: number): T[] {
  if (ents.length <= 1) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
