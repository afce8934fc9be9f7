// HTTP/1.1 on the client port (and on --listen-metrics-urls): /health, /version, /metrics
// with etcd 3.4's shapes, status codes and headers, plus routes other layers mount
// (the /v3/ JSON gateway, /v2/ when enabled).

import type http from 'node:http';
import type { Logger } from 'pino';
import { METRICS_CONTENT_TYPE, type Metrics } from '../metrics.js';
import { type AccessOptions, accessControl } from './access.js';

export interface HealthResult {
  ok: boolean;
  /** Why not healthy ("no leader", "alarm NOSPACE", ...): logged, not sent (3.4's body has no reason). */
  reason: string;
}

export interface VersionInfo {
  /** The etcd server version whose API this member implements, e.g. "3.4.23". */
  etcdserver: string;
  /** The agreed cluster version, e.g. "3.4.0", or "not_decided" before agreement. */
  etcdcluster: string;
}

export interface Route {
  /** Requests whose path equals this prefix or starts with it (include the trailing slash). */
  prefix: string;
  handler: http.RequestListener;
}

export interface HttpDeps {
  /** Runs etcd's health check; `exclude` lists alarm types to ignore (?exclude=NOSPACE). */
  health(exclude: string[]): Promise<HealthResult>;
  version(): VersionInfo;
  metrics: Metrics;
  extra?: readonly Route[];
  logger?: Logger;
  /** --host-whitelist and --cors; etcd's defaults ("*": any host, any origin) when absent */
  access?: AccessOptions;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

/** The client port's HTTP handler: /health, /version, /metrics and any extra routes. */
export function createHttpHandler(deps: HttpDeps): http.RequestListener {
  return router(
    new Map<string, Handler>([
      ['/health', healthHandler(deps)],
      ['/version', versionHandler(deps)],
      ['/metrics', metricsHandler(deps)],
    ]),
    deps.extra ?? [],
    deps.logger,
    accessControl(deps.access ?? { cors: ['*'], hostWhitelist: ['*'] }, deps.logger),
  );
}

/** What --listen-metrics-urls serve: /metrics and /health only, as etcd does. */
export function createMetricsHttpHandler(deps: Pick<HttpDeps, 'health' | 'metrics' | 'logger'>): http.RequestListener {
  return router(
    new Map<string, Handler>([
      ['/health', healthHandler(deps)],
      ['/metrics', metricsHandler(deps)],
    ]),
    [],
    deps.logger,
    undefined,
  );
}

/**
 * `access`: the client port's gate (access.ts), which may answer a request itself; the
 * metrics port has none, as in etcd.
 */
function router(
  exact: Map<string, Handler>,
  extra: readonly Route[],
  logger: Logger | undefined,
  access: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined,
): http.RequestListener {
  return (req, res) => {
    if (access?.(req, res) === true) return;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      textError(res, 400, '400 Bad Request');
      return;
    }
    const handler = exact.get(url.pathname);
    const route = handler === undefined ? extra.find((r) => url.pathname.startsWith(r.prefix)) : undefined;
    try {
      const done = handler !== undefined ? handler(req, res, url) : route !== undefined ? route.handler(req, res) : textError(res, 404, '404 page not found');
      if (done instanceof Promise) done.catch((err: unknown) => internalError(res, err, logger));
    } catch (err) {
      internalError(res, err, logger);
    }
  };
}

function healthHandler(deps: Pick<HttpDeps, 'health' | 'metrics' | 'logger'>): Handler {
  return async (req, res, url) => {
    if (!allowGet(req, res)) {
      deps.logger?.warn({ 'status-code': 405 }, '/health error');
      return;
    }
    const result = await deps.health(url.searchParams.getAll('exclude'));
    if (result.ok) {
      deps.metrics.healthSuccess.inc();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('{"health":"true"}');
      return;
    }
    deps.metrics.healthFailures.inc();
    deps.logger?.warn({ reason: result.reason, 'status-code': 503 }, '/health error');
    textError(res, 503, '{"health":"false"}');
  };
}

function versionHandler(deps: Pick<HttpDeps, 'version'>): Handler {
  return (req, res) => {
    if (!allowGet(req, res)) return;
    const v = deps.version();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ etcdserver: v.etcdserver, etcdcluster: v.etcdcluster }));
  };
}

function metricsHandler(deps: Pick<HttpDeps, 'metrics'>): Handler {
  return async (_req, res) => {
    const body = await deps.metrics.render();
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
    res.end(body);
  };
}

function allowGet(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method === 'GET') return true;
  res.setHeader('Allow', 'GET');
  textError(res, 405, 'Method Not Allowed');
  return false;
}

/** Go's http.Error: plain text, nosniff, and a trailing newline. */
function textError(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(`${text}\n`);
}

function internalError(res: http.ServerResponse, err: unknown, logger: Logger | undefined): void {
  logger?.warn({ error: err instanceof Error ? err.message : String(err) }, 'HTTP handler failed');
  if (!res.headersSent) textError(res, 500, 'Internal Server Error');
  else res.destroy();
}
