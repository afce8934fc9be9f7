// Progress: the leader's view of one member's log, and the state machine that
// decides how to replicate to it (see etcd's raft design.md):
//
//   probe      — we do not know where its log ends; send one MsgApp at a time and
//                wait for the answer (or a heartbeat response) before the next.
//   replicate  — it is known to follow; stream MsgApps optimistically, bounded by
//                Inflights.
//   snapshot   — it needs entries we compacted; a snapshot is on its way, send
//                nothing until it reports back.

import type { ProgressStateType, ProgressStatus } from '../types.js';
import { Inflights } from './inflights.js';

export class Progress {
  /** highest index known to be persisted on the member */
  match = 0;
  /** index of the next entry to send */
  next: number;
  state: ProgressStateType = 'probe';
  /** index of the snapshot in flight (state snapshot) */
  pendingSnapshot = 0;
  /** heard from the member since the last check-quorum round */
  recentActive: boolean;
  /** probe: a MsgApp is outstanding; replicate: inflights were full when last sent */
  msgAppFlowPaused = false;
  /** highest commit index sent to the member */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
    recentActive: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.recentActive = recentActive;
  }

  private resetState(state: ProgressStateType): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Coming back from a snapshot, resume after it: the follower has it (or reports failure,
    // in which case pendingSnapshot was cleared first).
    const after = this.state === 'snapshot' ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.resetState('probe');
    this.next = after + 1;
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** A MsgApp with `entries` entries (last index next+entries-1) went out. */
  sentEntries(entries: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (entries > 0) {
      this.msgAppFlowPaused = true;
    }
  }

  /** The member acknowledged up to n. Returns whether match moved. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The member rejected a MsgApp whose previous entry was `rejected`, hinting that its
   * log may match ours up to matchHint. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Stale: we already know it has `rejected`.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    // Probing sends one message at a time; a rejection of anything but it is stale.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** The member has entries we have not told it are committed. */
  canBumpCommit(commit: number): boolean {
    return commit > this.sentCommit && this.sentCommit < this.next - 1;
  }

  isPaused(): boolean {
    return this.state === 'snapshot' || this.msgAppFlowPaused;
  }

  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
      pendingSnapshot: this.pendingSnapshot,
      inflight: this.inflights.count,
      paused: this.isPaused(),
    };
  }
}
