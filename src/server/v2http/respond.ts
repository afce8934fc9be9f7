// How the v2 API answers: etcd's key-space errors ({"errorCode",...} with X-Etcd-Index),
// its other errors ({"message"}), and Go's plain-text errors, byte for byte.

import type http from 'node:http';
import { V2Error, V2ErrorCode } from '../v2store/index.js';

/** Go's json.Encoder: the JSON and a newline. */
export function writeJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}

/** A v2 store error, or anything else as etcd's 300 "Raft Internal Error" carrying its text. */
export function writeKeyError(res: http.ServerResponse, err: unknown): void {
  const e = err instanceof V2Error ? err : new V2Error(V2ErrorCode.raftInternal, err instanceof Error ? err.message : String(err), 0);
  writeJson(res, e.status, e.toJSON(), { 'X-Etcd-Index': String(e.index) });
}

/** etcd's httptypes.HTTPError: {"message":...} without a trailing newline. */
export function writeHttpError(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ message }));
}

/** Go's http.Error. */
export function writeText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(text + '\n');
}

/** etcd's allowMethod: 405 with the allowed methods otherwise. */
export function allowMethod(req: http.IncomingMessage, res: http.ServerResponse, ...methods: string[]): boolean {
  if (methods.includes(req.method ?? '')) return true;
  res.setHeader('Allow', methods.join(','));
  writeText(res, 405, 'Method Not Allowed');
  return false;
}

/** Go's http.Request body limit for forms (10 MB), applied to every v2 body. */
const MAX_BODY_BYTES = 10 << 20;

export class BodyTooLarge extends Error {
  constructor() {
    super('http: request body too large');
  }
}

export async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
