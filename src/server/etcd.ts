// startEtcd: the library entry point (etcd's embed.StartEtcd). It bootstraps the member,
// serves the client API on every --listen-client-urls address and hands back a handle.

import type { Logger } from 'pino';
import { clusterService } from './api/cluster.js';
import { Headers } from './api/common.js';
import { kvService } from './api/kv.js';
import { healthService } from './api/health.js';
import { leaseService } from './api/lease.js';
import { ETCD_API_VERSION, maintenanceService } from './api/maintenance.js';
import { watchService } from './api/watch.js';
import { bootstrap, urlString } from './bootstrap.js';
import type { EtcdConfig } from './config/types.js';
import { createHttpHandler } from './http/index.js';
import { idHex } from './ids.js';
import { type Listener, createGrpcServer, serveClient } from './listener/index.js';
import { createLogger } from './logger.js';
import { serviceDefinition } from './pb.js';
import { EtcdServer } from './server.js';
import { type TlsContext, loadTls } from './tls.js';
import { Metrics } from './metrics.js';

export interface Etcd {
  readonly server: EtcdServer;
  /** the client URLs actually bound (port 0 resolved) */
  readonly clientUrls: string[];
  /** resolves when the member serves clients (it has published itself through raft) */
  readonly ready: Promise<void>;
  /** resolves with the error that stopped the member, or undefined after close() */
  readonly done: Promise<Error | undefined>;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

export async function startEtcd(cfg: EtcdConfig, opts: StartOptions = {}): Promise<Etcd> {
  const log = opts.logger ?? createLogger(cfg);
  log.info(
    { 'etcd-version': ETCD_API_VERSION, 'data-dir': cfg.dataDir, name: cfg.name, 'node-version': process.version },
    'starting an etcd server',
  );
  const b = await bootstrap(cfg, log);
  const server = new EtcdServer(
    {
      name: cfg.name,
      heartbeatMs: cfg.heartbeatInterval,
      electionMs: cfg.electionTimeout,
      snapshotCount: cfg.snapshotCount,
      maxRequestBytes: cfg.maxRequestBytes,
      quotaBackendBytes: cfg.quotaBackendBytes,
      maxTxnOps: cfg.maxTxnOps,
      advertiseClientUrls: cfg.advertiseClientUrls.map(urlString),
    },
    {
      ...b,
      send: (msgs) => log.warn({ count: msgs.length, to: idHex(msgs[0]!.to) }, 'no peer transport: raft messages dropped'),
    },
    log,
  );

  const grpcServer = createGrpcServer({ maxRequestBytes: cfg.maxRequestBytes });
  const headers = new Headers(server);
  grpcServer.addService(serviceDefinition('etcdserverpb.KV'), kvService(server, headers));
  grpcServer.addService(
    serviceDefinition('etcdserverpb.Watch'),
    watchService(server, headers, cfg.experimentalWatchProgressNotifyInterval),
  );
  grpcServer.addService(serviceDefinition('etcdserverpb.Lease'), leaseService(server, headers));
  grpcServer.addService(
    serviceDefinition('etcdserverpb.Cluster'),
    clusterService(server, headers, { clusterToken: cfg.initialClusterToken, strictReconfigCheck: cfg.strictReconfigCheck }),
  );
  grpcServer.addService(serviceDefinition('etcdserverpb.Maintenance'), maintenanceService(server, headers));
  grpcServer.addService(serviceDefinition('grpc.health.v1.Health'), healthService());

  const metrics = new Metrics();
  const http = createHttpHandler({
    health: async (exclude: string[]) => health(server, exclude),
    version: () => ({ etcdserver: ETCD_API_VERSION, etcdcluster: '3.4.0' }),
    metrics,
  });

  const listeners: Listener[] = [];
  let clientTls: TlsContext | undefined;
  try {
    if (cfg.listenClientUrls.some((u) => u.protocol === 'https:')) {
      clientTls = await loadTls(
        {
          certFile: cfg.certFile,
          keyFile: cfg.keyFile,
          trustedCaFile: cfg.trustedCaFile || undefined,
          clientCertAuth: cfg.clientCertAuth,
          autoTls: cfg.autoTls,
        },
        `${cfg.dataDir}/fixtures/client`,
        cfg.listenClientUrls.map((u) => u.hostname),
      );
    }
    for (const url of cfg.listenClientUrls) {
      listeners.push(await serveClient(url, url.protocol === 'https:' ? clientTls : undefined, grpcServer, http, log));
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    await closeParts(server, b);
    throw err;
  }

  server.start();
  let closed = false;
  let resolveDone!: (e: Error | undefined) => void;
  const done = new Promise<Error | undefined>((r) => (resolveDone = r));

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    log.info({ name: cfg.name, 'data-dir': cfg.dataDir }, 'closing etcd server');
    await Promise.all(listeners.map((l) => l.close()));
    grpcServer.forceShutdown();
    await closeParts(server, b);
    log.info({ name: cfg.name }, 'stopped etcd server');
    resolveDone(undefined);
  };

  server.failed.then(async (err) => {
    if (closed) return;
    await close();
    resolveDone(err);
  });

  const ready = server.published.then(() => {
    for (const l of listeners) {
      log.info({ address: l.url }, l.url.startsWith('https') ? 'serving client traffic securely' : 'serving client traffic insecurely; this is strongly discouraged!');
    }
    log.info({ 'local-member-id': idHex(server.memberId) }, 'ready to serve client requests');
  });

  return { server, clientUrls: listeners.map((l) => l.url), ready, done, close };
}

async function closeParts(server: EtcdServer, b: Awaited<ReturnType<typeof bootstrap>>): Promise<void> {
  await server.stop();
  await b.wal.close();
  await b.store.close();
}

/** /health: no alarm (unless excluded), a leader, and a linearizable read within 1 s. */
async function health(server: EtcdServer, exclude: string[]): Promise<{ ok: boolean; reason: string }> {
  const alarms = server.alarms.list().filter((a) => !exclude.includes(a.alarm === 1 ? 'NOSPACE' : 'CORRUPT'));
  if (alarms.length > 0) return { ok: false, reason: 'ALARM' };
  if (server.leader === 0n) return { ok: false, reason: 'RAFT NO LEADER' };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      server.linearizableReadNotify(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 1000))),
    ]);
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: `QGET ERROR ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

