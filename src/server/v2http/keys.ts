// /v2/keys: the v2 key space over HTTP, as etcd 3.4's keysHandler. Writes and quorum
// reads go through raft; plain reads and watches are answered from this member's store.
// Client keys live under the store's "/1" directory, which clients never see.

import type http from 'node:http';
import {
  KEYS_PREFIX,
  type KeyStoreRequest,
  type NodeExtern,
  type StoreRequest,
  type V2Event,
  V2Error,
  V2ErrorCode,
  type V2Store,
  type Watcher,
  cleanPath,
  eventJson,
  isCreated,
  nowNanos,
} from '../v2store/index.js';
import type { V2Access } from './access.js';
import { type Form, first, getBool, getUint, parseForm } from './form.js';
import { allowMethod, writeKeyError } from './respond.js';

export const KEYS_PATH = '/v2/keys';

export interface KeysDeps {
  /** this member's v2 store, for plain reads and watches */
  readonly store: V2Store;
  /** a write or quorum read through raft, resolved once applied here */
  propose(r: StoreRequest): Promise<V2Event>;
  /** the cluster ID, as X-Etcd-Cluster-ID shows it (hex) */
  clusterId(): string;
  /** raft's commit index and term, for X-Raft-Index and X-Raft-Term */
  raftIndex(): number;
  raftTerm(): number;
  /** v2 auth's checks */
  readonly access: V2Access;
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

/** A parsed /v2/keys request. */
interface KeyRequest {
  readonly method: Method;
  /** the path after /v2/keys as the client sent it (decoded, not cleaned): what permissions match */
  readonly key: string;
  readonly path: string;
  /** the request to the store; its method is set by the HTTP method */
  readonly store: KeyStoreRequest;
  readonly wait: boolean;
  readonly waitIndex: number;
  readonly stream: boolean;
  readonly quorum: boolean;
  readonly noValueOnSuccess: boolean;
}

export function keysHandler(deps: KeysDeps): (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    if (!allowMethod(req, res, 'HEAD', 'GET', 'PUT', 'POST', 'DELETE')) return;
    res.setHeader('X-Etcd-Cluster-ID', deps.clusterId());
    let kr: KeyRequest;
    try {
      kr = parseKeyRequest(req.method as Method, url, await parseForm(req, url));
    } catch (err) {
      writeKeyError(res, err);
      return;
    }
    if (!(await deps.access.key(req, kr.key, kr.store.recursive))) {
      writeKeyError(res, new V2Error(V2ErrorCode.unauthorized, 'Insufficient credentials', 0));
      return;
    }
    try {
      if (kr.method === 'GET' && kr.wait) {
        await serveWatch(deps, res, kr);
        return;
      }
      const event = await answer(deps, kr);
      writeEvent(deps, res, event, kr.noValueOnSuccess);
    } catch (err) {
      writeKeyError(res, err instanceof V2Error ? err.withCause(trimPrefix(err.cause)) : err);
    }
  };
}

function answer(deps: KeysDeps, kr: KeyRequest): Promise<V2Event> | V2Event {
  switch (kr.method) {
    case 'GET':
      if (kr.quorum) return deps.propose({ ...kr.store, method: 'QGET' });
      return deps.store.get(kr.path, kr.store.recursive, kr.store.sorted);
    case 'HEAD':
      return deps.store.get(kr.path, kr.store.recursive, kr.store.sorted);
    default:
      return deps.propose({ ...kr.store, method: kr.method });
  }
}

function parseKeyRequest(method: Method, url: URL, form: Form): KeyRequest {
  let rest: string;
  try {
    rest = decodeURIComponent(url.pathname.slice(KEYS_PATH.length));
  } catch {
    throw new V2Error(V2ErrorCode.invalidForm, 'invalid URL escape in the key', 0);
  }
  const prevIndex = getUint(form, 'prevIndex', V2ErrorCode.indexNaN);
  const waitIndex = getUint(form, 'waitIndex', V2ErrorCode.indexNaN);
  const recursive = getBool(form, 'recursive');
  const sorted = getBool(form, 'sorted');
  const wait = getBool(form, 'wait');
  const dir = getBool(form, 'dir');
  const quorum = getBool(form, 'quorum');
  const stream = getBool(form, 'stream');
  if (wait && method !== 'GET') throw new V2Error(V2ErrorCode.invalidField, '"wait" can only be used with GET requests', 0);
  const prevValue = first(form, 'prevValue');
  if (form.has('prevValue') && prevValue === '') throw new V2Error(V2ErrorCode.prevValueRequired, '"prevValue" cannot be empty', 0);
  const noValueOnSuccess = getBool(form, 'noValueOnSuccess');
  const ttl = first(form, 'ttl') !== '' ? getUint(form, 'ttl', V2ErrorCode.ttlNaN) : undefined;
  const prevExist = form.has('prevExist') ? getBool(form, 'prevExist', 'invalid value for prevExist') : undefined;
  const refresh = form.has('refresh') ? getBool(form, 'refresh', 'invalid value for refresh') : false;
  if (refresh) {
    if (first(form, 'value') !== '') throw new V2Error(V2ErrorCode.refreshValue, 'A value was provided on a refresh', 0);
    if (ttl === undefined) throw new V2Error(V2ErrorCode.refreshTtlRequired, 'No TTL value set', 0);
  }
  return {
    method,
    key: rest,
    path: cleanPath(`${KEYS_PREFIX}/${rest}`),
    wait,
    waitIndex: Number(waitIndex),
    stream,
    quorum,
    noValueOnSuccess,
    store: {
      method: 'PUT',
      path: cleanPath(`${KEYS_PREFIX}/${rest}`),
      val: first(form, 'value'),
      dir,
      prevValue,
      prevIndex: Number(prevIndex),
      prevExist,
      // the TTL becomes an expiration on the clock of the member that took the request
      ttl: { expireTime: ttl !== undefined ? nowNanos() + ttl * 1_000_000_000n : undefined, refresh },
      recursive,
      sorted,
    },
  };
}

function raftHeaders(deps: KeysDeps, etcdIndex: number): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'X-Etcd-Index': String(etcdIndex),
    'X-Raft-Index': String(deps.raftIndex()),
    'X-Raft-Term': String(deps.raftTerm()),
  };
}

function writeEvent(deps: KeysDeps, res: http.ServerResponse, e: V2Event, noValueOnSuccess: boolean): void {
  res.writeHead(isCreated(e) ? 201 : 200, raftHeaders(deps, e.etcdIndex));
  const body = clientEvent(e);
  const quiet = noValueOnSuccess && ['set', 'compareAndSwap', 'create', 'update'].includes(e.action);
  res.end(JSON.stringify(quiet ? { action: body.action, ...(body.refresh ? { refresh: true } : {}) } : body) + '\n');
}

/**
 * A long-poll (or, with stream=true, streaming) watch: headers at once, then the
 * event(s). The watcher goes when the client does.
 */
async function serveWatch(deps: KeysDeps, res: http.ServerResponse, kr: KeyRequest): Promise<void> {
  const w: Watcher = deps.store.watch(kr.path, kr.store.recursive, kr.stream, kr.waitIndex);
  const gone = () => w.remove();
  res.on('close', gone);
  try {
    res.writeHead(200, raftHeaders(deps, w.startIndex));
    res.flushHeaders();
    for (;;) {
      const e = await w.next();
      if (e === undefined || res.destroyed) break;
      res.write(JSON.stringify(clientEvent(e)) + '\n');
      if (!kr.stream) break;
    }
    res.end();
  } finally {
    res.off('close', gone);
    w.remove();
  }
}

/** An event as clients see it: keys without the store's "/1" prefix. */
function clientEvent(e: V2Event): ReturnType<typeof eventJson> {
  const j = eventJson(e);
  return { ...j, node: trimNode(j.node), ...(j.prevNode ? { prevNode: trimNode(j.prevNode) } : {}) };
}

function trimNode(n: NodeExtern): NodeExtern {
  // spreading keeps etcd's field order; a key that was the prefix itself is omitted, as Go omits ""
  const out: NodeExtern = { ...n, key: trimPrefix(n.key ?? ''), ...(n.nodes ? { nodes: n.nodes.map(trimNode) } : {}) };
  if (out.key === '') delete out.key;
  return out;
}

function trimPrefix(s: string): string {
  return s.startsWith(KEYS_PREFIX) ? s.slice(KEYS_PREFIX.length) : s;
}
