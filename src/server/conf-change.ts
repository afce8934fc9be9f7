// What a committed conf change does to the membership and the peer transport (etcd's
// applyConfChange, after ValidateConfigurationChange). A change the membership refuses
// still goes through raft's conf change path as a no-op, as in etcd: raft's
// configuration and the membership must agree on every member.

import { ConfChangeType, type ConfChange } from '../raftpb/types.js';
import type { ApplierPeers } from './applier.js';
import { type EtcdError, Errors } from './errors.js';
import { type Membership, decodeMemberContext } from './membership.js';

/** Why the membership refuses `cc`; undefined when it takes it. */
export function confChangeRefusal(cc: ConfChange, membership: Membership): EtcdError | undefined {
  switch (cc.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode:
      if (membership.isRemoved(cc.nodeId)) return Errors.memberNotFound;
      // adding a learner as a voter is its promotion
      if (membership.get(cc.nodeId)?.isLearner === false) return Errors.memberExist;
      return undefined;
    case ConfChangeType.RemoveNode:
    case ConfChangeType.UpdateNode:
      return membership.has(cc.nodeId) ? undefined : Errors.memberNotFound;
  }
  return undefined;
}

/** Applies a change the membership took; `removedSelf` runs when it removes this member. */
export function applyToMembership(cc: ConfChange, membership: Membership, peers: ApplierPeers, self: bigint, removedSelf: () => void): void {
  switch (cc.type) {
    case ConfChangeType.AddNode: {
      const member = decodeMemberContext(cc.context);
      if (membership.get(cc.nodeId)?.isLearner) membership.promote(cc.nodeId);
      else membership.add(member);
      peers.add(cc.nodeId, member.peerUrls);
      break;
    }
    case ConfChangeType.AddLearnerNode: {
      const member = decodeMemberContext(cc.context);
      membership.add(member);
      peers.add(cc.nodeId, member.peerUrls);
      break;
    }
    case ConfChangeType.RemoveNode:
      membership.remove(cc.nodeId);
      if (cc.nodeId === self) removedSelf();
      else peers.remove(cc.nodeId);
      break;
    case ConfChangeType.UpdateNode: {
      const urls = decodeMemberContext(cc.context).peerUrls;
      membership.updatePeerUrls(cc.nodeId, urls);
      peers.update(cc.nodeId, urls);
      break;
    }
  }
}
