// etcd 3.4's v2 HTTP API on the client port (served only with --enable-v2): /v2/keys,
// /v2/members, /v2/machines, /v2/stats/* and /v2/auth/*. Anything else under /v2/ is Go's 404.

import type http from 'node:http';
import type { Route } from '../http/index.js';
import { type AuthDeps, AUTH_PATH, authHandler } from './auth.js';
import { type KeysDeps, KEYS_PATH, keysHandler } from './keys.js';
import { type MembersDeps, MEMBERS_PATH, machinesHandler, membersHandler } from './members.js';
import { writeText } from './respond.js';
import { type StatsDeps, statsHandlers } from './stats.js';

export type V2Deps = KeysDeps & MembersDeps & StatsDeps & AuthDeps;

export function v2Routes(deps: V2Deps): Route[] {
  const keys = keysHandler(deps);
  const members = membersHandler(deps);
  const machines = machinesHandler(deps);
  const stats = statsHandlers(deps);
  const auth = authHandler(deps);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> | void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    if (p === KEYS_PATH || p.startsWith(KEYS_PATH + '/')) return keys(req, res, url);
    if (p === MEMBERS_PATH || p.startsWith(MEMBERS_PATH + '/')) return members(req, res, url);
    if (p === '/v2/machines') return machines(req, res);
    if (p.startsWith(AUTH_PATH + '/')) return auth(req, res, decodePath(p));
    const s = stats.get(p);
    if (s !== undefined) return s(req, res);
    writeText(res, 404, '404 page not found');
  };
  return [{ prefix: '/v2/', handler: handler as http.RequestListener }];
}

/** Go's URL.Path: the path with its escapes decoded (a bad escape stays as it is). */
function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}
