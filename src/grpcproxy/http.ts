// HTTP/1.1 beside the proxy's gRPC (and on --metrics-addr): /health asks the cluster for
// a key, as etcd's proxy does; /metrics is the first endpoint's metrics, as etcd 3.4's
// proxy serves them, with the proxy's own etcd_grpc_proxy_* figures in place of the
// member's (etcd's members export those families too, always zero). Anything else: 404.

import http from 'node:http';
import https from 'node:https';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Errors } from '../server/errors.js';
import { METRICS_CONTENT_TYPE } from '../server/metrics.js';
import type { ProxyMetrics } from './metrics.js';
import type { Namespace } from './namespace.js';
import type { UpstreamTls } from './tls.js';
import { methodsOf, type Upstream } from './upstream.js';

const Range = methodsOf('etcdserverpb.KV').Range!;
const HEALTH_TIMEOUT_MS = 1_000;
const OWN_FAMILY = /^(# (HELP|TYPE) )?etcd_grpc_proxy_/;

export interface ProxyHttpDeps {
  upstream: Upstream;
  ns: Namespace;
  metrics: ProxyMetrics;
  tls: UpstreamTls | undefined;
  log: Logger;
}

/** etcd's proxy health: a linearizable read of "a" within a second; permission denied counts as an answer. */
async function healthy(d: ProxyHttpDeps): Promise<boolean> {
  try {
    await d.upstream.unary(Range, { key: d.ns.key(Buffer.from('a')) }, new grpc.Metadata(), undefined, HEALTH_TIMEOUT_MS);
    return true;
  } catch (err) {
    return (err as grpc.ServiceError).details === Errors.permissionDenied.message;
  }
}

function memberMetrics(d: ProxyHttpDeps): Promise<string> {
  const url = `${d.upstream.endpoints[0]!.url}/metrics`;
  const get = url.startsWith('https:') ? (u: string, cb: (res: http.IncomingMessage) => void) => https.get(u, { ...d.tls?.https }, cb) : http.get;
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    }).on('error', reject);
  });
}

export function proxyHttpHandler(d: ProxyHttpDeps): http.RequestListener {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/health') {
      void healthy(d).then((ok) => {
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`{"health":"${ok}"}`);
      });
      return;
    }
    if (path === '/metrics') {
      Promise.all([memberMetrics(d), d.metrics.registry.metrics()]).then(
        ([text, own]) => {
          const member = text.split('\n').filter((l) => !OWN_FAMILY.test(l)).join('\n');
          res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
          res.end(`${member.trimEnd()}\n${own}`);
        },
        (err: Error) => {
          d.log.warn({ error: err.message }, 'cannot read the member metrics');
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('Internal server error\n');
        },
      );
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  };
}
