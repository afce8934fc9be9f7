// etcdserverpb.Cluster: the member list and membership changes (raft conf changes).

import type { ServiceImplementation } from '../grpc/call.js';
import { ConfChangeType } from '../../raftpb/types.js';
import { Errors } from '../errors.js';
import { computeMemberId } from '../ids.js';
import { type Member, encodeMemberContext } from '../membership.js';
import { type Int64, toBigInt, uint64 } from '../pb.js';
import type { EtcdServer } from '../server.js';
import { type Headers, checkNotLearner, unary } from './common.js';

function memberToPb(m: Member): object {
  return {
    ID: uint64(m.id),
    name: m.name,
    peerURLs: [...m.peerUrls],
    clientURLs: [...m.clientUrls],
    isLearner: m.isLearner,
  };
}

function validUrls(urls: readonly string[]): boolean {
  return urls.every((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'http:' || p.protocol === 'https:') && p.port !== '' && (p.pathname === '/' || p.pathname === '');
    } catch {
      return false;
    }
  });
}

export interface ClusterOptions {
  clusterToken: string;
  strictReconfigCheck: boolean;
}

/** A membership change's outcome: the members once it applied here. */
export interface MemberChange {
  members: Member[];
}

/**
 * Membership changes with etcd's checks, shared by the gRPC Cluster service and the v2
 * /v2/members API: both propose the same raft conf changes.
 */
export function memberOps(server: EtcdServer, opts: ClusterOptions) {
  const started = (m: Member) => m.name !== '';

  /** etcd's strict reconfiguration check: adding a voter must not leave quorum unstarted. */
  function checkCanAddVoter(): void {
    if (!opts.strictReconfigCheck) return;
    const voters = server.membership.voters();
    const nmembers = voters.length + 1;
    const nstarted = voters.filter(started).length;
    // Growing a one-member cluster to two is how a restored cluster is rebuilt: allowed.
    if (nstarted === 1 && nmembers === 2) return;
    if (nstarted < Math.floor(nmembers / 2) + 1) throw Errors.memberNotEnoughStarted;
  }

  function checkCanRemove(id: bigint): void {
    if (!opts.strictReconfigCheck) return;
    const voters = server.membership.voters();
    const target = voters.find((m) => m.id === id);
    if (!target) return; // removing a learner never risks quorum
    const remaining = voters.filter((m) => m.id !== id);
    const nstarted = remaining.filter(started).length;
    if (nstarted < Math.floor(remaining.length / 2) + 1) throw Errors.memberNotEnoughStarted;
  }

  return {
    async add(urls: readonly string[], isLearner: boolean): Promise<MemberChange & { member: Member }> {
      checkNotLearner(server);
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      // etcd checks that quorum would stay started before anything else (mayAddMember)
      if (!isLearner) checkCanAddVoter();
      server.membership.validateAdd(urls, isLearner);
      const id = computeMemberId(urls, opts.clusterToken, Date.now() / 1000);
      const member: Member = { id, name: '', peerUrls: [...urls], clientUrls: [], isLearner };
      const type = isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
      const members = await server.proposeConfChange(type, id, encodeMemberContext(member));
      return { member, members };
    },

    async remove(id: bigint): Promise<MemberChange> {
      checkNotLearner(server);
      server.membership.validateExisting(id);
      checkCanRemove(id);
      return { members: await server.proposeConfChange(ConfChangeType.RemoveNode, id, new Uint8Array(0)) };
    },

    async update(id: bigint, urls: readonly string[]): Promise<MemberChange> {
      checkNotLearner(server);
      const existing = server.membership.validateExisting(id);
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      const updated: Member = { ...existing, peerUrls: [...urls] };
      return { members: await server.proposeConfChange(ConfChangeType.UpdateNode, id, encodeMemberContext(updated)) };
    },
  };
}

export function clusterService(server: EtcdServer, headers: Headers, opts: ClusterOptions): ServiceImplementation {
  const ops = memberOps(server, opts);
  return {
    MemberList: unary(async () => {
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),

    MemberAdd: unary(async (req: { peerURLs: string[]; isLearner: boolean }) => {
      const { member, members } = await ops.add(req.peerURLs ?? [], req.isLearner === true);
      return { header: headers.withoutRevision(), member: memberToPb(member), members: members.map(memberToPb) };
    }),

    MemberRemove: unary(async (req: { ID: Int64 }) => {
      const { members } = await ops.remove(toBigInt(req.ID, true));
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberUpdate: unary(async (req: { ID: Int64; peerURLs: string[] }) => {
      const { members } = await ops.update(toBigInt(req.ID, true), req.peerURLs ?? []);
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberPromote: unary(async (req: { ID: Int64 }) => {
      checkNotLearner(server);
      const id = toBigInt(req.ID, true);
      const existing = server.membership.validateExisting(id);
      if (!existing.isLearner) throw Errors.memberNotLearner;
      await server.promoteMember(id);
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),
  };
}
