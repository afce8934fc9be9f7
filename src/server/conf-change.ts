// What a committed conf change does to the membership and the peer transport (etcd's
// applyConfChange, after ValidateConfigurationChange). A change the membership refuses
// still goes through raft's conf change path as a no-op, as in etcd: raft's
// configuration and the membership must agree on every member.

import { ConfChangeType, type ConfChange } from '../raftpb/types.js';
import type { ApplierPeers } from './applier.js';
import { type EtcdError, Errors } from './errors.js';
import { idHex } from './ids.js';
import { type Membership, decodeMemberContext, raftAttributesJson } from './membership.js';
import type { V2Store } from './v2store/index.js';

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

const MEMBERS_DIR = '/0/members';
const REMOVED_MEMBERS_DIR = '/0/removed_members';

/**
 * What etcd 3.4's membership also writes to its v2 store's "/0" directory for a change it
 * took: each write is one step of the store's index, which v2 clients see (X-Etcd-Index,
 * a node's modifiedIndex) and which etcd and etcd-ts members of one cluster must count
 * alike. A data dir from an etcd-ts that did not record these lacks the nodes: a write
 * then creates what an update would have found, one step all the same.
 */
export function recordInV2Store(cc: ConfChange, membership: Membership, v2store: V2Store): void {
  const memberDir = `${MEMBERS_DIR}/${idHex(cc.nodeId)}`;
  switch (cc.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode:
    case ConfChangeType.UpdateNode: {
      // an add (create), a learner's promotion or new peer URLs (update)
      const m = membership.get(cc.nodeId);
      if (m === undefined) return;
      const p = `${memberDir}/raftAttributes`;
      const value = raftAttributesJson(m.peerUrls, m.isLearner);
      if (v2store.exists(p)) v2store.update(p, value);
      else v2store.create(p, false, value, false);
      break;
    }
    case ConfChangeType.RemoveNode: {
      if (v2store.exists(memberDir)) v2store.delete(memberDir, true, true);
      const p = `${REMOVED_MEMBERS_DIR}/${idHex(cc.nodeId)}`;
      if (!v2store.exists(p)) v2store.create(p, false, '', false);
      break;
    }
  }
}
