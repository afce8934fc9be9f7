// etcdserverpb.Auth: every call goes through raft with the caller's credentials in the
// header, and is answered from what applying it returned (etcd's v3_server.go). Two
// things happen here first, off the apply path: passwords are hashed (the entry carries
// the hash, as etcd 3.5's do) and Authenticate checks the password with bcrypt.

import { Code } from '../grpc/codes.js';
import type { Logger } from 'pino';
import type { ServiceImplementation } from '../grpc/call.js';
import type { AuthResult } from '../auth/apply.js';
import type { AuthGate } from '../auth/gate.js';
import { JwtTokens } from '../auth/jwt-token.js';
import { tokenPrefix } from '../auth/simple-token.js';
import { type AuthStore, hashPassword } from '../auth/store.js';
import { EtcdError } from '../errors.js';
import type { EtcdServer } from '../server.js';
import { type Headers, checkNotLearner, unary } from './common.js';

export interface AuthServiceOptions {
  /** --bcrypt-cost */
  readonly bcryptCost: number;
  readonly log: Logger;
}

const permNotProvided = new EtcdError(Code.INVALID_ARGUMENT, 'etcdserver: permission is not provided');

interface PbPermission {
  permType: number;
  key: Buffer;
  range_end: Buffer;
}

/** The token an applied Authenticate gave: a simple token as it is, a JWT signed here. */
async function signed(tokens: AuthStore['tokens'], r: AuthResult): Promise<string> {
  if (r.kind === 'token') return r.token;
  if (r.kind !== 'jwt' || !(tokens instanceof JwtTokens)) return '';
  try {
    return await tokens.assign(r.username, r.revision);
  } catch (err) {
    // etcd has no gRPC code for its verify-only error: clients see Unknown and its words
    throw new EtcdError(Code.UNKNOWN, (err as Error).message);
  }
}

export function authService(server: EtcdServer, headers: Headers, gate: AuthGate, opts: AuthServiceOptions): ServiceImplementation {
  /** Proposes `req` as the caller; resolves with what applying it gave. */
  async function propose(call: Parameters<AuthGate['caller']>[0], req: Record<string, unknown>): Promise<AuthResult> {
    checkNotLearner(server);
    return server.proposeAs<AuthResult>(await gate.caller(call), req);
  }

  const done = () => ({ header: headers.make() });
  const names = (r: AuthResult) => (r.kind === 'names' ? r.names : []);

  return {
    AuthEnable: unary(async (_req: object, call) => {
      await propose(call, { auth_enable: {} });
      return done();
    }),

    AuthDisable: unary(async (_req: object, call) => {
      await propose(call, { auth_disable: {} });
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
        const r = await server.propose<AuthResult>({ authenticate: { name: req.name, simple_token: simpleToken } });
        if (checkedRevision === server.auth.revision) return { header: headers.make(), token: await signed(tokens, r) };
        opts.log.info({ 'user-name': req.name }, 'revision when password checked became stale; retrying');
      }
    }),

    UserAdd: unary(async (req: { name: string; password: string; options?: { no_password?: boolean } | null }, call) => {
      const noPassword = req.options?.no_password === true;
      // refuse a non-root caller before spending bcrypt time on its request
      await gate.admin(call);
      const hashedPassword = noPassword ? '' : await hashPassword(req.password, opts.bcryptCost);
      await propose(call, { auth_user_add: { name: req.name, options: { no_password: noPassword }, hashedPassword } });
      return done();
    }),

    UserGet: unary(async (req: { name: string }, call) => {
      const r = await propose(call, { auth_user_get: { name: req.name } });
      return { header: headers.make(), roles: r.kind === 'roles' ? r.roles : [] };
    }),

    UserList: unary(async (_req: object, call) => {
      const r = await propose(call, { auth_user_list: {} });
      return { header: headers.make(), users: names(r) };
    }),

    UserDelete: unary(async (req: { name: string }, call) => {
      await propose(call, { auth_user_delete: { name: req.name } });
      return done();
    }),

    UserChangePassword: unary(async (req: { name: string; password: string }, call) => {
      await gate.admin(call);
      const hashedPassword = await hashPassword(req.password, opts.bcryptCost);
      await propose(call, { auth_user_change_password: { name: req.name, hashedPassword } });
      return done();
    }),

    UserGrantRole: unary(async (req: { user: string; role: string }, call) => {
      await propose(call, { auth_user_grant_role: { user: req.user, role: req.role } });
      return done();
    }),

    UserRevokeRole: unary(async (req: { name: string; role: string }, call) => {
      await propose(call, { auth_user_revoke_role: { name: req.name, role: req.role } });
      return done();
    }),

    RoleAdd: unary(async (req: { name: string }, call) => {
      await propose(call, { auth_role_add: { name: req.name } });
      return done();
    }),

    RoleGet: unary(async (req: { role: string }, call) => {
      const r = await propose(call, { auth_role_get: { role: req.role } });
      const perm = r.kind === 'perms' ? r.perms.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd })) : [];
      return { header: headers.make(), perm };
    }),

    RoleList: unary(async (_req: object, call) => {
      const r = await propose(call, { auth_role_list: {} });
      return { header: headers.make(), roles: names(r) };
    }),

    RoleDelete: unary(async (req: { role: string }, call) => {
      await propose(call, { auth_role_delete: { role: req.role } });
      return done();
    }),

    RoleGrantPermission: unary(async (req: { name: string; perm?: PbPermission | null }, call) => {
      // etcd dereferences the permission unchecked (and crashes); refuse it here instead
      if (!req.perm) throw permNotProvided;
      await propose(call, { auth_role_grant_permission: { name: req.name, perm: req.perm } });
      return done();
    }),

    RoleRevokePermission: unary(async (req: { role: string; key: Buffer; range_end: Buffer }, call) => {
      await propose(call, { auth_role_revoke_permission: { role: req.role, key: req.key, range_end: req.range_end } });
      return done();
    }),
  };
}
