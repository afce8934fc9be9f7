// Typed errors of the raft library. Storage errors keep etcd's messages so that
// operators searching logs find the same words; every error is a class so callers
// branch with `instanceof`, never on strings.

export class RaftError extends Error {
  override name = 'RaftError';
}

/** Storage: the requested index precedes the first available entry (it was compacted). */
export class CompactedError extends RaftError {
  override name = 'CompactedError';
  constructor() {
    super('requested index is unavailable due to compaction');
  }
}

/** Storage: the requested entry lies past the last index. */
export class UnavailableError extends RaftError {
  override name = 'UnavailableError';
  constructor() {
    super('requested entry at index is unavailable');
  }
}

/** Storage: a snapshot is being prepared; the leader retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  override name = 'SnapshotTemporarilyUnavailableError';
  constructor() {
    super('snapshot is temporarily unavailable');
  }
}

/** Storage: the snapshot to apply or create is older than the one already held. */
export class SnapOutOfDateError extends RaftError {
  override name = 'SnapOutOfDateError';
  constructor() {
    super('requested index is older than the existing snapshot');
  }
}

/** Why step() refused a message. Each reason has its own counter in Status.droppedMessages. */
export type StepDropReason =
  | 'malformed' //        structurally invalid: unknown type, absurd term/index, inconsistent entries
  | 'local-only' //       a message type that only the node itself may generate (MsgHup, MsgBeat, ...)
  | 'wrong-recipient' //  addressed to another node, or claims to come from this node
  | 'non-member' //       the sender is not in this node's configuration
  | 'inconsistent' //     contradicts this node's state (commit past our log, ack past the leader's log, ...)
  | 'term-limit' //       would move our term too close to 2^53 in one step (see limits.ts)
  | 'proposal-dropped'; // a proposal (MsgProp) that could not be accepted

/**
 * step() refused a message. The node's state is unchanged by the refused message;
 * a server feeding network input may log and ignore it.
 */
export class StepError extends RaftError {
  override name = 'StepError';
  constructor(
    readonly reason: StepDropReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A proposal (data, conf change, forwarded MsgProp) was not accepted: no leader,
 * forwarding disabled, leadership transfer in progress, uncommitted-size limit, a
 * conf change already pending, or this node was removed. Retry later or elsewhere.
 */
export class ProposalDroppedError extends StepError {
  override name = 'ProposalDroppedError';
  constructor(readonly detail: string) {
    super('proposal-dropped', `raft proposal dropped: ${detail}`);
  }
}
