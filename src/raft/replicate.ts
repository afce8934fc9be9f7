// The leader's sending machinery: appends (or a snapshot when the follower needs
// compacted entries), heartbeats, the commit rule, and serving confirmed reads.

import { type Entry, type Message, MessageType, type Snapshot } from '../raftpb/index.js';
import { CompactedError, SnapshotTemporarilyUnavailableError } from './errors.js';
import { hex16 } from './logger.js';
import type { Raft } from './raft.js';
import type { Progress } from './tracker/progress.js';

/** Send the follower what it is missing (an empty MsgApp if nothing, to carry the commit index). */
export function sendAppend(r: Raft, to: bigint): void {
  maybeSendAppend(r, to, true);
}

/**
 * Send one MsgApp to `to` unless its flow is paused. Without new entries, only sends
 * when sendIfEmpty. Falls back to a snapshot when the entries were compacted.
 * Returns whether a message went out.
 */
export function maybeSendAppend(r: Raft, to: bigint, sendIfEmpty: boolean): boolean {
  const pr = r.trk.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined) return maybeSendSnapshot(r, to, pr);
  let ents: readonly Entry[] = [];
  // With full inflights, send only an empty MsgApp: if all the in-flight messages
  // were lost, its answer is what unblocks the flow.
  if (pr.state !== 'replicate' || !pr.inflights.full()) {
    try {
      ents = r.log.entries(pr.next, r.cfg.maxSizePerMsg);
    } catch (e) {
      if (e instanceof CompactedError) return maybeSendSnapshot(r, to, pr);
      throw e;
    }
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  r.send({
    type: MessageType.MsgApp,
    to,
    index: prevIndex,
    logTerm: prevTerm,
    entries: ents,
    commit: r.log.committed,
  });
  pr.sentEntries(ents.length);
  pr.sentCommit = r.log.committed;
  return true;
}

function maybeSendSnapshot(r: Raft, to: bigint, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.logger.debug(`${hex16(r.id)} ignore sending snapshot to ${hex16(to)} since it is not recently active`);
    return false;
  }
  let snap: Snapshot;
  try {
    snap = r.log.snapshot();
  } catch (e) {
    if (e instanceof SnapshotTemporarilyUnavailableError) {
      r.logger.debug(`${hex16(r.id)} failed to send snapshot to ${hex16(to)} because snapshot is temporarily unavailable`);
      return false;
    }
    throw e;
  }
  const { index, term } = snap.metadata;
  if (index === 0) {
    r.logger.error(`${hex16(r.id)} need non-empty snapshot to catch up ${hex16(to)}`);
    return false;
  }
  r.logger.info(
    `${hex16(r.id)} [firstindex: ${r.log.firstIndex()}, commit: ${r.log.committed}] sent snapshot[index: ${index}, term: ${term}] to ${hex16(to)}`,
  );
  pr.becomeSnapshot(index);
  r.send({ type: MessageType.MsgSnap, to, snapshot: snap });
  return true;
}

export function bcastAppend(r: Raft): void {
  for (const id of r.trk.progress.keys()) {
    if (id !== r.id) sendAppend(r, id);
  }
}

/**
 * Broadcast appends when the next Ready is built rather than now: every proposal
 * and commit advance until then rides in one MsgApp per follower (batching).
 */
export function bcastAppendSoon(r: Raft): void {
  r.bcastPending = true;
}

/** Send the broadcast requested by bcastAppendSoon, if we still lead. */
export function flushBcastAppend(r: Raft): void {
  if (!r.bcastPending) return;
  r.bcastPending = false;
  if (r.state === 'leader') bcastAppend(r);
}

function sendHeartbeat(r: Raft, to: bigint, ctx: Uint8Array | undefined): void {
  const pr = r.trk.progress.get(to)!;
  // Never claim a commit index beyond what the follower is known to hold: its log
  // past match may still diverge from ours.
  const commit = Math.min(pr.match, r.log.committed);
  r.send({ type: MessageType.MsgHeartbeat, to, commit, context: ctx });
  pr.sentCommit = commit;
}

/** Heartbeat every member, carrying the newest pending read's context for ReadIndex confirmation. */
export function bcastHeartbeat(r: Raft): void {
  bcastHeartbeatWithCtx(r, r.readOnly.lastPendingRequestCtx());
}

export function bcastHeartbeatWithCtx(r: Raft, ctx: Uint8Array | undefined): void {
  for (const id of r.trk.progress.keys()) {
    if (id !== r.id) sendHeartbeat(r, id, ctx);
  }
}

/**
 * Advance the commit index to what a majority of voters holds — but only through an
 * entry of the current term (§5.4.2, the figure 8 rule). Returns whether it moved.
 */
export function maybeCommit(r: Raft): boolean {
  return r.log.maybeCommit(r.trk.committed(), r.term);
}

/** Start confirming a read at the current commit index (the leader has committed in its term). */
export function sendMsgReadIndexResponse(r: Raft, m: Message): void {
  if (r.trk.isSingleton()) {
    // The only voter: nobody else can commit anything, no confirmation needed.
    r.responseToReadIndexReq(m, r.log.committed);
    return;
  }
  // During a transfer the transferee campaigns without waiting for our lease to run
  // out, so leases prove nothing then: confirm with a heartbeat round instead.
  if (r.readOnly.option === 'lease-based' && r.leadTransferee === 0n) {
    r.responseToReadIndexReq(m, r.log.committed);
    return;
  }
  const ctx = m.entries[0]!.data;
  r.readOnly.addRequest(r.log.committed, m);
  // The leader's own acknowledgement; the rest come with heartbeat responses.
  r.readOnly.recvAck(r.id, ctx);
  bcastHeartbeatWithCtx(r, ctx);
}

/** Reads that arrived before the first commit of this term can be served now. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0) return;
  if (!r.committedEntryInCurrentTerm()) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) sendMsgReadIndexResponse(r, m);
}
