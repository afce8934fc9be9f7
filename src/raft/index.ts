// Public surface of the raft library.

export type { RaftConfig } from './config.js';
export { defaultMaxInflightMsgs, defaultMaxSizePerMsg } from './config.js';
export {
  CompactedError,
  ProposalDroppedError,
  RaftError,
  SnapOutOfDateError,
  SnapshotTemporarilyUnavailableError,
  StepError,
  UnavailableError,
} from './errors.js';
export type { StepDropReason } from './errors.js';
export { MAX_INDEX, MAX_TERM, TERM_JUMP_LIMIT } from './limits.js';
export { discardLogger, hex16 } from './logger.js';
export type { RaftLogger } from './logger.js';
export { MemoryStorage } from './memory-storage.js';
export type { ReadOnlyOption } from './read-only.js';
export { RawNode } from './raw-node.js';
export type { Storage } from './storage.js';
export { entrySize } from './types.js';
export type {
  Peer,
  ProgressStateType,
  ProgressStatus,
  ReadState,
  Ready,
  SoftState,
  StateType,
  Status,
} from './types.js';
export type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from '../raftpb/index.js';
