// Applying the auth fields of an InternalRaftRequest (etcd's apply.go auth cases and
// authApplierV3's admin check): what each means once raft has ordered it. Every member
// runs this at the same index on the same auth state, so all reach the same answer.

import { type Int64, toNumber } from '../pb.js';
import type { PermType } from './range-perms.js';
import type { AssignedToken, AuthInfo, AuthStore } from './store.js';

type Name = { name: string };

/** The auth fields of a decoded InternalRaftRequest (protobufjs' view). */
export interface AuthRequests {
  auth_enable?: object | null;
  auth_disable?: object | null;
  authenticate?: { name: string; simple_token: string } | null;
  auth_user_add?: { name: string; hashedPassword: string; options?: { no_password?: boolean } | null } | null;
  auth_user_delete?: Name | null;
  auth_user_get?: Name | null;
  auth_user_change_password?: { name: string; hashedPassword: string } | null;
  auth_user_grant_role?: { user: string; role: string } | null;
  auth_user_revoke_role?: { name: string; role: string } | null;
  auth_user_list?: object | null;
  auth_role_list?: object | null;
  auth_role_add?: Name | null;
  auth_role_delete?: { role: string } | null;
  auth_role_get?: { role: string } | null;
  auth_role_grant_permission?: { name: string; perm?: { permType?: number; key?: Buffer; range_end?: Buffer } | null } | null;
  auth_role_revoke_permission?: { role: string; key: Buffer; range_end: Buffer } | null;
}

/** The request header's credentials: absent when the proposer had none. */
export function authInfoOf(header: { username?: string; auth_revision?: Int64 } | null | undefined): AuthInfo | undefined {
  if (!header || !header.username) return undefined;
  return { username: header.username, revision: toNumber(header.auth_revision) };
}

/** etcd's needAdminPermission: changes to auth and listing everyone need the root role. */
function needsAdmin(r: AuthRequests): boolean {
  return Boolean(
    r.auth_enable ||
      r.auth_disable ||
      r.auth_user_add ||
      r.auth_user_delete ||
      r.auth_user_change_password ||
      r.auth_user_grant_role ||
      r.auth_user_revoke_role ||
      r.auth_role_add ||
      r.auth_role_grant_permission ||
      r.auth_role_revoke_permission ||
      r.auth_role_delete ||
      r.auth_user_list ||
      r.auth_role_list,
  );
}

export type AuthResult =
  | { kind: 'none' }
  | AssignedToken
  | { kind: 'names'; names: string[] }
  | { kind: 'roles'; roles: readonly string[] }
  | { kind: 'perms'; perms: ReturnType<AuthStore['roleGet']> };

const NONE: AuthResult = { kind: 'none' };
const EMPTY = Buffer.alloc(0);

/** Applies the request's auth field; undefined when it carries none. */
export function applyAuth(auth: AuthStore, r: AuthRequests, who: AuthInfo | undefined, index: number): AuthResult | undefined {
  if (needsAdmin(r)) auth.checkAdmin(who);
  if (r.authenticate) return auth.authenticate(r.authenticate.name, r.authenticate.simple_token, index);
  if (r.auth_user_get) {
    // anyone may read their own user; others' need root
    if (who?.username !== r.auth_user_get.name) auth.checkAdmin(who);
    return { kind: 'roles', roles: auth.userGet(r.auth_user_get.name) };
  }
  if (r.auth_role_get) {
    // a role's own members may read it
    if (!auth.hasRole(who?.username ?? '', r.auth_role_get.role)) auth.checkAdmin(who);
    return { kind: 'perms', perms: auth.roleGet(r.auth_role_get.role) };
  }
  if (r.auth_user_list) return { kind: 'names', names: auth.userList() };
  if (r.auth_role_list) return { kind: 'names', names: auth.roleList() };
  return applyChange(auth, r) ? NONE : undefined;
}

/** Applies a change to users, roles or the enabled flag; false when the request holds none. */
function applyChange(auth: AuthStore, r: AuthRequests): boolean {
  if (r.auth_enable) auth.enable();
  else if (r.auth_disable) auth.disable();
  else if (r.auth_user_add) {
    const noPassword = r.auth_user_add.options?.no_password === true;
    auth.userAdd(r.auth_user_add.name, Buffer.from(r.auth_user_add.hashedPassword ?? ''), noPassword);
  } else if (r.auth_user_delete) auth.userDelete(r.auth_user_delete.name);
  else if (r.auth_user_change_password) {
    auth.userChangePassword(r.auth_user_change_password.name, Buffer.from(r.auth_user_change_password.hashedPassword ?? ''));
  } else if (r.auth_user_grant_role) auth.userGrantRole(r.auth_user_grant_role.user, r.auth_user_grant_role.role);
  else if (r.auth_user_revoke_role) auth.userRevokeRole(r.auth_user_revoke_role.name, r.auth_user_revoke_role.role);
  else if (r.auth_role_add) auth.roleAdd(r.auth_role_add.name);
  else if (r.auth_role_delete) auth.roleDelete(r.auth_role_delete.role);
  else if (r.auth_role_grant_permission) {
    const { name, perm } = r.auth_role_grant_permission;
    auth.roleGrantPermission(name, {
      permType: (perm?.permType ?? 0) as PermType,
      key: Buffer.from(perm?.key ?? EMPTY),
      rangeEnd: Buffer.from(perm?.range_end ?? EMPTY),
    });
  } else if (r.auth_role_revoke_permission) {
    const { role, key, range_end } = r.auth_role_revoke_permission;
    auth.roleRevokePermission(role, Buffer.from(key ?? EMPTY), Buffer.from(range_end ?? EMPTY));
  } else return false;
  return true;
}
