// The auth store (etcd's auth/store.go): users, roles, the enabled flag and the auth
// revision. Changes arrive only through applied raft entries, so every member holds the
// same state at the same index; each change is written into the MVCC store's LevelDB
// batch (etcd's auth, authUsers and authRoles buckets), so restarts and leader
// snapshots carry it. Reads and permission checks answer from memory.

import type { Logger } from 'pino';
import type { MvccStore } from '../../mvcc/index.js';
import { Errors } from '../errors.js';
import { type } from '../pb.js';
import { bcryptCompare, bcryptHash } from './bcrypt-pool.js';
import { type Permission, type PermType, RangePermissions } from './range-perms.js';
import { JwtTokens } from './jwt-token.js';
import type { SimpleTokens } from './simple-token.js';
import { VerifiedPasswords } from './verified-passwords.js';

/** User and role names are keys of etcd's authUsers/authRoles buckets: bbolt's MaxKeySize. */
const MAX_NAME_BYTES = 32_768;

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

/** Who a request runs as: a user and the auth revision their credentials were checked at. */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

/** What an applied Authenticate gives: a simple token, or the claims of a JWT still to sign. */
export type AssignedToken = { readonly kind: 'token'; readonly token: string } | { readonly kind: 'jwt'; readonly username: string; readonly revision: number };

export interface User {
  readonly name: string;
  /** bcrypt hash; empty for a user added with no password */
  readonly password: Buffer;
  /** sorted, as etcd keeps them */
  readonly roles: readonly string[];
  readonly noPassword: boolean;
}

export interface Role {
  readonly name: string;
  /** sorted by key, as etcd keeps them */
  readonly perms: readonly Permission[];
}

const UserPb = type('authpb.User');
const RolePb = type('authpb.Role');

const ENABLED_KEY = Buffer.from('authEnabled');
const REVISION_KEY = Buffer.from('authRevision');

/** Where auth records go: the current MVCC store (a leader snapshot may replace it). */
export type AuthRecords = Pick<MvccStore, 'putAuthRecord' | 'deleteAuthRecord'>;

/** The stored records, read when a store is opened. */
export interface AuthState {
  enabled: boolean;
  revision: number;
  users: User[];
  roles: Role[];
}

export async function readAuthState(store: MvccStore): Promise<AuthState> {
  let enabled = false;
  let revision = 0;
  for (const [k, v] of await store.authRecords('auth')) {
    if (k.equals(ENABLED_KEY)) enabled = v.length === 1 && v[0] === 1;
    else if (k.equals(REVISION_KEY) && v.length === 8) revision = Number(v.readBigUint64BE(0));
  }
  const users = (await store.authRecords('authUsers')).map(([, v]) => decodeUser(v));
  const roles = (await store.authRecords('authRoles')).map(([, v]) => decodeRole(v));
  return { enabled, revision, users, roles };
}

function decodeUser(b: Buffer): User {
  const u = UserPb.decode(b) as unknown as { name: Buffer; password: Buffer; roles: string[]; options?: { no_password?: boolean } | null };
  return { name: u.name.toString(), password: Buffer.from(u.password), roles: u.roles ?? [], noPassword: u.options?.no_password === true };
}

function encodeUser(u: User): Buffer {
  const msg = { name: Buffer.from(u.name), password: u.password, roles: u.roles, options: { no_password: u.noPassword } };
  return Buffer.from(UserPb.encode(msg).finish());
}

function decodeRole(b: Buffer): Role {
  const r = RolePb.decode(b) as unknown as { name: Buffer; keyPermission: Array<{ permType: number; key: Buffer; range_end: Buffer }> };
  const perms = (r.keyPermission ?? []).map((p) => ({
    permType: (p.permType ?? 0) as PermType,
    key: Buffer.from(p.key ?? []),
    rangeEnd: Buffer.from(p.range_end ?? []),
  }));
  return { name: r.name.toString(), perms };
}

function encodeRole(r: Role): Buffer {
  const keyPermission = r.perms.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd }));
  return Buffer.from(RolePb.encode({ name: Buffer.from(r.name), keyPermission }).finish());
}

/** Names in the order etcd's buckets list them: by their bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export class AuthStore {
  private enabledFlag = false;
  private rev = 0;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  /** per-user merged permissions, rebuilt on every change that may alter them */
  private perms = new Map<string, RangePermissions>();
  private readonly verified = new VerifiedPasswords();

  constructor(
    private readonly records: () => AuthRecords,
    readonly tokens: SimpleTokens | JwtTokens,
    private readonly log: Logger,
  ) {}

  /** Takes the state stored in a (re)opened store; a store that never held auth starts at revision 1, as etcd's. */
  restore(state: AuthState): void {
    this.users.clear();
    this.roles.clear();
    for (const u of state.users) this.users.set(u.name, u);
    for (const r of state.roles) this.roles.set(r.name, r);
    this.rev = Math.max(1, state.revision);
    this.enabledFlag = state.enabled;
    if (state.enabled) this.tokens.enable();
    else this.tokens.disable();
    this.refreshPermissions();
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.rev;
  }

  // ------------------------------------------------------------ checks

  user(name: string): User | undefined {
    return this.users.get(name);
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) === true;
  }

  /** etcd's IsRangePermitted / IsPutPermitted / IsDeleteRangePermitted. */
  checkKeys(who: AuthInfo | undefined, kind: 'read' | 'write', key: Buffer, rangeEnd: Buffer): void {
    if (!this.enabledFlag) return;
    if (who === undefined || who.revision === 0) throw Errors.userEmpty;
    if (who.revision < this.rev) {
      this.log.warn({ 'current node auth revision': this.rev, 'request auth revision': who.revision, 'request key': key.toString() }, 'request auth revision is less than current node auth revision');
      throw Errors.authOldRevision;
    }
    const user = this.users.get(who.username);
    if (user === undefined) throw Errors.permissionDenied;
    if (user.roles.includes(ROOT_ROLE)) return;
    if (this.perms.get(who.username)?.permits(kind, key, rangeEnd) !== true) throw Errors.permissionDenied;
  }

  /** etcd's IsAdminPermitted: the user must have the root role. */
  checkAdmin(who: AuthInfo | undefined): void {
    if (!this.enabledFlag) return;
    if (who === undefined || who.username === '') throw Errors.userEmpty;
    const user = this.users.get(who.username);
    if (user === undefined) throw Errors.userNotFound;
    if (!user.roles.includes(ROOT_ROLE)) throw Errors.permissionDenied;
  }

  /**
   * Checks a password (in the API layer: bcrypt is slow and must stay off the apply
   * path); resolves with the auth revision the user was read at.
   */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this.enabledFlag) throw Errors.authNotEnabled;
    const user = this.users.get(name);
    if (user === undefined) throw Errors.authFailed;
    if (user.noPassword) throw Errors.noPasswordUser;
    const revision = this.rev;
    if (this.verified.has(user.password, password)) return revision;
    const matches = await bcryptCompare(password, user.password.toString());
    if (!matches) {
      this.log.info({ 'user-name': name }, 'invalid password');
      throw Errors.authFailed;
    }
    this.verified.add(user.password, password);
    return revision;
  }

  // ------------------------------------------------------------ applied changes

  enable(): void {
    if (this.enabledFlag) {
      this.log.info('authentication is already enabled; ignored auth enable request');
      return;
    }
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw Errors.rootUserNotExist;
    if (!root.roles.includes(ROOT_ROLE)) throw Errors.rootRoleNotExist;
    this.records().putAuthRecord('auth', ENABLED_KEY, Buffer.of(1));
    this.enabledFlag = true;
    this.tokens.enable();
    this.log.info('enabled authentication');
  }

  disable(): void {
    if (!this.enabledFlag) return;
    this.records().putAuthRecord('auth', ENABLED_KEY, Buffer.of(0));
    this.commitRevision();
    this.enabledFlag = false;
    this.tokens.disable();
    this.log.info('disabled authentication');
  }

  /**
   * Applies an Authenticate entry: every member learns a simple token; a JWT's claims are
   * fixed here (user and auth revision) and signed by the member that answers the client.
   */
  authenticate(name: string, prefix: string, index: number): AssignedToken {
    if (!this.enabledFlag) throw Errors.authNotEnabled;
    const user = this.users.get(name);
    if (user === undefined || user.noPassword) throw Errors.authFailed;
    if (this.tokens instanceof JwtTokens) return { kind: 'jwt', username: name, revision: this.rev };
    return { kind: 'token', token: this.tokens.assign(name, prefix, index) };
  }

  userAdd(name: string, hashedPassword: Buffer, noPassword: boolean): void {
    if (name === '') throw Errors.userEmpty;
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw Errors.userTooLong;
    if (this.users.has(name)) throw Errors.userAlreadyExist;
    this.putUser({ name, password: noPassword ? Buffer.alloc(0) : hashedPassword, roles: [], noPassword });
    this.changed();
    this.log.info({ 'user-name': name }, 'added a user');
  }

  userDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_USER) throw Errors.invalidAuthMgmt;
    const user = this.existingUser(name);
    this.users.delete(name);
    this.records().deleteAuthRecord('authUsers', Buffer.from(name));
    this.changed();
    this.tokens.invalidateUser(name);
    this.log.info({ 'user-name': name, 'user-roles': user.roles }, 'deleted a user');
  }

  userChangePassword(name: string, hashedPassword: Buffer): void {
    const user = this.existingUser(name);
    this.putUser({ ...user, password: hashedPassword });
    this.changed();
    this.tokens.invalidateUser(name);
    this.log.info({ 'user-name': name, 'user-roles': user.roles }, 'changed a password of a user');
  }

  userGrantRole(name: string, role: string): void {
    const user = this.existingUser(name);
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw Errors.roleNotFound;
    if (user.roles.includes(role)) {
      this.log.warn({ 'user-name': name, 'user-roles': user.roles, 'duplicate-role-name': role }, 'ignored grant role request to a user');
      return;
    }
    const roles = [...user.roles, role].sort(byteOrder);
    this.putUser({ ...user, roles });
    this.changed();
    this.log.info({ 'user-name': name, 'user-roles': roles, 'added-role-name': role }, 'granted a role to a user');
  }

  userRevokeRole(name: string, role: string): void {
    if (this.enabledFlag && name === ROOT_USER && role === ROOT_ROLE) throw Errors.invalidAuthMgmt;
    const user = this.existingUser(name);
    const roles = user.roles.filter((r) => r !== role);
    if (roles.length === user.roles.length) throw Errors.roleNotGranted;
    this.putUser({ ...user, roles });
    this.changed();
    this.log.info({ 'user-name': name, 'old-user-roles': user.roles, 'new-user-roles': roles, 'revoked-role-name': role }, 'revoked a role from a user');
  }

  userGet(name: string): readonly string[] {
    return this.existingUser(name).roles;
  }

  userList(): string[] {
    return [...this.users.keys()].sort(byteOrder);
  }

  roleAdd(name: string): void {
    if (name === '') throw Errors.roleEmpty;
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw Errors.roleTooLong;
    if (this.roles.has(name)) throw Errors.roleAlreadyExist;
    this.putRole({ name, perms: [] });
    this.changed();
    this.log.info({ 'role-name': name }, 'created a role');
  }

  roleDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_ROLE) throw Errors.invalidAuthMgmt;
    this.existingRole(name);
    this.roles.delete(name);
    this.records().deleteAuthRecord('authRoles', Buffer.from(name));
    for (const user of [...this.users.values()]) {
      if (user.roles.includes(name)) this.putUser({ ...user, roles: user.roles.filter((r) => r !== name) });
    }
    this.changed();
    this.log.info({ 'role-name': name }, 'deleted a role');
  }

  roleGet(name: string): readonly Permission[] {
    return this.existingRole(name).perms;
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort(byteOrder);
  }

  roleGrantPermission(name: string, perm: Permission): void {
    const role = this.existingRole(name);
    const same = (p: Permission) => p.key.equals(perm.key) && p.rangeEnd.equals(perm.rangeEnd);
    const perms = role.perms.some(same)
      ? role.perms.map((p) => (same(p) ? { ...p, permType: perm.permType } : p))
      : [...role.perms, perm].sort((a, b) => Buffer.compare(a.key, b.key));
    this.putRole({ name, perms });
    this.changed();
    this.log.info({ 'role-name': name, 'permission-type': perm.permType }, 'granted/updated a permission to a role');
  }

  roleRevokePermission(name: string, key: Buffer, rangeEnd: Buffer): void {
    const role = this.existingRole(name);
    const perms = role.perms.filter((p) => !p.key.equals(key) || !p.rangeEnd.equals(rangeEnd));
    if (perms.length === role.perms.length) throw Errors.permissionNotGranted;
    this.putRole({ name, perms });
    this.changed();
    this.log.info({ 'role-name': name, key: key.toString(), 'range-end': rangeEnd.toString() }, 'revoked a permission on range');
  }

  // ------------------------------------------------------------ internals

  private existingUser(name: string): User {
    const user = this.users.get(name);
    if (user === undefined) throw Errors.userNotFound;
    return user;
  }

  private existingRole(name: string): Role {
    const role = this.roles.get(name);
    if (role === undefined) throw Errors.roleNotFound;
    return role;
  }

  private putUser(u: User): void {
    this.users.set(u.name, u);
    this.records().putAuthRecord('authUsers', Buffer.from(u.name), encodeUser(u));
  }

  private putRole(r: Role): void {
    this.roles.set(r.name, r);
    this.records().putAuthRecord('authRoles', Buffer.from(r.name), encodeRole(r));
  }

  /** Every change bumps the auth revision (stale credentials then fail) and rebuilds the permission cache. */
  private changed(): void {
    this.commitRevision();
    this.refreshPermissions();
  }

  private commitRevision(): void {
    this.rev++;
    const b = Buffer.alloc(8);
    b.writeBigUint64BE(BigInt(this.rev));
    this.records().putAuthRecord('auth', REVISION_KEY, b);
  }

  private refreshPermissions(): void {
    const perms = new Map<string, RangePermissions>();
    for (const user of this.users.values()) {
      const all = user.roles.flatMap((r) => this.roles.get(r)?.perms ?? []);
      perms.set(user.name, new RangePermissions(all));
    }
    this.perms = perms;
  }
}

/** The bcrypt hash etcd stores for a password, computed where the request arrives. */
export async function hashPassword(password: string, cost: number): Promise<string> {
  return bcryptHash(password, cost);
}
