// What a member is built from: its configuration, and everything bootstrap opened or
// created for it (raft, the WAL, the store, the cluster's state) with the peer
// transport's side of it.

import type { Message, ConfState } from '../raftpb/types.js';
import type { MemoryStorage, RawNode } from '../raft/index.js';
import type { Snapshotter, WAL } from '../wal/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { AlarmStore } from './alarms.js';
import type { ApplierPeers } from './applier.js';
import type { AuthState } from './auth/store.js';
import type { JwtTokens } from './auth/jwt-token.js';
import type { Lessor } from './lessor.js';
import type { Membership } from './membership.js';
import type { V2Store } from './v2store/index.js';
import type { SavedDbTimes } from './received-db.js';

export interface ServerConfig {
  readonly name: string;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** --initial-election-tick-advance: a member in a cluster advances its election ticks once a peer is connected */
  readonly initialElectionTickAdvance: boolean;
  readonly snapshotCount: number;
  /** raft log entries kept behind a snapshot, so slow followers catch up without one */
  readonly snapshotCatchUpEntries: number;
  /** --experimental-warning-apply-duration: an entry applied slower is logged and counted */
  readonly warningApplyMs: number;
  readonly maxRequestBytes: number;
  readonly quotaBackendBytes: number;
  readonly maxTxnOps: number;
  readonly advertiseClientUrls: readonly string[];
  /** longest a store write waits to be batched with later ones (etcd's backend batch interval) */
  readonly backendBatchIntervalMs: number;
  /** applied entries after which the store is written at once (etcd's backend batch limit) */
  readonly backendBatchLimit: number;
  /** --auth-token-ttl: a simple token unused this long stops working */
  readonly authTokenTtlMs: number;
  /** --auth-token jwt,...: the JWT provider; simple tokens when absent */
  readonly jwt?: JwtTokens;
}

/** Everything bootstrap opened or created, handed to the server. */
export interface ServerParts {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly raft: RawNode;
  readonly raftStorage: MemoryStorage;
  readonly wal: WAL;
  readonly snapshotter: Snapshotter;
  readonly store: MvccStore;
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly alarms: AlarmStore;
  /** users, roles and the enabled flag as the store holds them */
  readonly authState: AuthState;
  readonly v2store: V2Store;
  /** voting members known at start */
  readonly votersAtStart: number;
  /** index and conf state of the snapshot the member started from */
  readonly snapshotIndex: number;
  readonly confState: ConfState;
  /** Called with raft messages for other members (the peer transport). */
  readonly send: (msgs: readonly Message[]) => void;
  /** The peer transport's view of the membership, kept in step as conf changes apply. */
  readonly peers: PeerSet;
  /** Where the store lives, where a store received from the leader waits beside it, and etcd's bbolt file. */
  readonly layout: { dbDir: string; snapDir: string; boltPath: string };
  /** etcd's bbolt file was there at the start, no older than the newest .snap; else it is written once the member serves */
  readonly etcdDbPresent: boolean;
  /** Called with the duration of every store commit (etcd_disk_backend_commit_duration_seconds). */
  readonly onBackendCommit?: (seconds: number) => void;
  /** Called once a backup of the store sent to a peer has gone out, with how long it took (etcd_disk_backend_snapshot_duration_seconds). */
  readonly onBackendSnapshot?: (seconds: number) => void;
  /** Called once a database received from the leader is saved (etcd_snap_db_*). */
  readonly onSnapshotDbSaved?: (times: SavedDbTimes) => void;
}

/** The peer transport's view of the membership (the applier keeps it in step with conf changes). */
export interface PeerSet extends ApplierPeers {
  /** ms timestamp since which the peer's stream is up; undefined while it is down */
  activeSince(id: bigint): number | undefined;
  /** whether a message to the peer would go out now (its stream for our messages is up) */
  canSendTo(id: bigint): boolean;
}
