// What each way of starting a member yields (a new cluster, joining one, a restart from
// the WAL): its identity, raft's node over its log, and the cluster's state outside the
// store, which bootstrap then completes with the store.

import type { Logger } from 'pino';
import { type MemoryStorage, RawNode, type RaftLogger } from '../raft/index.js';
import type { ConfState } from '../raftpb/types.js';
import type { WAL } from '../wal/index.js';
import type { AlarmStore } from './alarms.js';
import type { EtcdConfig } from './config/types.js';
import type { Membership } from './membership.js';
import type { V2Store } from './v2store/index.js';

export interface MemberStart {
  /** voting members known at start: a lone voter campaigns at once (etcd's tick advance) */
  votersAtStart: number;
  initialPeers: ReadonlyArray<{ id: bigint; peerUrls: readonly string[] }>;
  memberId: bigint;
  clusterId: bigint;
  raft: RawNode;
  raftStorage: MemoryStorage;
  wal: WAL;
  membership: Membership;
  alarms: AlarmStore;
  v2store: V2Store;
  snapshotIndex: number;
  confState: ConfState;
  /** the snapshot is etcd's, which leaves the active alarms to the store's `alarm` bucket */
  alarmsInStore?: boolean;
}

function raftLogger(log: Logger): RaftLogger {
  const raftLog = log.child({ caller: 'raft' });
  return {
    debug: (msg: string) => raftLog.debug(msg),
    info: (msg: string) => raftLog.info(msg),
    warn: (msg: string) => raftLog.warn(msg),
    error: (msg: string) => raftLog.error(msg),
  };
}

export function newRawNode(cfg: EtcdConfig, id: bigint, storage: MemoryStorage, applied: number, log: Logger): RawNode {
  return new RawNode({
    id,
    electionTick: Math.max(1, Math.floor(cfg.electionTimeout / cfg.heartbeatInterval)),
    heartbeatTick: 1,
    storage,
    applied,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 512,
    checkQuorum: true,
    // etcd-ts always pre-votes: a member rejoining after a partition cannot disrupt a
    // healthy leader by bumping the term.
    preVote: true,
    readOnlyOption: 'safe',
    // two messages fewer a write at one client (bench/server/README.md, session 31)
    quietCommitAcks: true,
    random: Math.random,
    logger: raftLogger(log),
  });
}
