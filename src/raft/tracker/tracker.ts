// ProgressTracker: the current membership configuration, the leader's Progress for
// every member, and the votes of an election in progress.

import type { ConfState } from '../../raftpb/index.js';
import { type MembershipConfig, toConfState } from '../confchange.js';
import { type VoteResult, committedIndex, majority, voteResult } from '../quorum.js';
import { Progress } from './progress.js';

export class ProgressTracker {
  config: MembershipConfig = { voters: new Set(), learners: new Set() };
  readonly progress = new Map<bigint, Progress>();
  readonly votes = new Map<bigint, boolean>();
  /**
   * Members whose removal we applied. IDs are never reused, so they will never be
   * members again. (Removals before our latest snapshot may be forgotten on restart.)
   */
  readonly removed = new Set<bigint>();

  constructor(private readonly maxInflight: number) {}

  isVoter(id: bigint): boolean {
    return this.config.voters.has(id);
  }

  isMember(id: bigint): boolean {
    return this.config.voters.has(id) || this.config.learners.has(id);
  }

  isEmpty(): boolean {
    return this.config.voters.size === 0 && this.config.learners.size === 0;
  }

  /** only one voter: a leader needs nobody else to commit or confirm reads */
  isSingleton(): boolean {
    return this.config.voters.size === 1;
  }

  confState(): ConfState {
    return toConfState(this.config);
  }

  /** Switch to cfg, creating Progress for new members (next = lastIndex + 1) and dropping removed ones. */
  applyConfig(cfg: MembershipConfig, lastIndex: number): void {
    for (const id of [...this.config.voters, ...this.config.learners]) {
      if (!cfg.voters.has(id) && !cfg.learners.has(id)) this.removed.add(id);
    }
    this.config = cfg;
    for (const id of [...this.progress.keys()]) {
      if (!cfg.voters.has(id) && !cfg.learners.has(id)) this.progress.delete(id);
    }
    const visit = (id: bigint, isLearner: boolean): void => {
      const pr = this.progress.get(id);
      if (pr !== undefined) {
        pr.isLearner = isLearner;
      } else {
        // A new member counts as recently active so that check-quorum does not depose
        // the leader before the member had a chance to answer.
        this.progress.set(id, new Progress(lastIndex + 1, this.maxInflight, isLearner, true));
      }
    };
    for (const id of cfg.voters) visit(id, false);
    for (const id of cfg.learners) visit(id, true);
  }

  /** Forget all replication state (new term): every member is probed from lastIndex + 1. */
  resetProgress(lastIndex: number): void {
    for (const [id, pr] of this.progress) {
      this.progress.set(id, new Progress(lastIndex + 1, this.maxInflight, pr.isLearner, false));
    }
  }

  /** the highest index persisted on a majority of voters */
  committed(): number {
    return committedIndex(this.config.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  /** whether a majority of voters was heard from recently (the leader itself included) */
  quorumActive(self: bigint): boolean {
    let active = 0;
    for (const id of this.config.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= majority(this.config.voters.size);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.config.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.config.voters, this.votes) };
  }
}
