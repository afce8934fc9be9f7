// Applying the auth requests of the raft log (etcd's applierV3 auth methods, with
// authApplierV3's admin check in front): what each means once raft has ordered it.
// Every member runs this at the same index on the same auth state, so all reach the
// same answer.

import { type Int64, toNumber } from '../pb.js';
import type { RequestBodies, RequestResults } from '../raft-request.js';
import type { PermType } from './range-perms.js';
import type { AuthInfo, AuthStore } from './store.js';

/** The request header's credentials: absent when the proposer had none. */
export function authInfoOf(header: { username?: string | null; auth_revision?: Int64 } | null | undefined): AuthInfo | undefined {
  if (!header || !header.username) return undefined;
  return { username: header.username, revision: toNumber(header.auth_revision) };
}

const EMPTY = Buffer.alloc(0);

type Who = AuthInfo | undefined;

/**
 * One method per auth request kind. Changes to auth, and listing everyone, need the
 * root role (etcd's needAdminPermission); reading a user or a role is also allowed to
 * that user and to the role's members.
 */
export class AuthApplier {
  constructor(private readonly auth: AuthStore) {}

  authEnable(_: RequestBodies['authEnable'], who: Who): RequestResults['authEnable'] {
    this.auth.checkAdmin(who);
    this.auth.enable();
    return undefined;
  }

  authDisable(_: RequestBodies['authDisable'], who: Who): RequestResults['authDisable'] {
    this.auth.checkAdmin(who);
    this.auth.disable();
    return undefined;
  }

  /** the password was checked by the member that proposed this; the token's index is the entry's */
  authenticate(r: RequestBodies['authenticate'], index: number): RequestResults['authenticate'] {
    return this.auth.authenticate(r.name, r.simple_token, index);
  }

  userAdd(r: RequestBodies['userAdd'], who: Who): RequestResults['userAdd'] {
    this.auth.checkAdmin(who);
    this.auth.userAdd(r.name, Buffer.from(r.hashedPassword ?? ''), r.options?.no_password === true);
    return undefined;
  }

  userDelete(r: RequestBodies['userDelete'], who: Who): RequestResults['userDelete'] {
    this.auth.checkAdmin(who);
    this.auth.userDelete(r.name);
    return undefined;
  }

  userGet(r: RequestBodies['userGet'], who: Who): RequestResults['userGet'] {
    if (who?.username !== r.name) this.auth.checkAdmin(who);
    return this.auth.userGet(r.name);
  }

  userChangePassword(r: RequestBodies['userChangePassword'], who: Who): RequestResults['userChangePassword'] {
    this.auth.checkAdmin(who);
    this.auth.userChangePassword(r.name, Buffer.from(r.hashedPassword ?? ''));
    return undefined;
  }

  userGrantRole(r: RequestBodies['userGrantRole'], who: Who): RequestResults['userGrantRole'] {
    this.auth.checkAdmin(who);
    this.auth.userGrantRole(r.user, r.role);
    return undefined;
  }

  userRevokeRole(r: RequestBodies['userRevokeRole'], who: Who): RequestResults['userRevokeRole'] {
    this.auth.checkAdmin(who);
    this.auth.userRevokeRole(r.name, r.role);
    return undefined;
  }

  userList(_: RequestBodies['userList'], who: Who): RequestResults['userList'] {
    this.auth.checkAdmin(who);
    return this.auth.userList();
  }

  roleList(_: RequestBodies['roleList'], who: Who): RequestResults['roleList'] {
    this.auth.checkAdmin(who);
    return this.auth.roleList();
  }

  roleAdd(r: RequestBodies['roleAdd'], who: Who): RequestResults['roleAdd'] {
    this.auth.checkAdmin(who);
    this.auth.roleAdd(r.name);
    return undefined;
  }

  roleDelete(r: RequestBodies['roleDelete'], who: Who): RequestResults['roleDelete'] {
    this.auth.checkAdmin(who);
    this.auth.roleDelete(r.role);
    return undefined;
  }

  roleGet(r: RequestBodies['roleGet'], who: Who): RequestResults['roleGet'] {
    if (!this.auth.hasRole(who?.username ?? '', r.role)) this.auth.checkAdmin(who);
    return this.auth.roleGet(r.role);
  }

  roleGrantPermission(r: RequestBodies['roleGrantPermission'], who: Who): RequestResults['roleGrantPermission'] {
    this.auth.checkAdmin(who);
    const perm = r.perm;
    this.auth.roleGrantPermission(r.name, {
      permType: (perm?.permType ?? 0) as PermType,
      key: Buffer.from(perm?.key ?? EMPTY),
      rangeEnd: Buffer.from(perm?.range_end ?? EMPTY),
    });
    return undefined;
  }

  roleRevokePermission(r: RequestBodies['roleRevokePermission'], who: Who): RequestResults['roleRevokePermission'] {
    this.auth.checkAdmin(who);
    this.auth.roleRevokePermission(r.role, Buffer.from(r.key ?? EMPTY), Buffer.from(r.range_end ?? EMPTY));
    return undefined;
  }
}
