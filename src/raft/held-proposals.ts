// Proposals a leader receives while it hands leadership over.
//
// etcd's raft drops them (ErrProposalDropped). A local one fails at once, but a forwarded
// one has no way back: the follower that forwarded it waits out its client's whole
// deadline (2 s in etcd's Go client) for an entry that will never come. In a transfer it
// is nearly always the transferee's own: it forwards a client's put and, in the same turn
// of its loop, campaigns on our MsgTimeoutNow. Held here instead, each proposal goes to
// whoever leads next, exactly once: we append it ourselves if the transfer is aborted (or
// we lead again), or forward it to the new leader as soon as we know who that is. Nothing
// is appended twice, because nothing held was appended at all.

import type { Message } from '../raftpb/index.js';
import { hex16 } from './logger.js';
import { readdressed } from './message.js';
import type { Raft } from './raft.js';

/** At most this many proposals wait; more are dropped as etcd drops them all. */
export const MAX_HELD_PROPOSALS = 1024;

/**
 * How many election timeouts held proposals may wait for a leader: the transfer's own
 * (it is aborted after one) and the election that follows it. Past that, their clients
 * have long been told their request timed out.
 */
const HOLD_ELECTION_TIMEOUTS = 2;

export class HeldProposals {
  private proposals: Message[] = [];
  /** ticks since the oldest held proposal arrived */
  private ticks = 0;

  get size(): number {
    return this.proposals.length;
  }

  /** Keeps m for the next leader; false when the queue is full. */
  hold(m: Message): boolean {
    if (this.proposals.length >= MAX_HELD_PROPOSALS) return false;
    if (this.proposals.length === 0) this.ticks = 0;
    this.proposals.push(m);
    return true;
  }

  /** One tick passed; proposals that waited too long for a leader are dropped. */
  tick(r: Raft): void {
    if (this.proposals.length === 0) return;
    if (++this.ticks < HOLD_ELECTION_TIMEOUTS * r.cfg.electionTick) return;
    r.logger.info(`${hex16(r.id)} [term ${r.term}] no leader took over; dropping ${this.proposals.length} held proposal(s)`);
    this.proposals = [];
  }

  /**
   * Hands the proposals on once a leader other than a transferring one is known:
   * `append` takes each while we lead; otherwise each is forwarded to the leader as
   * sent by us (it may have come from the new leader itself, and a member refuses a
   * message that claims to come from itself).
   */
  release(r: Raft, append: (m: Message) => void): void {
    if (this.proposals.length === 0) return;
    const leading = r.state === 'leader' && r.leadTransferee === 0n;
    const following = r.state === 'follower' && r.lead !== 0n;
    if (!leading && !following) return;
    const held = this.proposals;
    this.proposals = [];
    if (leading) {
      r.logger.info(`${hex16(r.id)} [term ${r.term}] appends ${held.length} proposal(s) held while leadership was being transferred`);
      for (const m of held) append(m);
      return;
    }
    if (r.cfg.disableProposalForwarding) {
      r.logger.info(`${hex16(r.id)} not forwarding to leader ${hex16(r.lead)} at term ${r.term}; dropping ${held.length} held proposal(s)`);
      return;
    }
    r.logger.info(`${hex16(r.id)} [term ${r.term}] forwards ${held.length} proposal(s) held while leadership was being transferred to the new leader ${hex16(r.lead)}`);
    for (const m of held) r.msgs.push(readdressed(m, r.lead, r.id, 0));
  }
}
