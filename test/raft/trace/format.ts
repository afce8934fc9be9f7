// Compact, stable text for what a RawNode hands its driver: Readies, messages,
// entries, snapshots and the leader's progress. One line per message or entry, IDs
// in decimal, fields left out when they are zero, so a trace reads like a protocol
// diagram and a changed field shows up as a one-line diff.

import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type SnapshotMetadata,
  decodeConfChange,
  messageTypeName,
} from '../../../src/raftpb/index.js';
import type { ProgressStatus, Ready } from '../../../src/raft/index.js';

const entryTypeNames: Record<EntryType, string> = {
  [EntryType.Normal]: 'EntryNormal',
  [EntryType.ConfChange]: 'EntryConfChange',
  [EntryType.ConfChangeV2]: 'EntryConfChangeV2',
};

/** The notation propose-conf-change takes: v4 adds voter 4, l4 learner 4, r4 removes 4, u4 updates 4. */
const confChangeLetters: ReadonlyMap<string, ConfChangeType> = new Map([
  ['v', ConfChangeType.AddNode],
  ['l', ConfChangeType.AddLearnerNode],
  ['r', ConfChangeType.RemoveNode],
  ['u', ConfChangeType.UpdateNode],
]);

export function formatConfChange(cc: ConfChange): string {
  for (const [letter, type] of confChangeLetters) if (type === cc.type) return `${letter}${cc.nodeId}`;
  return `unknown(${cc.type})${cc.nodeId}`;
}

/** Parse `v4`, `l4`, `r4` or `u4`; undefined when tok is not one. */
export function parseConfChange(tok: string): ConfChange | undefined {
  const m = /^([vlru])([1-9][0-9]*)$/.exec(tok);
  const type = m === null ? undefined : confChangeLetters.get(m[1]!);
  if (m === null || type === undefined) return undefined;
  return { id: 0n, type, nodeId: BigInt(m[2]!), context: new Uint8Array(0) };
}

/** Printable ASCII as a quoted string, anything else as hex. */
export function formatData(b: Uint8Array): string {
  if (b.every((c) => c >= 0x20 && c < 0x7f)) return JSON.stringify(new TextDecoder().decode(b));
  return `0x${Buffer.from(b).toString('hex')}`;
}

export function formatEntry(e: Entry): string {
  const head = `${e.term}/${e.index} ${entryTypeNames[e.type]}`;
  if (e.type === EntryType.ConfChange) return `${head} ${formatConfChange(decodeConfChange(e.data))}`;
  return `${head} ${formatData(e.data)}`;
}

export function formatConfState(cs: ConfState): string {
  return `Voters:[${cs.voters.join(' ')}] Learners:[${cs.learners.join(' ')}]`;
}

export function formatSnapshotMeta(m: SnapshotMetadata): string {
  return `Index:${m.index} Term:${m.term} ConfState:${formatConfState(m.confState)}`;
}

export function formatHardState(hs: HardState): string {
  return `HardState Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function formatMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${messageTypeName(m.type)} Term:${m.term}`;
  if (m.logTerm !== 0 || m.index !== 0) s += ` Log:${m.logTerm}/${m.index}`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(formatEntry).join(', ')}]`;
  if (m.snapshot !== undefined) s += ` Snapshot: ${formatSnapshotMeta(m.snapshot.metadata)}`;
  if (m.context !== undefined && m.context.length > 0) s += ` Context:${formatData(m.context)}`;
  return s;
}

/** A Ready as lines, sections in the order the driver handles them. */
export function formatReady(rd: Ready): string[] {
  const out = [`Ready MustSync=${rd.mustSync}${rd.persistFirst ? ' PersistFirst=true' : ''}:`];
  if (rd.softState !== undefined) out.push(`Lead:${rd.softState.lead} State:${rd.softState.raftState}`);
  if (rd.hardState !== undefined) out.push(formatHardState(rd.hardState));
  if (rd.snapshot !== undefined) out.push(`Snapshot ${formatSnapshotMeta(rd.snapshot.metadata)}`);
  section(out, 'Entries:', rd.entries.map(formatEntry));
  section(out, 'CommittedEntries:', rd.committedEntries.map(formatEntry));
  section(out, 'ReadStates:', rd.readStates.map((rs) => `Index:${rs.index} Ctx:${formatData(rs.requestCtx)}`));
  section(out, 'Messages:', rd.messages.map(formatMessage));
  return out;
}

function section(out: string[], title: string, lines: string[]): void {
  if (lines.length > 0) out.push(title, ...lines);
}

export function formatProgress(id: bigint, p: ProgressStatus): string {
  let s = `${id}: ${p.state} match=${p.match} next=${p.next}`;
  if (p.isLearner) s += ' learner';
  if (p.paused) s += ' paused';
  if (p.inflight > 0) s += ` inflight=${p.inflight}`;
  if (p.pendingSnapshot > 0) s += ` pendingSnapshot=${p.pendingSnapshot}`;
  if (!p.recentActive) s += ' inactive';
  return s;
}
