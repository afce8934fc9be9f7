// Building outgoing messages with every field present, in one fixed shape.

import { type Entry, type Message, MessageType, type Snapshot } from '../raftpb/index.js';

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

export function makeMessage(p: MessageInit): Message {
  return {
    type: p.type,
    to: p.to,
    from: p.from ?? 0n,
    term: p.term ?? 0,
    logTerm: p.logTerm ?? 0,
    index: p.index ?? 0,
    entries: p.entries ?? noEntries,
    commit: p.commit ?? 0,
    snapshot: p.snapshot,
    reject: p.reject ?? false,
    rejectHint: p.rejectHint ?? 0,
    context: p.context,
  };
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
