// /v2/members and /v2/machines, as etcd 3.4's membersHandler: the member list, the
// leader, and membership changes through the same checks and raft conf changes as the
// gRPC Cluster service (api/cluster.ts). Errors are etcd's {"message":...} bodies.

import type http from 'node:http';
import { Errors } from '../errors.js';
import { idHex } from '../ids.js';
import type { Member } from '../membership.js';
import type { V2Access } from './access.js';
import { allowMethod, readBody, writeHttpError, writeJson, writeText } from './respond.js';

export const MEMBERS_PATH = '/v2/members';

export interface MembersDeps {
  members(): Member[];
  isRemoved(id: bigint): boolean;
  /** the raft leader's ID, 0n while there is none */
  leader(): bigint;
  clusterId(): string;
  add(peerUrls: readonly string[]): Promise<{ member: Member }>;
  remove(id: bigint): Promise<unknown>;
  update(id: bigint, peerUrls: readonly string[]): Promise<unknown>;
  /** v2 auth's checks: changes need the root role */
  readonly access: V2Access;
}

/** etcd's httptypes.Member */
function memberJson(m: Member): { id: string; name: string; peerURLs: string[]; clientURLs: string[] } {
  return { id: idHex(m.id), name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls] };
}

export function membersHandler(deps: MembersDeps): (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    if (!allowMethod(req, res, 'GET', 'POST', 'DELETE', 'PUT')) return;
    if (!(await deps.access.writeRoot(req))) return writeHttpError(res, 401, 'Insufficient credentials');
    res.setHeader('X-Etcd-Cluster-ID', deps.clusterId());
    const sub = url.pathname.slice(MEMBERS_PATH.length).replace(/^\//, '');
    switch (req.method) {
      case 'GET':
        return serveGet(deps, res, sub);
      case 'POST': {
        const urls = await readPeerUrls(req, res);
        if (urls === undefined) return;
        try {
          const { member } = await deps.add(urls);
          writeJson(res, 201, memberJson(member));
        } catch (err) {
          writeChangeError(res, err);
        }
        return;
      }
      case 'DELETE': {
        const id = memberId(res, sub);
        if (id === undefined) return;
        if (deps.isRemoved(id)) return writeHttpError(res, 410, `Member permanently removed: ${idHex(id)}`);
        try {
          await deps.remove(id);
          res.writeHead(204).end();
        } catch (err) {
          writeChangeError(res, err, id);
        }
        return;
      }
      case 'PUT': {
        const id = memberId(res, sub);
        if (id === undefined) return;
        const urls = await readPeerUrls(req, res);
        if (urls === undefined) return;
        try {
          await deps.update(id, urls);
          res.writeHead(204).end();
        } catch (err) {
          writeChangeError(res, err, id);
        }
        return;
      }
    }
  };
}

function serveGet(deps: MembersDeps, res: http.ServerResponse, sub: string): void {
  if (sub === '') return writeJson(res, 200, { members: deps.members().map(memberJson) });
  if (sub === 'leader') {
    const lead = deps.leader();
    const m = deps.members().find((x) => x.id === lead);
    if (lead === 0n || m === undefined) return writeHttpError(res, 503, 'During election');
    return writeJson(res, 200, memberJson(m));
  }
  writeHttpError(res, 404, 'Not found');
}

/** etcd's getID: the hex member ID after /v2/members/. */
function memberId(res: http.ServerResponse, sub: string): bigint | undefined {
  if (sub === '') {
    writeText(res, 405, 'Method Not Allowed');
    return undefined;
  }
  if (!/^[0-9a-fA-F]{1,16}$/.test(sub)) {
    writeHttpError(res, 404, `No such member: ${sub}`);
    return undefined;
  }
  return BigInt('0x' + sub);
}

/**
 * The body of a member add or update: JSON {"peerURLs": [...]}, each URL checked as etcd's
 * types.NewURLs does (scheme, host:port, no path), then sorted as it sorts them.
 */
async function readPeerUrls(req: http.IncomingMessage, res: http.ServerResponse): Promise<string[] | undefined> {
  const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ctype !== 'application/json') {
    writeHttpError(res, 415, `Bad Content-Type ${ctype}, accept application/json`);
    return undefined;
  }
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (err) {
    writeHttpError(res, 400, (err as Error).message);
    return undefined;
  }
  const raw = (body as { peerURLs?: unknown } | null)?.peerURLs ?? [];
  if (!Array.isArray(raw) || raw.some((u) => typeof u !== 'string')) {
    writeHttpError(res, 400, 'json: cannot unmarshal peerURLs: want an array of strings');
    return undefined;
  }
  const problem = (raw as string[]).map(urlProblem).find((p) => p !== undefined);
  if (problem !== undefined) {
    writeHttpError(res, 400, problem);
    return undefined;
  }
  return [...(raw as string[])].sort();
}

function urlProblem(u: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return `parse ${JSON.stringify(u)}: invalid URI for request`;
  }
  if (!['http:', 'https:', 'unix:', 'unixs:'].includes(parsed.protocol)) return `URL scheme must be http, https, unix, or unixs: ${u}`;
  if (parsed.port === '') return `URL address does not have the form "host:port": ${u}`;
  if (parsed.pathname !== '' && parsed.pathname !== '/') return `URL must not contain a path: ${u}`;
  return undefined;
}

/** etcd's answers to a failed membership change: 409 for a clash, 404 for an unknown ID, else 500. */
function writeChangeError(res: http.ServerResponse, err: unknown, id?: bigint): void {
  if (err === Errors.peerURLExist) return writeHttpError(res, 409, 'membership: peerURL exists');
  if (err === Errors.memberExist) return writeHttpError(res, 409, 'membership: ID exists');
  if (err === Errors.memberNotFound && id !== undefined) return writeHttpError(res, 404, `No such member: ${idHex(id)}`);
  writeHttpError(res, 500, 'Internal Server Error');
}

/** /v2/machines: every member's client URLs, comma-separated, as plain text. */
export function machinesHandler(deps: Pick<MembersDeps, 'members'>): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    if (!allowMethod(req, res, 'GET', 'HEAD')) return;
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(deps.members().flatMap((m) => m.clientUrls).join(', '));
  };
}
