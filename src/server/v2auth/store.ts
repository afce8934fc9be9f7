// The v2 auth store (etcd's v2auth.store): users and roles as JSON nodes of the v2 store
// under /2/users/<name> and /2/roles/<name>, and whether auth is on in /2/enabled. Every
// change is a v2 request through raft (so every member applies it, and .snap files carry
// it); reads are this member's store, or a quorum read (QGET) where etcd makes one. The
// root role is built in and never stored.

import type { Logger } from 'pino';
import { VerifiedPasswords } from '../auth/verified-passwords.js';
import { bcryptCompare, bcryptHash } from '../auth/bcrypt-pool.js';
import { type KeyStoreRequest, type V2Event, V2Error, V2ErrorCode, keyStoreRequest } from '../v2store/index.js';
import {
  GUEST_ROLE,
  type Role,
  ROOT_ROLE,
  ROOT_USER,
  type User,
  V2AuthError,
  defaultGuestRole,
  goJson,
  mergeRole,
  mergeUser,
  parseRole,
  parseUser,
  roleJson,
  rootRole,
  sameRole,
  sameUser,
  userJson,
  withRootRole,
} from './types.js';

/** etcd's StorePermsPrefix. */
export const PERMS_PREFIX = '/2';

/** v2 auth hashes with bcrypt's default cost whatever --bcrypt-cost says (etcd's bcrypt.DefaultCost). */
const V2_BCRYPT_COST = 10;

/** How the auth store reaches the v2 store (etcd's doer). */
export interface V2StoreAccess {
  /** a read of this member's store; throws the store's V2Error */
  get(path: string): V2Event;
  /** a write (or quorum read) through raft, resolved once applied here; rejects with the store's V2Error */
  propose(r: KeyStoreRequest): Promise<V2Event>;
}

function isCode(err: unknown, code: V2ErrorCode): boolean {
  return err instanceof V2Error && err.errorCode === code;
}

export class V2AuthStore {
  /** the /2 directories and the enabled flag exist (etcd's ensuredOnce: once per process) */
  private ensured = false;
  private readonly verified = new VerifiedPasswords();

  constructor(
    private readonly store: V2StoreAccess,
    private readonly log: Logger,
  ) {}

  // ------------------------------------------------------------ users

  async allUsers(): Promise<string[]> {
    return this.children('/users');
  }

  getUser(name: string): Promise<User> {
    return this.readUser(name, false);
  }

  /** Creates the user, or (when it exists) changes its password. */
  async createOrUpdateUser(u: User): Promise<{ user: User; created: boolean }> {
    try {
      await this.readUser(u.user, true);
    } catch {
      return { user: await this.createUser(u), created: true };
    }
    return { user: await this.updateUser(u), created: false };
  }

  async createUser(u: User): Promise<User> {
    const user = u.user === ROOT_USER ? withRootRole(u) : u;
    if (user.password === '') throw new V2AuthError(400, `Cannot create user ${user.user} with an empty password`);
    const stored = { ...user, password: await bcryptHash(user.password, V2_BCRYPT_COST) };
    try {
      await this.setResource(`/users/${user.user}`, userJson(stored), false);
    } catch (err) {
      if (isCode(err, V2ErrorCode.nodeExist)) throw new V2AuthError(409, `User ${user.user} already exists.`);
      throw err;
    }
    this.log.info({ 'user-name': user.user }, 'created a user');
    return stored;
  }

  async deleteUser(name: string): Promise<void> {
    if (name === ROOT_USER && this.authEnabled()) throw new V2AuthError(403, 'Cannot delete root user while auth is enabled.');
    try {
      await this.deleteResource(`/users/${name}`);
    } catch (err) {
      if (isCode(err, V2ErrorCode.keyNotFound)) throw new V2AuthError(404, `User ${name} does not exist`);
      throw err;
    }
    this.log.info({ 'user-name': name }, 'deleted a user');
  }

  async updateUser(change: User): Promise<User> {
    let old: User;
    try {
      old = await this.readUser(change.user, true);
    } catch (err) {
      if (err instanceof V2AuthError && err.status === 404) throw new V2AuthError(404, `User ${change.user} doesn't exist.`);
      throw err;
    }
    const hash = change.password !== '' ? await bcryptHash(change.password, V2_BCRYPT_COST) : undefined;
    const updated = mergeUser(old, change, hash);
    if (sameUser(old, updated)) throw new V2AuthError(400, 'User not updated. Use grant/revoke/password to update the user.');
    await this.setResource(`/users/${change.user}`, userJson(updated), true);
    this.log.info({ 'user-name': change.user }, 'updated a user');
    return updated;
  }

  /** Does `password` match the user's hash? Successes are remembered (see VerifiedPasswords). */
  async checkPassword(u: User, password: string): Promise<boolean> {
    const hash = Buffer.from(u.password);
    if (this.verified.has(hash, password)) return true;
    if (!(await bcryptCompare(password, u.password))) return false;
    this.verified.add(hash, password);
    return true;
  }

  // ------------------------------------------------------------ roles

  /** Every role's name, the built-in root role included, sorted. */
  async allRoles(): Promise<string[]> {
    return [ROOT_ROLE, ...(await this.children('/roles'))].sort();
  }

  getRole(name: string): Promise<Role> {
    return this.readRole(name, false);
  }

  async createRole(r: Role): Promise<void> {
    if (r.role === ROOT_ROLE) throw new V2AuthError(403, `Cannot modify role ${r.role}: is root role.`);
    try {
      await this.setResource(`/roles/${r.role}`, roleJson(r), false);
    } catch (err) {
      if (isCode(err, V2ErrorCode.nodeExist)) throw new V2AuthError(409, `Role ${r.role} already exists.`);
      throw err;
    }
    this.log.info({ 'role-name': r.role }, 'created a new role');
  }

  async deleteRole(name: string): Promise<void> {
    if (name === ROOT_ROLE) throw new V2AuthError(403, `Cannot modify role ${name}: is root role.`);
    try {
      await this.deleteResource(`/roles/${name}`);
    } catch (err) {
      if (isCode(err, V2ErrorCode.keyNotFound)) throw new V2AuthError(404, `Role ${name} doesn't exist.`);
      throw err;
    }
    this.log.info({ 'role-name': name }, 'delete a new role');
  }

  async updateRole(change: Role): Promise<Role> {
    if (change.role === ROOT_ROLE) throw new V2AuthError(403, `Cannot modify role ${change.role}: is root role.`);
    let old: Role;
    try {
      old = await this.readRole(change.role, true);
    } catch (err) {
      if (err instanceof V2AuthError && err.status === 404) throw new V2AuthError(404, `Role ${change.role} doesn't exist.`);
      throw err;
    }
    const updated = mergeRole(old, change);
    if (sameRole(old, updated)) throw new V2AuthError(400, 'Role not updated. Use grant/revoke to update the role.');
    await this.setResource(`/roles/${change.role}`, roleJson(updated), true);
    this.log.info({ 'role-name': change.role }, 'updated a new role');
    return updated;
  }

  // ------------------------------------------------------------ the enabled flag

  /** Read from this member's store on every request, as etcd's detectAuth does. */
  authEnabled(): boolean {
    let value: string | undefined;
    try {
      value = this.store.get(`${PERMS_PREFIX}/enabled`).node.value;
    } catch (err) {
      if (!isCode(err, V2ErrorCode.keyNotFound)) this.log.warn({ error: (err as Error).message }, 'failed to detect auth settings');
      return false;
    }
    try {
      return JSON.parse(value ?? '') === true;
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, "internal bookkeeping value for enabled isn't valid JSON");
      return false;
    }
  }

  async enableAuth(): Promise<void> {
    if (this.authEnabled()) throw new V2AuthError(409, 'already enabled');
    try {
      await this.readUser(ROOT_USER, true);
    } catch {
      throw new V2AuthError(409, 'No root user available, please create one');
    }
    try {
      await this.readRole(GUEST_ROLE, true);
    } catch {
      this.log.info({ 'role-name': GUEST_ROLE }, 'no guest role access found; creating default');
      await this.createRole(defaultGuestRole);
    }
    await this.setResource('/enabled', true, true);
    this.log.info('enabled auth');
  }

  async disableAuth(): Promise<void> {
    if (!this.authEnabled()) throw new V2AuthError(409, 'already disabled');
    await this.setResource('/enabled', false, true);
    this.log.info('disabled auth');
  }

  // ------------------------------------------------------------ the v2 store

  private async readUser(name: string, quorum: boolean): Promise<User> {
    const e = await this.read(`/users/${name}`, quorum, () => new V2AuthError(404, `User ${name} does not exist.`));
    return withRootRole(parseUser(e.node.value ?? ''));
  }

  private async readRole(name: string, quorum: boolean): Promise<Role> {
    if (name === ROOT_ROLE) return rootRole;
    const e = await this.read(`/roles/${name}`, quorum, () => new V2AuthError(404, `Role ${name} does not exist.`));
    return parseRole(e.node.value ?? '');
  }

  /** The names under /2/users or /2/roles, sorted; none while the directory is missing. */
  private async children(dir: string): Promise<string[]> {
    let e: V2Event;
    try {
      e = this.store.get(PERMS_PREFIX + dir);
    } catch (err) {
      if (isCode(err, V2ErrorCode.keyNotFound)) return [];
      throw err;
    }
    return (e.node.nodes ?? []).map((n) => (n.key ?? '').slice(`${PERMS_PREFIX}${dir}/`.length)).sort();
  }

  /** etcd's requestResource: a local GET, or a QGET through raft. */
  private async read(res: string, quorum: boolean, notFound: () => V2AuthError): Promise<V2Event> {
    const path = PERMS_PREFIX + res;
    try {
      return quorum ? await this.store.propose(keyStoreRequest('QGET', path)) : this.store.get(path);
    } catch (err) {
      if (isCode(err, V2ErrorCode.keyNotFound)) throw notFound();
      throw err;
    }
  }

  private async setResource(res: string, value: unknown, prevExist: boolean): Promise<void> {
    await this.ensureAuthDirectories();
    await this.store.propose(keyStoreRequest('PUT', PERMS_PREFIX + res, { val: goJson(value), prevExist }));
  }

  private async deleteResource(res: string): Promise<void> {
    await this.ensureAuthDirectories();
    await this.store.propose(keyStoreRequest('DELETE', PERMS_PREFIX + res, { prevExist: true }));
  }

  /** Before the first change: /2, /2/users, /2/roles and /2/enabled (false), each made unless it exists. */
  private async ensureAuthDirectories(): Promise<void> {
    if (this.ensured) return;
    for (const dir of [PERMS_PREFIX, `${PERMS_PREFIX}/users/`, `${PERMS_PREFIX}/roles/`]) {
      try {
        await this.store.propose(keyStoreRequest('PUT', dir, { dir: true, prevExist: false }));
      } catch (err) {
        if (isCode(err, V2ErrorCode.nodeExist)) continue;
        this.log.warn({ error: (err as Error).message }, 'failed to create auth directories');
        throw err;
      }
    }
    try {
      await this.store.propose(keyStoreRequest('PUT', `${PERMS_PREFIX}/enabled`, { val: 'false', prevExist: false }));
    } catch (err) {
      if (!isCode(err, V2ErrorCode.nodeExist)) throw err;
    }
    this.ensured = true;
  }
}
