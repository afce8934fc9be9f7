// Raft's wire and disk types (proto/raftpb/raft.proto) as plain TypeScript values.
// Terms and indexes are numbers; member IDs are uint64 and therefore bigint.

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
  ConfChangeV2: 2,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

export const MessageType = {
  MsgHup: 0,
  MsgBeat: 1,
  MsgProp: 2,
  MsgApp: 3,
  MsgAppResp: 4,
  MsgVote: 5,
  MsgVoteResp: 6,
  MsgSnap: 7,
  MsgHeartbeat: 8,
  MsgHeartbeatResp: 9,
  MsgUnreachable: 10,
  MsgSnapStatus: 11,
  MsgCheckQuorum: 12,
  MsgTransferLeader: 13,
  MsgTimeoutNow: 14,
  MsgReadIndex: 15,
  MsgReadIndexResp: 16,
  MsgPreVote: 17,
  MsgPreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypeNames = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

export function messageTypeName(t: number): string {
  return messageTypeNames[t] ?? `MsgUnknown(${t})`;
}

export function isMessageType(t: number): t is MessageType {
  return t in messageTypeNames;
}

export interface ConfState {
  readonly voters: readonly bigint[];
  readonly learners: readonly bigint[];
  readonly votersOutgoing: readonly bigint[];
  readonly learnersNext: readonly bigint[];
  readonly autoLeave: boolean;
}

export const emptyConfState: ConfState = Object.freeze({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export interface SnapshotMetadata {
  readonly confState: ConfState;
  readonly index: number;
  readonly term: number;
}

export interface Snapshot {
  readonly data: Uint8Array;
  readonly metadata: SnapshotMetadata;
}

export const emptySnapshot: Snapshot = Object.freeze({
  data: new Uint8Array(0),
  metadata: Object.freeze({ confState: emptyConfState, index: 0, term: 0 }),
});

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

export interface Message {
  readonly type: MessageType;
  readonly to: bigint;
  readonly from: bigint;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context?: Uint8Array;
}

/**
 * The one place a Message object is built: every field present, always in this order,
 * so that raft's hot functions see one hidden class (V8 map) whatever built the message
 * (raft, the wire decoder, a snapshot sender). An object literal elsewhere with fewer
 * fields, another order or a field added later is another map, and code that has seen
 * both is slower or compiled again.
 */
export function newMessage(
  type: MessageType,
  to: bigint,
  from: bigint,
  term: number,
  logTerm: number,
  index: number,
  entries: readonly Entry[],
  commit: number,
  snapshot: Snapshot | undefined,
  reject: boolean,
  rejectHint: number,
  context: Uint8Array | undefined,
): Message {
  return { type, to, from, term, logTerm, index, entries, commit, snapshot, reject, rejectHint, context };
}

/** m carrying another snapshot (a sender's fresher one), as one of newMessage's. */
export function withSnapshot(m: Message, snapshot: Snapshot): Message {
  return newMessage(m.type, m.to, m.from, m.term, m.logTerm, m.index, m.entries, m.commit, snapshot, m.reject, m.rejectHint, m.context);
}

export interface HardState {
  readonly term: number;
  /** the member voted for in `term`, 0n for none */
  readonly vote: bigint;
  readonly commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: 0n, commit: 0 });

export function isEmptyHardState(h: HardState): boolean {
  return h.term === 0 && h.vote === 0n && h.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  UpdateNode: 2,
  AddLearnerNode: 3,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  /** proposer-chosen id, used by the server to match the applied change to its waiter */
  readonly id: bigint;
  readonly type: ConfChangeType;
  readonly nodeId: bigint;
  readonly context: Uint8Array;
}
