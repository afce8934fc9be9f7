// etcd's access controller in front of the client port's HTTP/1.1 handlers (its
// accessController): --host-whitelist, then --cors. gRPC does not pass through it.
//
// A request over plain HTTP whose Host header names a host not on --host-whitelist is
// refused with 421 and etcd's explanation: a web page on another site could otherwise
// reach a member on localhost through a DNS name rebound to 127.0.0.1 (CVE-2018-5702).
// Over TLS every host is taken. The default whitelist, "*", takes every host too.

import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { splitHostPort } from '../config/values.js';

export interface AccessOptions {
  /** --cors: origins a browser may read answers from; empty or "*": any */
  cors: readonly string[];
  /** --host-whitelist: hosts plain HTTP requests may name; empty or "*": any */
  hostWhitelist: readonly string[];
}

/** What etcd answers a request whose host is not whitelisted (its errCVE20185702). */
export function unrecognizedHostMessage(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/** Go's httputil.GetHostname: the Host header without its port, or whole when it does not split. */
function hostname(hostHeader: string): string {
  return splitHostPort(hostHeader)?.host ?? hostHeader;
}

const allowsAny = (list: readonly string[]): boolean => list.length === 0 || list.includes('*');

/**
 * A gate for each request: it answers the request itself (refused, or a CORS preflight)
 * and returns true, or sets the CORS headers and returns false for the handler to go on.
 */
export function accessControl(opts: AccessOptions, logger: Logger | undefined): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const anyHost = allowsAny(opts.hostWhitelist);
  const hosts = new Set(opts.hostWhitelist);
  const anyOrigin = allowsAny(opts.cors);
  const origins = new Set(opts.cors);
  return (req, res) => {
    if (!anyHost && (req.socket as Partial<TLSSocket>).encrypted !== true) {
      const host = hostname(req.headers.host ?? '');
      if (!hosts.has(host)) {
        logger?.warn({ host }, 'rejecting HTTP request to prevent DNS rebinding attacks');
        res.writeHead(421, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
        res.end(`${unrecognizedHostMessage(host)}\n`);
        return true;
      }
    }
    const origin = anyOrigin ? '*' : req.headers.origin;
    if (origin !== undefined && (anyOrigin || origins.has(origin))) {
      res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE');
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(200);
      res.end();
      return true;
    }
    return false;
  };
}
