// Messages no correct peer would send, tailored to a node's current state: each
// must be refused by RawNode.step with a StepError and leave the node untouched.
// (Messages a Byzantine member could forge consistently — e.g. a fake leader at a
// valid term — are out of scope: peers are authenticated by the transport.)

import { EntryType, type Message, MessageType } from '../../raftpb/index.js';
import type { Status } from '../types.js';
import type { Rng } from '../../pkg/rng.js';

const enc = new TextEncoder();
/** an ID no member ever has */
const stranger = 999n;

/** what a variant may change, and the base it starts from */
type Fields = Omit<Message, 'type' | 'snapshot' | 'context'>;

/**
 * A forged message has its own class: the values no correct peer sends (a NaN or 2^60
 * term) then widen this class's fields, not those of the map every real Message shares
 * (raftpb's newMessage), and raft's functions see two steady shapes rather than a few
 * more for each variant. Variants name what they change rather than spread a base: once
 * optimized, a spread of a shared base gave each forged message a map of its own (222
 * maps in 20 seeds).
 */
class Forged implements Message {
  readonly type: MessageType;
  readonly to: bigint;
  readonly from: bigint;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: Message['entries'];
  readonly commit: number;
  readonly snapshot: undefined = undefined;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context: undefined = undefined;

  constructor(base: Fields, p: Partial<Fields> & { type: MessageType }) {
    this.type = p.type;
    this.to = p.to ?? base.to;
    this.from = p.from ?? base.from;
    this.term = p.term ?? base.term;
    this.logTerm = p.logTerm ?? base.logTerm;
    this.index = p.index ?? base.index;
    this.entries = p.entries ?? base.entries;
    this.commit = p.commit ?? base.commit;
    this.reject = p.reject ?? base.reject;
    this.rejectHint = p.rejectHint ?? base.rejectHint;
  }
}

export function hostileMessage(self: bigint, st: Status, rng: Rng): Message | undefined {
  const members = [...st.config.voters, ...st.config.learners].filter((id) => id !== self);
  // A node that knows no members yet (joining) hears strangers: nothing to test there.
  if (members.length === 0 && st.config.voters.length + st.config.learners.length === 0) return undefined;
  const peer = members.length > 0 ? rng.pick(members) : stranger;
  const term = st.hardState.term;
  const base: Fields = {
    to: self,
    from: peer,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
  const proposal = [{ term: 0, index: 0, type: EntryType.Normal, data: enc.encode('h') }];
  const forge = (p: Partial<Fields> & { type: MessageType }): Message => new Forged(base, p);
  const variants: Array<() => Message | undefined> = [
    () => forge({ type: 99 as MessageType }),
    () => forge({ type: MessageType.MsgHeartbeat, term: Number.NaN }),
    () => forge({ type: MessageType.MsgApp, term: 2 ** 60 }),
    () => forge({ type: MessageType.MsgApp, index: -3 }),
    () =>
      forge({
        type: MessageType.MsgApp,
        term: term + 1,
        index: st.lastIndex,
        entries: [{ term: term + 1, index: st.lastIndex + 5, type: EntryType.Normal, data: enc.encode('x') }],
      }),
    () => forge({ type: MessageType.MsgHup }),
    () => forge({ type: MessageType.MsgVoteResp, from: stranger, term: term + 5 }),
    () => forge({ type: MessageType.MsgHeartbeatResp, from: stranger }),
    () => forge({ type: MessageType.MsgProp, from: stranger, term: 0, entries: proposal }),
    () => forge({ type: MessageType.MsgHeartbeatResp, to: self + 1000n }),
    () => forge({ type: MessageType.MsgSnap }),
    () => forge({ type: MessageType.MsgProp, term: 7, entries: proposal }),
    () => forge({ type: MessageType.MsgReadIndex, term: 0 }),
    // Claims that contradict the node's own log.
    () =>
      st.softState.lead !== 0n && st.softState.lead !== self
        ? forge({ type: MessageType.MsgHeartbeat, from: st.softState.lead, commit: st.lastIndex + 50 })
        : undefined,
    () =>
      st.softState.raftState === 'leader' && members.length > 0
        ? forge({ type: MessageType.MsgAppResp, index: st.lastIndex + 1000 })
        : undefined,
  ];
  return rng.pick(variants)();
}
