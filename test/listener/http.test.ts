import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpHandler, createMetricsHttpHandler, type HealthResult } from '../../src/server/http/index.js';
import { GrpcServer, serveClient, serveMetrics, type Listener } from '../../src/server/listener/index.js';
import { METRICS_CONTENT_TYPE, Metrics } from '../../src/server/metrics.js';
import { captureLogger } from './helpers.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP endpoints (shapes as served by etcd 3.4.23)', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  let healthResult: HealthResult = { ok: true, reason: '' };
  const excludes: string[][] = [];

  async function start(): Promise<{ url: string; metrics: Metrics; lines: Array<Record<string, unknown>> }> {
    const metrics = new Metrics();
    metrics.setIdentity({ serverVersion: '3.4.23' });
    const { logger, lines } = captureLogger();
    const handler = createHttpHandler({
      health: async (exclude) => {
        excludes.push([...exclude]);
        if (healthResult.reason === 'throw') throw new Error('boom');
        return healthResult;
      },
      version: () => ({ etcdserver: '3.4.23', etcdcluster: '3.4.0' }),
      metrics,
      extra: [{ prefix: '/v3/', handler: (req, res) => res.end(`gateway ${req.method} ${req.url}`) }],
      logger,
    });
    const server = new GrpcServer({ maxRequestBytes: 1024 });
    const l: Listener = await serveClient(new URL('http://127.0.0.1:0'), undefined, server, handler, logger);
    cleanups.push(async () => {
      await l.close();
      server.forceShutdown();
    });
    return { url: l.url, metrics, lines };
  }

  it('GET /health: 200 {"health":"true"} as text/plain, with CORS headers', async () => {
    healthResult = { ok: true, reason: '' };
    const { url, metrics } = await start();
    const r = await request(`${url}/health`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"health":"true"}');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-methods']).toBe('POST, GET, OPTIONS, PUT, DELETE');
    expect(r.headers['access-control-allow-headers']).toBe('accept, content-type, authorization');
    expect((await metrics.healthSuccess.get()).values[0]!.value).toBe(1);
  });

  it('unhealthy: 503 {"health":"false"} and a logged reason; ?exclude=NOSPACE reaches the check', async () => {
    healthResult = { ok: false, reason: 'no leader' };
    const { url, metrics, lines } = await start();
    excludes.length = 0;
    const r = await request(`${url}/health?exclude=NOSPACE`);
    expect(r.status).toBe(503);
    expect(r.body).toBe('{"health":"false"}\n');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(excludes).toEqual([['NOSPACE']]);
    expect((await metrics.healthFailures.get()).values[0]!.value).toBe(1);
    expect(lines.some((l) => l.msg === '/health error' && l.reason === 'no leader')).toBe(true);
  });

  it('non-GET /health and /version: 405 with Allow: GET', async () => {
    healthResult = { ok: true, reason: '' };
    const { url } = await start();
    for (const path of ['/health', '/version']) {
      const r = await request(`${url}${path}`, 'POST');
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET');
      expect(r.body).toBe('Method Not Allowed\n');
    }
  });

  it('GET /version: the JSON etcd serves', async () => {
    const { url } = await start();
    const r = await request(`${url}/version`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body).toBe('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
  });

  it('GET /metrics: Prometheus text format 0.0.4', async () => {
    const { url, metrics } = await start();
    metrics.hasLeader.set(1);
    const r = await request(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(METRICS_CONTENT_TYPE);
    expect(r.body).toContain('# TYPE etcd_server_has_leader gauge\netcd_server_has_leader 1\n');
    expect(r.body).toContain('etcd_server_version{server_version="3.4.23"} 1\n');
  });

  it('unknown paths 404 like Go, extra routes by prefix, OPTIONS preflight, failing checks 500', async () => {
    const { url } = await start();
    const missing = await request(`${url}/nothing`);
    expect(missing).toMatchObject({ status: 404, body: '404 page not found\n' });
    expect((await request(`${url}/health/x`)).status).toBe(404);
    expect((await request(`${url}/v3/kv/range`, 'POST')).body).toBe('gateway POST /v3/kv/range');
    const options = await request(`${url}/health`, 'OPTIONS');
    expect(options).toMatchObject({ status: 200, body: '' });
    expect(options.headers['access-control-allow-origin']).toBe('*');
    healthResult = { ok: true, reason: 'throw' };
    expect((await request(`${url}/health`)).status).toBe(500);
  });

  it('--listen-metrics-urls serve /metrics and /health only, without CORS headers', async () => {
    healthResult = { ok: true, reason: '' };
    const metrics = new Metrics();
    const { logger, lines } = captureLogger();
    const handler = createMetricsHttpHandler({ health: async () => healthResult, metrics, logger });
    const l = await serveMetrics(new URL('http://127.0.0.1:0'), undefined, handler, logger);
    cleanups.push(() => l.close());
    const m = await request(`${l.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toContain('# TYPE process_cpu_seconds_total counter');
    expect(m.headers['access-control-allow-origin']).toBeUndefined();
    expect(await request(`${l.url}/health`)).toMatchObject({ status: 200, body: '{"health":"true"}' });
    expect((await request(`${l.url}/version`)).status).toBe(404);
    expect(lines.some((x) => x.msg === 'serving metrics' && x.address === l.url)).toBe(true);
  });
});
