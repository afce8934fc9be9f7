// Building outgoing messages with every field present, in one fixed shape.

import { type Entry, type Message, MessageType, newMessage, type Snapshot } from '../raftpb/index.js';

export const noEntries: readonly Entry[] = Object.freeze([]);

export interface MessageInit {
  type: MessageType;
  to: bigint;
  from?: bigint;
  term?: number;
  logTerm?: number;
  index?: number;
  entries?: readonly Entry[];
  commit?: number;
  snapshot?: Snapshot;
  reject?: boolean;
  rejectHint?: number;
  context?: Uint8Array;
}

/** The message p describes; `from` and `term` fall back to the given defaults when p has none. */
export function makeMessage(p: MessageInit, from = 0n, term = 0): Message {
  return newMessage(
    p.type,
    p.to,
    p.from ?? from,
    p.term ?? term,
    p.logTerm ?? 0,
    p.index ?? 0,
    p.entries ?? noEntries,
    p.commit ?? 0,
    p.snapshot,
    p.reject ?? false,
    p.rejectHint ?? 0,
    p.context,
  );
}

/** m sent on to `to`, as `from`, at `term`: a request forwarded to the leader. */
export function readdressed(m: Message, to: bigint, from: bigint, term: number): Message {
  return newMessage(m.type, to, from, term, m.logTerm, m.index, m.entries, m.commit, m.snapshot, m.reject, m.rejectHint, m.context);
}

/** the response type answering a (pre-)vote request */
export function voteRespType(t: MessageType): MessageType {
  return t === MessageType.MsgVote ? MessageType.MsgVoteResp : MessageType.MsgPreVoteResp;
}

/** A context marking a MsgVote as part of a leadership transfer (etcd's campaignTransfer). */
export const campaignTransferContext = new TextEncoder().encode('CampaignTransfer');

export function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.length !== campaignTransferContext.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== campaignTransferContext[i]) return false;
  return true;
}
