// Single-step membership changes (etcd's ConfChange v1): each change adds, removes,
// promotes or demotes exactly one member, so any two consecutive configurations
// share a majority and no joint consensus is needed. Pure set maths.

import { type ConfChange, ConfChangeType, type ConfState } from '../raftpb/index.js';
import { hex16 } from './logger.js';

export interface MembershipConfig {
  readonly voters: ReadonlySet<bigint>;
  readonly learners: ReadonlySet<bigint>;
}

export type ChangeResult = { readonly config: MembershipConfig } | { readonly error: string };

/** The configuration after cc, or why cc cannot be applied to cfg. */
export function changeConfig(cfg: MembershipConfig, cc: ConfChange): ChangeResult {
  if (cc.nodeId === 0n) return { error: 'conf change for node 0 (none)' };
  const voters = new Set(cfg.voters);
  const learners = new Set(cfg.learners);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      // Adds a voter, or promotes a learner.
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case ConfChangeType.AddLearnerNode:
      // Adds a learner, or demotes a voter.
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      break;
    case ConfChangeType.RemoveNode:
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
    case ConfChangeType.UpdateNode:
      // Only the member's attributes (in the context) change; raft has nothing to do.
      break;
    default:
      return { error: `unknown conf change type ${String((cc as { type: unknown }).type)}` };
  }
  if (voters.size === 0) return { error: 'removed all voters' };
  return { config: { voters, learners } };
}

/** ConfState of a configuration, IDs sorted so equal configs encode identically. */
export function toConfState(cfg: MembershipConfig): ConfState {
  return {
    voters: sortIds(cfg.voters),
    learners: sortIds(cfg.learners),
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

/** The configuration described by a ConfState, or why it is not one we can run with. */
export function fromConfState(cs: ConfState): ChangeResult {
  if (cs.votersOutgoing.length > 0 || cs.learnersNext.length > 0 || cs.autoLeave) {
    return { error: 'joint configurations (ConfChangeV2) are not supported' };
  }
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  if (voters.size !== cs.voters.length || learners.size !== cs.learners.length) {
    return { error: 'duplicate member IDs in conf state' };
  }
  for (const id of learners) {
    if (voters.has(id)) return { error: `${hex16(id)} is in both voters and learners` };
  }
  if (voters.has(0n) || learners.has(0n)) return { error: 'member ID 0 in conf state' };
  return { config: { voters, learners } };
}

export function describeConfChange(cc: ConfChange): string {
  const names: Record<number, string> = {
    [ConfChangeType.AddNode]: 'AddNode',
    [ConfChangeType.RemoveNode]: 'RemoveNode',
    [ConfChangeType.UpdateNode]: 'UpdateNode',
    [ConfChangeType.AddLearnerNode]: 'AddLearnerNode',
  };
  return `${names[cc.type] ?? `Unknown(${cc.type})`} ${hex16(cc.nodeId)}`;
}

export function describeConfig(cfg: MembershipConfig): string {
  const v = sortIds(cfg.voters).map(hex16).join(' ');
  const l = sortIds(cfg.learners).map(hex16).join(' ');
  return l === '' ? `voters=(${v})` : `voters=(${v}) learners=(${l})`;
}

function sortIds(ids: ReadonlySet<bigint>): bigint[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
