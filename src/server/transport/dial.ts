// Opens one HTTP request to a peer URL: plain for http:// and unix://, TLS with this
// member's peer identity for https:// and unixs://. A request gets its own connection
// unless an agent is given (the pipeline keeps a few alive), so a long-lived stream never
// shares a socket with anything else.

import http from 'node:http';
import https from 'node:https';
import type { TlsContext } from '../tls.js';
import { unixSocketPath } from '../config/values.js';
import { goTlsErrorMessage } from '../go-tls-error.js';

export function peerRequest(
  peerUrl: string,
  path: string,
  method: 'GET' | 'POST',
  headers: Record<string, string>,
  tls: TlsContext | undefined,
  agent: http.Agent | false = false,
): http.ClientRequest {
  const u = new URL(peerUrl);
  const where =
    u.protocol === 'unix:' || u.protocol === 'unixs:'
      ? { socketPath: unixSocketPath(u) }
      : { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port) };
  const base = { ...where, path, method, headers, agent };
  let req: http.ClientRequest;
  if (u.protocol === 'https:' || u.protocol === 'unixs:') req = https.request({ ...(tls?.client ?? {}), ...base });
  else if (u.protocol === 'http:' || u.protocol === 'unix:') req = http.request(base);
  else throw new Error(`peer URL ${peerUrl} has unsupported scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))}`);
  req.on('socket', (s) => s.setNoDelay(true));
  // Whoever logs the failure words a refusal by the peer's TLS server as etcd does (`remote
  // error: tls: bad certificate`): the error is rewritten before any other listener sees it.
  req.prependListener('error', (err) => {
    err.message = goTlsErrorMessage(err);
  });
  return req;
}

/** Reads a (short) response body as text, at most `limit` bytes kept. */
export function readText(res: http.IncomingMessage, limit = 4096): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (text.length < limit) text += c.slice(0, limit - text.length);
    });
    res.on('end', () => resolve(text));
    res.on('error', () => resolve(text));
    res.on('close', () => resolve(text));
  });
}

/** A request or response body whole; rejects past `limit` bytes or if the body breaks off. */
export async function readBody(msg: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of msg as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new Error(`the body exceeds the ${limit}-byte limit`);
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/**
 * One GET to a peer, its body read up to `limit` bytes, within `timeoutMs`. `body` is for
 * etcd's GET /members/hashkv, whose HashKVRequest travels in the body of a GET.
 */
export function peerGet(
  url: string,
  path: string,
  tls: TlsContext | undefined,
  timeoutMs: number,
  limit: number,
  body?: { contentType: string; text: string },
): Promise<{ status: number | undefined; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': body.contentType, 'content-length': String(Buffer.byteLength(body.text)) };
    const req = peerRequest(url, path, 'GET', headers, tls);
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res: http.IncomingMessage) => {
      void readText(res, limit).then((text) => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: text });
      });
    });
    req.end(body?.text);
  });
}
