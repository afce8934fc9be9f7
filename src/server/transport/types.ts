// What the transport needs from the member it serves, and what it knows about itself.

import type { Message } from '../../raftpb/index.js';

/** The raft side of the member (implemented by the server). */
export interface RaftHandle {
  /** Delivers an incoming message to raft; throws StepError when raft refuses it. */
  process(m: Message): void;
  /** Why raft would refuse `m` now, without stepping it; undefined if it would take it. */
  check(m: Message): Error | undefined;
  /** A message to `id` was dropped: raft stops optimistic replication to it. */
  reportUnreachable(id: bigint): void;
  /** How sending a MsgSnap to `id` ended. */
  reportSnapshot(id: bigint, status: 'finish' | 'failure'): void;
}

/** Moves the database alongside a MsgSnap (implemented by the server). */
export interface SnapshotHooks {
  /**
   * Leader side: the MsgSnap to actually send and the database (etcd's bbolt file) to
   * stream behind it, taken together so that they describe the same state (etcd's merged
   * snapshot message) rather than an older snapshot. `size` is exact; the stream frees
   * what it holds however the send ends.
   */
  prepare(m: Message): Promise<{ message: Message; size: number; stream: AsyncIterable<Buffer> }>;
  /**
   * Follower side: consume `db` to the end (it throws instead of ending if the body was
   * cut short), save the database beside the live store, step the MsgSnap into raft, and
   * resolve once raft accepted it and the store is installed. Rejects with
   * SnapshotRefused when the member will not take it; the live store is then untouched.
   * The transport never steps a MsgSnap itself.
   */
  receive(m: Message, db: AsyncIterable<Buffer>): Promise<void>;
}

/** Who this member is, as every peer request announces it. */
export interface LocalMember {
  readonly localId: bigint;
  readonly clusterId: bigint;
  /** server version, e.g. '3.4.23' */
  readonly version: string;
  /** this member's advertised peer URLs, announced in X-PeerURLs */
  readonly peerUrls: readonly string[];
}
