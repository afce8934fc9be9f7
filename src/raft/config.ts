// Raft configuration, its defaults and validation (etcd's raft.Config).

import type { RaftLogger } from './logger.js';
import type { ReadOnlyOption } from './read-only.js';
import type { Storage } from './storage.js';

export interface RaftConfig {
  /** this member's ID, never 0 */
  id: bigint;
  /** ticks without hearing from a leader before campaigning (randomized in [electionTick, 2×electionTick)) */
  electionTick: number;
  /** ticks between leader heartbeats */
  heartbeatTick: number;
  storage: Storage;
  /**
   * Last applied index when restarting: entries up to it are not handed out again.
   * Pass the index of the snapshot the member restarted from (at most the persisted
   * commit), not a later durable apply index: raft's configuration is rebuilt from the
   * snapshot's ConfState plus the conf changes it hands out after it.
   */
  applied?: number;
  /** max bytes (entrySize) of entries per MsgApp; also the committed-entries budget of one Ready */
  maxSizePerMsg?: number;
  /** max unacknowledged MsgApps per follower in replicate state */
  maxInflightMsgs?: number;
  /** max bytes of proposed but uncommitted entries on the leader; 0 = unlimited */
  maxUncommittedEntriesSize?: number;
  /** leader steps down when it has not heard from a quorum within an election timeout */
  checkQuorum?: boolean;
  /** run a pre-election round so partitioned members do not inflate terms */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** followers refuse proposals instead of forwarding them to the leader */
  disableProposalForwarding?: boolean;
  /**
   * A follower leaves unanswered an append without entries that moves its commit index
   * and names no index past what it has acknowledged already in this term (etcd's raft
   * answers every append). See handleAppendEntries.
   */
  quietCommitAcks?: boolean;
  /** injected PRNG in [0, 1): the only source of randomness */
  random: () => number;
  logger?: RaftLogger;
}

export interface ResolvedConfig {
  readonly id: bigint;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly storage: Storage;
  readonly applied: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly disableProposalForwarding: boolean;
  readonly quietCommitAcks: boolean;
  readonly random: () => number;
}

export const defaultMaxSizePerMsg = 1024 * 1024;
export const defaultMaxInflightMsgs = 512;

/** Apply defaults and check the configuration; throws Error with etcd's wording. */
export function resolveConfig(c: RaftConfig): ResolvedConfig {
  if (c.id === 0n) throw new Error('cannot use none as id');
  if (!isPositiveInt(c.heartbeatTick)) throw new Error('heartbeat tick must be greater than 0');
  if (!Number.isSafeInteger(c.electionTick) || c.electionTick <= c.heartbeatTick) {
    throw new Error('election tick must be greater than heartbeat tick');
  }
  if (c.storage === undefined || c.storage === null) throw new Error('storage cannot be nil');
  const maxInflightMsgs = c.maxInflightMsgs ?? defaultMaxInflightMsgs;
  if (!isPositiveInt(maxInflightMsgs)) throw new Error('max inflight messages must be greater than 0');
  const maxSizePerMsg = c.maxSizePerMsg ?? defaultMaxSizePerMsg;
  if (!isPositiveInt(maxSizePerMsg)) throw new Error('max size per message must be greater than 0');
  const maxUncommittedEntriesSize = c.maxUncommittedEntriesSize ?? 0;
  if (!Number.isSafeInteger(maxUncommittedEntriesSize) || maxUncommittedEntriesSize < 0) {
    throw new Error('max uncommitted entries size must not be negative');
  }
  const readOnlyOption = c.readOnlyOption ?? 'safe';
  if (readOnlyOption !== 'safe' && readOnlyOption !== 'lease-based') {
    throw new Error(`unknown read-only option ${String(readOnlyOption)}`);
  }
  const checkQuorum = c.checkQuorum ?? false;
  if (readOnlyOption === 'lease-based' && !checkQuorum) {
    throw new Error('CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased');
  }
  if (typeof c.random !== 'function') throw new Error('random (a seeded PRNG) must be provided');
  const applied = c.applied ?? 0;
  if (!Number.isSafeInteger(applied) || applied < 0) throw new Error('applied must be a non-negative integer');
  return {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    storage: c.storage,
    applied,
    maxSizePerMsg,
    maxInflightMsgs,
    maxUncommittedEntriesSize,
    checkQuorum,
    preVote: c.preVote ?? false,
    readOnlyOption,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    quietCommitAcks: c.quietCommitAcks ?? false,
    random: c.random,
  };
}

function isPositiveInt(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}
