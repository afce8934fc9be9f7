// /v2/auth: v2 users, roles and the enabled flag over HTTP, as etcd 3.4's authHandler
// serves them (etcdctl v2's user, role and auth commands). Every call needs the root role
// while auth is on, except reading whether it is on.

import type http from 'node:http';
import { V2Error } from '../v2store/index.js';
import {
  GoJsonTypeError,
  type Role,
  type User,
  V2AuthError,
  goJson,
  parseRole,
  parseUser,
  roleJson,
  userJson,
} from '../v2auth/types.js';
import type { V2Access } from './access.js';
import { BodyTooLarge, allowMethod, readBody, writeHttpError, writeKeyError, writeText } from './respond.js';

export const AUTH_PATH = '/v2/auth';

export interface AuthDeps {
  readonly access: V2Access;
  clusterId(): string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => Promise<void>;

/** The /v2/auth routes, as Go's ServeMux matches them (anything else under /v2/auth is its 404). */
export function authHandler(deps: AuthDeps): (req: http.IncomingMessage, res: http.ServerResponse, path: string) => Promise<void> | void {
  const auth = deps.access.store;
  const guarded = (check: 'root' | 'writeRoot', methods: string[], fn: Handler): Handler => async (req, res, path) => {
    if (!allowMethod(req, res, ...methods)) return;
    if (!(await deps.access[check](req))) return writeHttpError(res, 401, 'Insufficient credentials');
    res.setHeader('X-Etcd-Cluster-ID', deps.clusterId());
    res.setHeader('Content-Type', 'application/json');
    try {
      await fn(req, res, path);
    } catch (err) {
      writeError(res, err);
    }
  };

  const baseRoles = guarded('root', ['GET'], async (_req, res) => {
    const roles: Role[] = [];
    for (const name of await auth.allRoles()) roles.push(await auth.getRole(name));
    send(res, 200, { roles: roles.length > 0 ? roles.map(roleJson) : null });
  });

  const forRole = guarded('root', ['GET', 'PUT', 'DELETE'], async (req, res, name) => {
    switch (req.method) {
      case 'GET':
        return send(res, 200, roleJson(await auth.getRole(name)));
      case 'PUT': {
        const role = await readJson(req, parseRole);
        if (role.role !== name) throw new BadRequest('Role JSON name does not match the name in the URL');
        if (isEmpty(role.grant) && isEmpty(role.revoke)) {
          await auth.createRole(role);
          return send(res, 201, roleJson(role));
        }
        if (!isEmpty(role.permissions)) throw new BadRequest('Role JSON contains both permissions and grant/revoke');
        return send(res, 200, roleJson(await auth.updateRole(role)));
      }
      case 'DELETE':
        await auth.deleteRole(name);
        return void res.end();
    }
  });

  const baseUsers = guarded('root', ['GET'], async (_req, res) => {
    const users: object[] = [];
    for (const name of await auth.allUsers()) {
      const u = await auth.getUser(name);
      // a role that no longer exists is left out of the listing
      const roles = [];
      for (const r of u.roles ?? []) {
        const role = await auth.getRole(r).catch(() => undefined);
        if (role !== undefined) roles.push(roleJson(role));
      }
      users.push(withRoles(u.user, roles));
    }
    send(res, 200, { users: users.length > 0 ? users : null });
  });

  const forUser = guarded('root', ['GET', 'PUT', 'DELETE'], async (req, res, name) => {
    switch (req.method) {
      case 'GET': {
        const u = await auth.getUser(name);
        const roles = [];
        for (const r of u.roles ?? []) roles.push(roleJson(await auth.getRole(r)));
        return send(res, 200, withRoles(u.user, roles));
      }
      case 'PUT': {
        const u = await readJson(req, parseUser);
        if (u.user !== name) throw new BadRequest('User JSON name does not match the name in the URL');
        let out: User;
        let created = false;
        if ((u.grant ?? []).length === 0 && (u.revoke ?? []).length === 0) {
          // roles given: a create; a password alone may be either
          if ((u.roles ?? []).length !== 0) out = await auth.createUser(u);
          else ({ user: out, created } = await auth.createOrUpdateUser(u));
        } else {
          if ((u.roles ?? []).length !== 0) throw new BadRequest('User JSON contains both roles and grant/revoke');
          out = await auth.updateUser(u);
        }
        return send(res, created ? 201 : 200, userJson({ ...out, password: '' }));
      }
      case 'DELETE':
        await auth.deleteUser(name);
        return void res.end();
    }
  });

  const enable = guarded('writeRoot', ['GET', 'PUT', 'DELETE'], async (req, res) => {
    switch (req.method) {
      case 'GET':
        return send(res, 200, { enabled: auth.authEnabled() });
      case 'PUT':
        await auth.enableAuth();
        return void res.end();
      case 'DELETE':
        await auth.disableAuth();
        return void res.end();
    }
  });

  /** /v2/auth/roles/<name> and /v2/auth/users/<name>: one name, or the listing. */
  const named = (base: Handler, one: Handler): Handler => async (req, res, rest) => {
    const pieces = cleanPath(rest).split('/');
    if (pieces.length === 2) return base(req, res, '');
    if (pieces.length !== 3) return writeHttpError(res, 400, 'Invalid path');
    return one(req, res, pieces[2]!);
  };
  const roles = named(baseRoles, forRole);
  const users = named(baseUsers, forUser);

  return (req, res, path) => {
    const rest = path.slice(AUTH_PATH.length);
    if (rest === '/roles') return baseRoles(req, res, '');
    if (rest.startsWith('/roles/')) return roles(req, res, rest);
    if (rest === '/users') return baseUsers(req, res, '');
    if (rest.startsWith('/users/')) return users(req, res, rest);
    if (rest === '/enable') return enable(req, res, '');
    writeText(res, 404, '404 page not found');
  };
}

/** Go's path.Clean for an absolute path. */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

class BadRequest extends Error {}

function isEmpty(p: Role['grant']): boolean {
  return p === null || ((p.kv.read ?? []).length === 0 && (p.kv.write ?? []).length === 0);
}

/** etcd's userWithRoles: roles left out when there are none. */
function withRoles(user: string, roles: object[]): object {
  return roles.length > 0 ? { user, roles } : { user };
}

async function readJson<T>(req: http.IncomingMessage, parse: (text: string) => T): Promise<T> {
  try {
    return parse(await readBody(req));
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof GoJsonTypeError) throw new BadRequest('Invalid JSON in request body.');
    if (err instanceof BodyTooLarge) throw new BadRequest(err.message);
    throw err;
  }
}

/** Go's json.Encoder: the JSON and a newline; headers were set by the guard. */
function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status);
  res.end(goJson(body) + '\n');
}

/** etcd's v2http writeError: auth errors and bad requests as {"message"}, store errors as v2 errors, the rest a 500. */
function writeError(res: http.ServerResponse, err: unknown): void {
  if (err instanceof V2AuthError) return writeHttpError(res, err.status, err.message);
  if (err instanceof BadRequest) return writeHttpError(res, 400, err.message);
  if (err instanceof V2Error) return writeKeyError(res, err);
  writeHttpError(res, 500, 'Internal Server Error');
}
