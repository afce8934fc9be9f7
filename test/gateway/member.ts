// A one-member etcd-ts started in-process, with the JSON gateway served over HTTP/1.1
// the way the client port serves it (createHttpHandler with the gateway's routes) from
// the member's own gRPC handler objects.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import pino from 'pino';
import { authService } from '../../src/server/api/auth.js';
import { clusterService } from '../../src/server/api/cluster.js';
import { AuthGate } from '../../src/server/auth/gate.js';
import { Headers } from '../../src/server/api/common.js';
import { kvService } from '../../src/server/api/kv.js';
import { leaseService } from '../../src/server/api/lease.js';
import { maintenanceService } from '../../src/server/api/maintenance.js';
import { watchService } from '../../src/server/api/watch.js';
import { defaultConfig } from '../../src/server/config/index.js';
import { type Etcd, startEtcd } from '../../src/server/etcd.js';
import { createGateway } from '../../src/server/gateway/index.js';
import { createHttpHandler } from '../../src/server/http/index.js';
import { Metrics } from '../../src/server/metrics.js';
import { freePort } from '../../bench/free-port.js';

export interface GatewayMember {
  etcd: Etcd;
  /** the call objects the gateway handed to the Watch handler, in order */
  watchCalls: Array<{ cancelled: boolean }>;
  /** http://127.0.0.1:<port> serving /v3/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startGatewayMember(): Promise<GatewayMember> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gateway-test-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = new URL(`http://127.0.0.1:${clientPort}`);
  const peer = new URL(`http://127.0.0.1:${peerPort}`);
  const cfg = defaultConfig({
    name: 'gw',
    dataDir: path.join(dir, 'data'),
    listenClientUrls: [client],
    advertiseClientUrls: [client],
    listenPeerUrls: [peer],
    initialAdvertisePeerUrls: [peer],
    // Fast elections keep the single member's start short.
    heartbeatInterval: 10,
    electionTimeout: 100,
  });
  const etcd = await startEtcd(cfg, { logger: pino({ level: 'silent' }) });
  await etcd.ready;

  const server = etcd.server;
  const headers = new Headers(server);
  const gate = new AuthGate(server);
  const watch = watchService(server, headers, gate, cfg.experimentalWatchProgressNotifyInterval);
  const watchCalls: Array<{ cancelled: boolean }> = [];
  const services: Record<string, UntypedServiceImplementation> = {
    'etcdserverpb.KV': kvService(server, headers, gate),
    'etcdserverpb.Watch': {
      Watch: (call: { cancelled: boolean }) => {
        watchCalls.push(call);
        (watch['Watch'] as (c: object) => void)(call);
      },
    },
    'etcdserverpb.Lease': leaseService(server, headers, gate),
    'etcdserverpb.Cluster': clusterService(server, headers, gate, {
      clusterToken: cfg.initialClusterToken,
      strictReconfigCheck: cfg.strictReconfigCheck,
    }),
    'etcdserverpb.Maintenance': maintenanceService(server, headers, gate, { hash() {}, hashKV() {}, defragStarted() {}, defragEnded() {} }),
    'etcdserverpb.Auth': authService(server, headers, gate, { bcryptCost: 4, log: pino({ level: 'silent' }) }),
  };
  const routes = createGateway(services, { logger: pino({ level: 'silent' }), maxRequestBytes: cfg.maxRequestBytes });
  const httpServer = http.createServer(
    createHttpHandler({
      health: async () => ({ ok: true, reason: '' }),
      version: () => ({ etcdserver: '3.4.23', etcdcluster: '3.4.0' }),
      metrics: new Metrics(),
      extra: routes,
    }),
  );
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = (httpServer.address() as net.AddressInfo).port;

  return {
    etcd,
    watchCalls,
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await etcd.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: string;
}

/** One plain HTTP/1.1 request (node:http, so headers and trailers are seen as sent). */
export function request(
  url: string,
  pathname: string,
  body: string | Buffer = '',
  opts: { method?: string; headers?: http.OutgoingHttpHeaders } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${pathname}`, { method: opts.method ?? 'POST', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs `body` as JSON and parses the JSON answer. */
export async function post(url: string, pathname: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await request(url, pathname, JSON.stringify(body));
  return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
}

export const b64 = (s: string): string => Buffer.from(s).toString('base64');

/**
 * A streaming POST: the body can be written over time (or ended at once, as curl -d
 * does) and the answer is read line by line.
 */
export class StreamingRequest {
  readonly status: Promise<{ status: number; headers: http.IncomingHttpHeaders }>;
  private readonly req: http.ClientRequest;
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;
  private partial = '';

  constructor(url: string, pathname: string) {
    this.req = http.request(`${url}${pathname}`, { method: 'POST', agent: false });
    this.status = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        resolve({ status: res.statusCode!, headers: res.headers });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parts = (this.partial + chunk).split('\n');
          this.partial = parts.pop()!;
          for (const line of parts) this.push(line);
        });
        res.on('end', () => {
          if (this.partial !== '') this.push(this.partial);
          this.partial = '';
          this.ended = true;
          this.waiting?.(undefined);
        });
        res.on('error', () => undefined);
      });
      this.req.on('error', reject);
    });
    this.req.flushHeaders();
  }

  send(body: unknown): void {
    this.req.write(typeof body === 'string' ? body : JSON.stringify(body));
  }

  endBody(body?: unknown): void {
    this.req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  }

  /** The next line of the answer, or undefined once it ended. */
  next(): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** The next line's {"result":...} object. */
  async result(): Promise<Record<string, unknown>> {
    const line = await this.next();
    if (line === undefined) throw new Error('stream ended');
    const msg = JSON.parse(line) as { result?: Record<string, unknown> };
    if (msg.result === undefined) throw new Error(`not a result: ${line}`);
    return msg.result;
  }

  close(): void {
    this.req.destroy();
  }

  private push(line: string): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w(line);
    else this.lines.push(line);
  }
}
