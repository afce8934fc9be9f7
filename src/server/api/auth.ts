// etcdserverpb.Auth as etcd 3.4 answers it while authentication is disabled and no user
// or role exists, which is always the case here: etcd-ts has no auth store yet. Clients
// that send credentials regardless (etcdctl --user, client libraries configured with a
// user) get Authenticate's "not enabled" and carry on without a token, as with etcd.
// Lookups of users and roles find none; what would create auth state (users, roles,
// enabling auth) answers Unimplemented rather than pretend it happened.

import { status as Code } from '@grpc/grpc-js';
import type { ServiceImplementation } from '../grpc/call.js';
import { EtcdError, Errors } from '../errors.js';
import type { EtcdServer } from '../server.js';
import { type Headers, unary } from './common.js';

const notImplemented = (what: string): EtcdError =>
  new EtcdError(Code.UNIMPLEMENTED, `etcd-ts: ${what} is not implemented yet (authentication is disabled)`);

export function authService(server: EtcdServer, headers: Headers): ServiceImplementation {
  /**
   * etcd answers every Auth call after raft (a proposal, or a linearizable read for
   * Authenticate): without a leader the call fails as any other request would.
   */
  const answer = <Req, Res>(fn: (req: Req) => Res) =>
    unary(async (req: Req) => {
      await server.linearizableReadNotify();
      return fn(req);
    });

  return {
    Authenticate: answer(() => {
      throw Errors.authNotEnabled;
    }),
    // enabling needs a root user, and none exists
    AuthEnable: answer(() => {
      throw Errors.rootUserNotExist;
    }),
    // already disabled: nothing to do
    AuthDisable: answer(() => ({ header: headers.make() })),

    UserAdd: answer((req: { name: string }) => {
      if (!req.name) throw Errors.userEmpty;
      throw notImplemented('adding users');
    }),
    UserList: answer(() => ({ header: headers.make(), users: [] })),
    UserGet: answer(() => {
      throw Errors.userNotFound;
    }),
    UserDelete: answer(() => {
      throw Errors.userNotFound;
    }),
    UserChangePassword: answer(() => {
      throw Errors.userNotFound;
    }),
    UserGrantRole: answer(() => {
      throw Errors.userNotFound;
    }),
    UserRevokeRole: answer(() => {
      throw Errors.userNotFound;
    }),

    RoleAdd: answer((req: { name: string }) => {
      if (!req.name) throw Errors.roleEmpty;
      throw notImplemented('adding roles');
    }),
    RoleList: answer(() => ({ header: headers.make(), roles: [] })),
    RoleGet: answer(() => {
      throw Errors.roleNotFound;
    }),
    RoleDelete: answer(() => {
      throw Errors.roleNotFound;
    }),
    RoleGrantPermission: answer(() => {
      throw Errors.roleNotFound;
    }),
    RoleRevokePermission: answer(() => {
      throw Errors.roleNotFound;
    }),
  };
}
