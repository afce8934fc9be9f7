// v2 auth's users and roles (etcd's v2auth.User, Role, Permissions) and the rules on them:
// how a grant or revoke merges into what is stored, and which keys a role reaches. They
// live in the v2 store as JSON and travel over /v2/auth/* as JSON, both as Go's
// encoding/json writes and reads them; Go tells a nil slice (null) from an empty one ([]),
// and so does the model here, since etcd's answers and its "not updated" check depend on it.

import { goJsonEscape } from '../gateway/jsonpb.js';

export const ROOT_ROLE = 'root';
export const GUEST_ROLE = 'guest';
export const ROOT_USER = 'root';

/** A Go []string: null is nil. */
export type GoStrings = readonly string[] | null;

export interface RWPermission {
  readonly read: GoStrings;
  readonly write: GoStrings;
}

export interface Permissions {
  readonly kv: RWPermission;
}

export interface User {
  readonly user: string;
  /** the bcrypt hash once stored; the plain password in a request; '' for none */
  readonly password: string;
  readonly roles: GoStrings;
  readonly grant: GoStrings;
  readonly revoke: GoStrings;
}

export interface Role {
  readonly role: string;
  readonly permissions: Permissions;
  /** null: no grant (Go's nil pointer) */
  readonly grant: Permissions | null;
  readonly revoke: Permissions | null;
}

/** The root role is built in: it is never stored, and reaches every key. */
export const rootRole: Role = {
  role: ROOT_ROLE,
  permissions: { kv: { read: ['/*'], write: ['/*'] } },
  grant: null,
  revoke: null,
};

/** The guest role auth enable creates when there is none: unauthenticated requests reach every key. */
export const defaultGuestRole: Role = {
  role: GUEST_ROLE,
  permissions: { kv: { read: ['/*'], write: ['/*'] } },
  grant: null,
  revoke: null,
};

/** An error of the auth store: its HTTP status and etcd's "auth: ..." message. */
export class V2AuthError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`auth: ${message}`);
    this.name = 'V2AuthError';
  }
}

// ------------------------------------------------------------------ JSON, as Go writes it

/** Go's json.Marshal of a value made of objects, arrays, strings and booleans. */
export function goJson(v: unknown): string {
  return goJsonEscape(JSON.stringify(v));
}

function permissionsJson(p: Permissions): object {
  return { kv: { read: p.kv.read, write: p.kv.write } };
}

/** A user as etcd stores and answers it: password and grant/revoke omitted when empty. */
export function userJson(u: User): object {
  return {
    user: u.user,
    ...(u.password !== '' ? { password: u.password } : {}),
    roles: u.roles,
    ...(u.grant !== null && u.grant.length > 0 ? { grant: u.grant } : {}),
    ...(u.revoke !== null && u.revoke.length > 0 ? { revoke: u.revoke } : {}),
  };
}

export function roleJson(r: Role): object {
  return {
    role: r.role,
    permissions: permissionsJson(r.permissions),
    ...(r.grant !== null ? { grant: permissionsJson(r.grant) } : {}),
    ...(r.revoke !== null ? { revoke: permissionsJson(r.revoke) } : {}),
  };
}

// ------------------------------------------------------------------ JSON, as Go reads it

/** A value of the wrong JSON type for its field (Go's UnmarshalTypeError). */
export class GoJsonTypeError extends Error {}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * The value of struct field `name` in a JSON object as Go's decoder finds it: keys match
 * case-insensitively, and a key seen later wins.
 */
function field(o: { [k: string]: Json }, name: string): Json | undefined {
  let found: Json | undefined;
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === name) found = v;
  return found;
}

function asObject(v: Json | undefined, what: string): { [k: string]: Json } | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new GoJsonTypeError(`${what} is not an object`);
  return v;
}

function asString(v: Json | undefined, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new GoJsonTypeError(`${what} is not a string`);
  return v;
}

function asStrings(v: Json | undefined, what: string): GoStrings {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) throw new GoJsonTypeError(`${what} is not an array`);
  return v.map((x) => asString(x, what));
}

function permissionsFrom(v: Json | undefined, what: string): Permissions {
  const kv = asObject(field(asObject(v, what) ?? {}, 'kv'), `${what}.kv`) ?? {};
  return { kv: { read: asStrings(field(kv, 'read'), `${what}.kv.read`), write: asStrings(field(kv, 'write'), `${what}.kv.write`) } };
}

/** Parses JSON text; throws SyntaxError or GoJsonTypeError as Go's decoder would fail. */
function parseObject(text: string, what: string): { [k: string]: Json } {
  const o = asObject(JSON.parse(text) as Json, what);
  if (o === undefined) throw new GoJsonTypeError(`${what} is null`);
  return o;
}

export function parseUser(text: string): User {
  const o = parseObject(text, 'user');
  return {
    user: asString(field(o, 'user'), 'user'),
    password: asString(field(o, 'password'), 'password'),
    roles: asStrings(field(o, 'roles'), 'roles'),
    grant: asStrings(field(o, 'grant'), 'grant'),
    revoke: asStrings(field(o, 'revoke'), 'revoke'),
  };
}

export function parseRole(text: string): Role {
  const o = parseObject(text, 'role');
  const pointer = (name: 'grant' | 'revoke'): Permissions | null => {
    const v = field(o, name);
    return v === undefined || v === null ? null : permissionsFrom(v, name);
  };
  return { role: asString(field(o, 'role'), 'role'), permissions: permissionsFrom(field(o, 'permissions'), 'permissions'), grant: pointer('grant'), revoke: pointer('revoke') };
}

// ------------------------------------------------------------------ merging changes

function sameStrings(a: GoStrings, b: GoStrings): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function samePermissions(a: Permissions | null, b: Permissions | null): boolean {
  if (a === null || b === null) return a === b;
  return sameStrings(a.kv.read, b.kv.read) && sameStrings(a.kv.write, b.kv.write);
}

/** Go's reflect.DeepEqual on two users. */
export function sameUser(a: User, b: User): boolean {
  return a.user === b.user && a.password === b.password && sameStrings(a.roles, b.roles) && sameStrings(a.grant, b.grant) && sameStrings(a.revoke, b.revoke);
}

export function sameRole(a: Role, b: Role): boolean {
  return a.role === b.role && samePermissions(a.permissions, b.permissions) && samePermissions(a.grant, b.grant) && samePermissions(a.revoke, b.revoke);
}

/** Go's sort.Strings: by bytes (UTF-16 order differs only outside the BMP). */
function sorted(set: Set<string>): string[] {
  return [...set].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * The user after a change (etcd's User.merge): a new password (already hashed) replaces
 * the old, granted roles are added and revoked ones removed; granting a role the user has
 * or revoking one they lack refuses the whole change.
 */
export function mergeUser(old: User, change: User, newHash: string | undefined): User {
  if (old.user !== change.user) throw new V2AuthError(409, `Merging user data with conflicting usernames: ${old.user} ${change.user}`);
  const roles = new Set(old.roles ?? []);
  for (const g of change.grant ?? []) {
    if (roles.has(g)) throw new V2AuthError(409, `Granting duplicate role ${g} for user ${change.user}`);
    roles.add(g);
  }
  for (const r of change.revoke ?? []) {
    if (!roles.has(r)) throw new V2AuthError(409, `Revoking ungranted role ${r} for user ${change.user}`);
    roles.delete(r);
  }
  return { user: old.user, password: newHash ?? old.password, roles: sorted(roles), grant: null, revoke: null };
}

/**
 * The role after a change (etcd's Role.merge): granted patterns are added (a duplicate
 * refuses the change), revoked ones removed (one not granted is skipped).
 */
export function mergeRole(old: Role, change: Role): Role {
  if (old.role !== change.role) throw new V2AuthError(409, `Merging role with conflicting names: ${old.role} ${change.role}`);
  let permissions = old.permissions;
  if (change.grant !== null) permissions = { kv: grantRW(permissions.kv, change.grant.kv) };
  if (change.revoke !== null) permissions = { kv: revokeRW(permissions.kv, change.revoke.kv) };
  return { role: old.role, permissions, grant: null, revoke: null };
}

function grantRW(rw: RWPermission, n: RWPermission): RWPermission {
  const read = new Set(rw.read ?? []);
  for (const r of n.read ?? []) {
    if (read.has(r)) throw new V2AuthError(409, `Granting duplicate read permission ${r}`);
    read.add(r);
  }
  const write = new Set(rw.write ?? []);
  for (const w of n.write ?? []) {
    if (write.has(w)) throw new V2AuthError(409, `Granting duplicate write permission ${w}`);
    write.add(w);
  }
  return { read: sorted(read), write: sorted(write) };
}

function revokeRW(rw: RWPermission, n: RWPermission): RWPermission {
  const read = new Set(rw.read ?? []);
  for (const r of n.read ?? []) read.delete(r);
  const write = new Set(rw.write ?? []);
  for (const w of n.write ?? []) write.delete(w);
  return { read: sorted(read), write: sorted(write) };
}

/** The root role gets a user named root, whatever is stored (etcd's attachRootRole). */
export function withRootRole(u: User): User {
  if (u.user !== ROOT_USER || (u.roles ?? []).includes(ROOT_ROLE)) return u;
  return { ...u, roles: [...(u.roles ?? []), ROOT_ROLE] };
}

// ------------------------------------------------------------------ access

/**
 * Does the role reach `key` (a path under /v2/keys, as the client wrote it)? A pattern
 * ending in "*" is a prefix, any other must equal the key (etcd's simpleMatch).
 */
export function hasKeyAccess(r: Role, key: string, write: boolean): boolean {
  if (r.role === ROOT_ROLE) return true;
  return patterns(r, write).some((p) => (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : key === p));
}

/** For a recursive request: only a prefix pattern reaches everything under a key (etcd's prefixMatch). */
export function hasRecursiveAccess(r: Role, key: string, write: boolean): boolean {
  if (r.role === ROOT_ROLE) return true;
  return patterns(r, write).some((p) => p.endsWith('*') && key.startsWith(p.slice(0, -1)));
}

function patterns(r: Role, write: boolean): readonly string[] {
  return (write ? r.permissions.kv.write : r.permissions.kv.read) ?? [];
}
