// etcd 3.4's peer endpoint for its corruption check (etcdserver/corrupt.go): a member
// with --experimental-initial-corrupt-check or --experimental-corrupt-check-time asks
// every peer `GET /members/hashkv` with a JSON HashKVRequest body ({"revision":N}) and
// compares the HashKVResponse JSON it gets back with its own hash. The bodies are Go's
// encoding/json of the protobuf structs (snake_case names, zero values omitted); the
// mvcc errors go back as 400 with their text, which the asking member matches on.

import type http from 'node:http';
import { readBody } from './dial.js';

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
