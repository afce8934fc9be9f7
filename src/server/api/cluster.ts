// etcdserverpb.Cluster: the member list and membership changes (raft conf changes).

import type { ServiceImplementation } from '../grpc/call.js';
import { ConfChangeType } from '../../raftpb/types.js';
import { Errors } from '../errors.js';
import { computeMemberId } from '../ids.js';
import { type Member, encodeMemberContext } from '../membership.js';
import { type Int64, toBigInt, uint64 } from '../pb.js';
import { type ReconfigView, checkAddVoter, checkPromote, checkRemove } from '../reconfig-check.js';
import type { EtcdServer } from '../server.js';
import type { AuthGate } from '../auth/gate.js';
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
 * /v2/members API: both propose the same raft conf changes. `authorize` runs once the
 * request is known to be well formed (the gRPC service asks the auth gate for root).
 */
export function memberOps(server: EtcdServer, opts: ClusterOptions) {
  /** etcd's --strict-reconfig-check (on by default) before a change is proposed */
  const strict = (check: (view: ReconfigView) => void): void => {
    if (opts.strictReconfigCheck) check(server.reconfigView());
  };
  const noAuth = async (): Promise<void> => {};

  return {
    async add(urls: readonly string[], isLearner: boolean, authorize = noAuth): Promise<MemberChange & { member: Member }> {
      checkNotLearner(server);
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      await authorize();
      // etcd checks that quorum would stay started before the URLs (mayAddMember first)
      if (!isLearner) strict(checkAddVoter);
      server.membership.validateAdd(urls, isLearner);
      const id = computeMemberId(urls, opts.clusterToken, Date.now() / 1000);
      const member: Member = { id, name: '', peerUrls: [...urls], clientUrls: [], isLearner };
      const type = isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
      const members = await server.proposals.proposeConfChange(type, id, encodeMemberContext(member));
      return { member, members };
    },

    async remove(id: bigint, authorize = noAuth): Promise<MemberChange> {
      checkNotLearner(server);
      await authorize();
      server.membership.validateExisting(id);
      strict((view) => checkRemove(view, id));
      return { members: await server.proposals.proposeConfChange(ConfChangeType.RemoveNode, id, new Uint8Array(0)) };
    },

    async update(id: bigint, urls: readonly string[], authorize = noAuth): Promise<MemberChange> {
      checkNotLearner(server);
      const existing = server.membership.validateExisting(id);
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      await authorize();
      const updated: Member = { ...existing, peerUrls: [...urls] };
      return { members: await server.proposals.proposeConfChange(ConfChangeType.UpdateNode, id, encodeMemberContext(updated)) };
    },

    async promote(id: bigint, authorize = noAuth): Promise<void> {
      checkNotLearner(server);
      await authorize();
      const existing = server.membership.validateExisting(id);
      if (!existing.isLearner) throw Errors.memberNotLearner;
      strict(checkPromote);
      await server.leaderCalls.memberPromote(id);
      // answer once the promotion is visible here too
      const deadline = Date.now() + server.requestTimeoutMs();
      while (server.membership.get(id)?.isLearner === true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

export function clusterService(server: EtcdServer, headers: Headers, gate: AuthGate, opts: ClusterOptions): ServiceImplementation {
  const ops = memberOps(server, opts);
  return {
    MemberList: unary(async () => {
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),

    MemberAdd: unary(async (req: { peerURLs: string[]; isLearner: boolean }, call) => {
      const { member, members } = await ops.add(req.peerURLs ?? [], req.isLearner === true, () => gate.admin(call));
      return { header: headers.withoutRevision(), member: memberToPb(member), members: members.map(memberToPb) };
    }),

    MemberRemove: unary(async (req: { ID: Int64 }, call) => {
      const { members } = await ops.remove(toBigInt(req.ID, true), () => gate.admin(call));
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberUpdate: unary(async (req: { ID: Int64; peerURLs: string[] }, call) => {
      const { members } = await ops.update(toBigInt(req.ID, true), req.peerURLs ?? [], () => gate.admin(call));
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberPromote: unary(async (req: { ID: Int64 }, call) => {
      await ops.promote(toBigInt(req.ID, true), () => gate.admin(call));
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),
  };
}
