// etcd 3.4's peer endpoint for its corruption check (etcdserver/corrupt.go): a member
// with --experimental-initial-corrupt-check or --experimental-corrupt-check-time asks
// every peer `GET /members/hashkv` with a JSON HashKVRequest body ({"revision":N}) and
// compares the HashKVResponse JSON it gets back with its own hash. The bodies are Go's
// encoding/json of the protobuf structs (snake_case names, zero values omitted); the
// mvcc errors go back as 400 with their text, which the asking member matches on.
// Both sides are here: the answer to a peer's check, and the question this member's own
// check (src/server/corrupt.ts) asks.

import type http from 'node:http';
import { MvccError } from '../../mvcc/index.js';
import type { TlsContext } from '../tls.js';
import { peerGet, readBody } from './dial.js';

export const HASHKV_PATH = '/members/hashkv';

/** etcd's HashByRev: the hash of the store up to a revision, and where it stood. */
export interface PeerHashKV {
  hash: number;
  /** the member's current revision */
  revision: number;
  compactRevision: number;
}

/** A HashKVRequest is one small JSON object; anything larger is not etcd's. */
const MAX_BODY_BYTES = 64 * 1024;

/** Go's json.Unmarshal into HashKVRequest: the revision, or undefined when etcd would refuse the body. */
export function parseHashKVRequest(body: string): number | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (v === null) return 0; // Go leaves the struct as it is
  if (typeof v !== 'object' || Array.isArray(v)) return undefined;
  let revision = 0;
  // Go matches field names case-insensitively and ignores unknown ones
  for (const [k, x] of Object.entries(v)) {
    if (k.toLowerCase() !== 'revision' || x === null) continue;
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) return undefined;
    revision = x;
  }
  return revision;
}

/** Go's json.Marshal of HashKVResponse{Header: {Revision}, Hash, CompactRevision}. */
export function hashKVResponseJson(h: PeerHashKV): string {
  const header = h.revision !== 0 ? { revision: h.revision } : {};
  return JSON.stringify({
    header,
    ...(h.hash !== 0 ? { hash: h.hash } : {}),
    ...(h.compactRevision !== 0 ? { compact_revision: h.compactRevision } : {}),
  });
}

/** Serves one GET /members/hashkv (the caller checked the method). */
export async function serveHashKV(hashKV: (revision: number) => Promise<PeerHashKV>, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let body: string;
  try {
    body = (await readBody(req, MAX_BODY_BYTES)).toString('utf8');
  } catch {
    return textReply(res, 400, 'error reading body');
  }
  const revision = parseHashKVRequest(body);
  if (revision === undefined) return textReply(res, 400, 'error unmarshalling request');
  let h: PeerHashKV;
  try {
    h = await hashKV(revision);
  } catch (err) {
    // etcd answers every HashByRev failure with 400 and its text ("mvcc: required
    // revision has been compacted", "... is a future revision", a closed store)
    return textReply(res, 400, (err as Error).message);
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(hashKVResponseJson(h));
}

function textReply(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(`${text}\n`);
}

/**
 * Asks one peer URL for its HashKV at `revision`, as etcd's getPeerHashKVHTTP does. A 400
 * naming an mvcc error rejects with that MvccError (the peer compacted past the revision,
 * or has not reached it yet); any other failure rejects with its reason.
 */
export async function fetchPeerHashKV(url: string, revision: number, tls: TlsContext | undefined, timeoutMs: number): Promise<PeerHashKV> {
  const res = await peerGet(url, HASHKV_PATH, tls, timeoutMs, MAX_BODY_BYTES, { contentType: 'application/json', text: JSON.stringify({ revision }) });
  if (res.status === 400) {
    for (const code of ['compacted', 'future-rev'] as const) {
      const err = new MvccError(code);
      if (res.body.includes(err.message)) throw err;
    }
  }
  if (res.status !== 200) throw new Error(`unknown error: ${res.body}`);
  return parseHashKVResponse(res.body);
}

/** Go's json.Unmarshal into HashKVResponse, keeping the three numbers the check compares. */
export function parseHashKVResponse(body: string): PeerHashKV {
  const v = JSON.parse(body) as { header?: { revision?: unknown }; hash?: unknown; compact_revision?: unknown } | null;
  const num = (x: unknown, what: string, min: number, max: number): number => {
    if (x === undefined || x === null) return 0;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min || x > max) throw new Error(`the HashKVResponse has an invalid ${what}: ${JSON.stringify(x)}`);
    return x;
  };
  return {
    hash: num(v?.hash, 'hash', 0, 0xffff_ffff),
    revision: num(v?.header?.revision, 'revision', 0, Number.MAX_SAFE_INTEGER),
    // int64: a store never compacted answers -1, as etcd's
    compactRevision: num(v?.compact_revision, 'compact revision', -1, Number.MAX_SAFE_INTEGER),
  };
}
