// etcdserverpb.Auth: every call goes through raft with the caller's credentials in the
// header, and is answered from what applying it returned (etcd's v3_server.go). Two
// things happen here first, off the apply path: passwords are hashed (the entry carries
// the hash, as etcd 3.5's do) and Authenticate checks the password with bcrypt.

import { Code } from '../grpc/codes.js';
import type { Logger } from 'pino';
import type { ServiceImplementation } from '../grpc/call.js';
import type { AuthGate } from '../auth/gate.js';
import { JwtTokens } from '../auth/jwt-token.js';
import { tokenPrefix } from '../auth/simple-token.js';
import { type AssignedToken, type AuthStore, hashPassword } from '../auth/store.js';
import { EtcdError } from '../errors.js';
import type { PbPermission, RaftRequest, RequestKind, ResultOf } from '../raft-request.js';
import type { EtcdServer } from '../server.js';
import { type Headers, checkNotLearner, unary } from './common.js';

export interface AuthServiceOptions {
  /** --bcrypt-cost */
  readonly bcryptCost: number;
  readonly log: Logger;
}

const permNotProvided = new EtcdError(Code.INVALID_ARGUMENT, 'etcdserver: permission is not provided');

/** The token an applied Authenticate gave: a simple token as it is, a JWT signed here. */
async function signed(tokens: AuthStore['tokens'], r: AssignedToken): Promise<string> {
  if (r.kind === 'token') return r.token;
  if (!(tokens instanceof JwtTokens)) return '';
  try {
    return await tokens.assign(r.username, r.revision);
  } catch (err) {
    // etcd has no gRPC code for its verify-only error: clients see Unknown and its words
    throw new EtcdError(Code.UNKNOWN, (err as Error).message);
  }
}

export function authService(server: EtcdServer, headers: Headers, gate: AuthGate, opts: AuthServiceOptions): ServiceImplementation {
  /** Proposes `request` as the caller; resolves with what applying it gave. */
  async function propose<K extends RequestKind>(call: Parameters<AuthGate['caller']>[0], request: RaftRequest<K>): Promise<ResultOf<K>> {
    checkNotLearner(server);
    return server.proposals.propose(request, await gate.caller(call));
  }

  const done = () => ({ header: headers.make() });

  return {
    AuthEnable: unary(async (req: object, call) => {
      await propose(call, { kind: 'authEnable', body: req });
      return done();
    }),

    AuthDisable: unary(async (req: object, call) => {
      await propose(call, { kind: 'authDisable', body: req });
      return done();
    }),

    Authenticate: unary(async (req: { name: string; password: string }) => {
      checkNotLearner(server);
      await server.linearizableReadNotify();
      // The password was checked against the user as of one auth revision; if the store
      // moved on before the token was assigned (say, the password changed), check again.
      const tokens = server.auth.tokens;
      for (;;) {
        const checkedRevision = await server.auth.checkPassword(req.name, req.password);
        // a JWT needs no prefix: the entry carries none, as etcd's
        const simpleToken = tokens instanceof JwtTokens ? '' : tokenPrefix();
        const r = await server.proposals.propose({ kind: 'authenticate', body: { name: req.name, simple_token: simpleToken } });
        if (checkedRevision === server.auth.revision) return { header: headers.make(), token: await signed(tokens, r) };
        opts.log.info({ 'user-name': req.name }, 'revision when password checked became stale; retrying');
      }
    }),

    UserAdd: unary(async (req: { name: string; password: string; options?: { no_password?: boolean } | null }, call) => {
      const noPassword = req.options?.no_password === true;
      // refuse a non-root caller before spending bcrypt time on its request
      await gate.admin(call);
      const hashedPassword = noPassword ? '' : await hashPassword(req.password, opts.bcryptCost);
      // a new message, never the client's: the entry carries the hash and no password
      await propose(call, { kind: 'userAdd', body: { name: req.name, options: { no_password: noPassword }, hashedPassword } });
      return done();
    }),

    UserGet: unary(async (req: { name: string }, call) => {
      const roles = await propose(call, { kind: 'userGet', body: req });
      return { header: headers.make(), roles };
    }),

    UserList: unary(async (req: object, call) => {
      const users = await propose(call, { kind: 'userList', body: req });
      return { header: headers.make(), users };
    }),

    UserDelete: unary(async (req: { name: string }, call) => {
      await propose(call, { kind: 'userDelete', body: req });
      return done();
    }),

    UserChangePassword: unary(async (req: { name: string; password: string }, call) => {
      await gate.admin(call);
      const hashedPassword = await hashPassword(req.password, opts.bcryptCost);
      await propose(call, { kind: 'userChangePassword', body: { name: req.name, hashedPassword } });
      return done();
    }),

    UserGrantRole: unary(async (req: { user: string; role: string }, call) => {
      await propose(call, { kind: 'userGrantRole', body: req });
      return done();
    }),

    UserRevokeRole: unary(async (req: { name: string; role: string }, call) => {
      await propose(call, { kind: 'userRevokeRole', body: req });
      return done();
    }),

    RoleAdd: unary(async (req: { name: string }, call) => {
      await propose(call, { kind: 'roleAdd', body: req });
      return done();
    }),

    RoleGet: unary(async (req: { role: string }, call) => {
      const perms = await propose(call, { kind: 'roleGet', body: req });
      const perm = perms.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd }));
      return { header: headers.make(), perm };
    }),

    RoleList: unary(async (req: object, call) => {
      const roles = await propose(call, { kind: 'roleList', body: req });
      return { header: headers.make(), roles };
    }),

    RoleDelete: unary(async (req: { role: string }, call) => {
      await propose(call, { kind: 'roleDelete', body: req });
      return done();
    }),

    RoleGrantPermission: unary(async (req: { name: string; perm?: PbPermission | null }, call) => {
      // etcd dereferences the permission unchecked (and crashes); refuse it here instead
      if (!req.perm) throw permNotProvided;
      await propose(call, { kind: 'roleGrantPermission', body: req });
      return done();
    }),

    RoleRevokePermission: unary(async (req: { role: string; key: Buffer; range_end: Buffer }, call) => {
      await propose(call, { kind: 'roleRevokePermission', body: req });
      return done();
    }),
  };
}
