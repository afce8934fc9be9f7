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

export function clusterService(
  server: EtcdServer,
  headers: Headers,
  gate: AuthGate,
  opts: { clusterToken: string; strictReconfigCheck: boolean },
): ServiceImplementation {
  /** etcd's --strict-reconfig-check (on by default) before a change is proposed */
  const strict = (check: (view: ReconfigView) => void): void => {
    if (opts.strictReconfigCheck) check(server.reconfigView());
  };

  return {
    MemberList: unary(async () => {
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),

    MemberAdd: unary(async (req: { peerURLs: string[]; isLearner: boolean }, call) => {
      checkNotLearner(server);
      const urls = req.peerURLs ?? [];
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      await gate.admin(call);
      server.membership.validateAdd(urls, req.isLearner);
      if (!req.isLearner) strict(checkAddVoter);
      const id = computeMemberId(urls, opts.clusterToken, Date.now() / 1000);
      const member: Member = { id, name: '', peerUrls: urls, clientUrls: [], isLearner: req.isLearner === true };
      const type = req.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
      const members = await server.proposeConfChange(type, id, encodeMemberContext(member));
      return { header: headers.withoutRevision(), member: memberToPb(member), members: members.map(memberToPb) };
    }),

    MemberRemove: unary(async (req: { ID: Int64 }, call) => {
      checkNotLearner(server);
      await gate.admin(call);
      const id = toBigInt(req.ID, true);
      server.membership.validateExisting(id);
      strict((view) => checkRemove(view, id));
      const members = await server.proposeConfChange(ConfChangeType.RemoveNode, id, new Uint8Array(0));
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberUpdate: unary(async (req: { ID: Int64; peerURLs: string[] }, call) => {
      checkNotLearner(server);
      const id = toBigInt(req.ID, true);
      const existing = server.membership.validateExisting(id);
      const urls = req.peerURLs ?? [];
      if (urls.length === 0 || !validUrls(urls)) throw Errors.memberBadURLs;
      await gate.admin(call);
      const updated: Member = { ...existing, peerUrls: urls };
      const members = await server.proposeConfChange(ConfChangeType.UpdateNode, id, encodeMemberContext(updated));
      return { header: headers.withoutRevision(), members: members.map(memberToPb) };
    }),

    MemberPromote: unary(async (req: { ID: Int64 }, call) => {
      checkNotLearner(server);
      await gate.admin(call);
      const id = toBigInt(req.ID, true);
      const existing = server.membership.validateExisting(id);
      if (!existing.isLearner) throw Errors.memberNotLearner;
      strict(checkPromote);
      await server.promoteMember(id);
      return { header: headers.withoutRevision(), members: server.membership.list().map(memberToPb) };
    }),
  };
}
