// `etcd-ts grpc-proxy start`: etcd's gRPC proxy (etcdmain/grpc_proxy.go). It serves the
// etcd v3 API on one address and is itself a client of the cluster: reads from its
// cache, watches coalesced, keep-alives coalesced, the rest passed to the members.

import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { PPROF_PREFIX, ProcessProfiler, pprofRoute } from '../server/http/pprof.js';
import { GrpcServer, GRPC_OVERHEAD_BYTES, type Listener, serveClient, serveMetrics } from '../server/listener/index.js';
import { serviceDefinition } from '../server/pb.js';
import { loadTls, type TlsContext } from '../server/tls.js';
import { RangeCache } from './cache.js';
import { clusterProxy, RegisteredProxies } from './cluster.js';
import { proxyHttpHandler } from './http.js';
import { kvProxy } from './kv.js';
import { LeaderMonitor } from './leader.js';
import { KeepAliveCoalescer, leaseProxy } from './lease.js';
import { electionProxy, lockProxy } from './lock-election.js';
import { ProxyMetrics } from './metrics.js';
import { Namespace } from './namespace.js';
import { passThrough } from './passthrough.js';
import { register } from './register.js';
import { upstreamTls, type UpstreamTlsFlags } from './tls.js';
import { forwardedMetadata, Upstream } from './upstream.js';
import { watchProxy } from './watch.js';
import { WatchRanges } from './watch-broadcast.js';
import { UpstreamWatchStream } from './watch-upstream.js';

/** grpc-go's default receive limit, which etcd's proxy server keeps. */
const SERVER_MAX_RECV_BYTES = 4 * 1024 * 1024;

export interface GrpcProxyConfig {
  endpoints: string[];
  /** host:port */
  listenAddr: string;
  /** what --resolver-prefix registers and the member list shows; '' passes the member list through */
  advertiseClientUrl: string;
  resolverPrefix: string;
  resolverTtl: number;
  namespace: string;
  upstreamTls: UpstreamTlsFlags;
  /** serving TLS: --cert-file, --key-file, --trusted-ca-file, --auto-tls, --listen-cipher-suites, --client-crl-file */
  serveTls: { certFile: string; keyFile: string; trustedCaFile: string; autoTls: boolean; cipherSuites: string[]; crlFile: string };
  dataDir: string;
  /** URL for /metrics and /health on their own, or '' */
  metricsAddr: string;
  maxSendBytes: number;
  maxRecvBytes: number;
  maxConcurrentStreams: number;
  /** --enable-pprof: /debug/pprof/ beside the proxy's gRPC (not on --metrics-addr, as etcd's) */
  enablePprof: boolean;
}

export interface GrpcProxy {
  /** the bound listen address as a URL */
  url: string;
  metrics: ProxyMetrics;
  close(): Promise<void>;
}

async function serveTls(cfg: GrpcProxyConfig, log: Logger): Promise<TlsContext | undefined> {
  const t = cfg.serveTls;
  const files = t.certFile !== '' || t.keyFile !== '' || t.trustedCaFile !== '';
  if (!files && !t.autoTls) return undefined;
  const host = cfg.listenAddr.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const ctx = await loadTls(
    // etcd's proxy loads the CA but never asks clients for a certificate
    { certFile: t.certFile, keyFile: t.keyFile, trustedCaFile: t.trustedCaFile, clientCertAuth: false, autoTls: !files && t.autoTls, cipherSuites: t.cipherSuites, crlFile: t.crlFile },
    path.join(cfg.dataDir, 'fixtures', 'proxy'),
    [host],
    (fields, msg) => log.warn(fields, msg),
  );
  log.info({ 'tls-info': `cert = ${ctx.certFile}, key = ${ctx.keyFile}, trusted-ca = ${t.trustedCaFile}, client-cert-auth = false, crl-file = ${t.crlFile}` }, 'gRPC proxy server TLS');
  return ctx;
}

export async function startGrpcProxy(cfg: GrpcProxyConfig, log: Logger): Promise<GrpcProxy> {
  const tls = await serveTls(cfg, log);
  const grpcServer = new GrpcServer({ maxRequestBytes: SERVER_MAX_RECV_BYTES - GRPC_OVERHEAD_BYTES, maxConcurrentStreams: cfg.maxConcurrentStreams });
  // the HTTP side is ready once the client is: until then it has nothing to ask
  let httpHandler: ReturnType<typeof proxyHttpHandler> = (_req, res) => {
    res.writeHead(503).end();
  };
  const listenUrl = new URL(`${tls ? 'https' : 'http'}://${cfg.listenAddr}`);
  const listeners: Listener[] = [await serveClient(listenUrl, tls, grpcServer, (req, res) => httpHandler(req, res), log)];
  log.info({ address: cfg.listenAddr }, 'listening for gRPC proxy client requests');

  const stops: Array<() => void> = [];
  const close = async (): Promise<void> => {
    await Promise.all(listeners.map((l) => l.close()));
    grpcServer.forceShutdown();
    for (const stop of stops.reverse()) stop();
  };
  try {
    // as etcd, the client is made after the listener: a refused certificate is reported then
    const clientTls = upstreamTls(cfg.upstreamTls);
    if (clientTls !== undefined) {
      if (cfg.upstreamTls.insecureSkipTlsVerify) {
        log.warn('--insecure-skip-tls-verify was given, this grpc proxy process skips authentication of etcd server TLS certificates. This option should be enabled only for testing purposes.');
      }
      log.info({ 'tls-info': clientTls.info }, 'gRPC proxy client TLS');
    }
    const upstream = new Upstream({ endpoints: cfg.endpoints, tls: clientTls?.credentials, maxSendBytes: cfg.maxSendBytes, maxRecvBytes: cfg.maxRecvBytes });
    stops.push(() => upstream.close());
    const metrics = new ProxyMetrics();
    const ns = new Namespace(cfg.namespace);

    const leader = new LeaderMonitor(upstream, log);
    leader.start();
    stops.push(() => leader.close());
    const tokenMetadata = (token: string): grpc.Metadata => forwardedMetadata({ get: (k) => (k === 'token' && token !== '' ? [token] : []) });
    const ranges = new WatchRanges(ns, metrics, (token) => new UpstreamWatchStream(upstream, tokenMetadata(token), log));
    stops.push(() => ranges.close());
    const coalescers = new Map<string, KeepAliveCoalescer>();
    const keepAlives = (token: string): KeepAliveCoalescer => {
      let c = coalescers.get(token);
      if (c === undefined) {
        c = new KeepAliveCoalescer(upstream, tokenMetadata(token), log);
        coalescers.set(token, c);
      }
      return c;
    };
    stops.push(() => {
      for (const c of coalescers.values()) c.close();
    });

    let registered: RegisteredProxies | undefined;
    if (cfg.resolverPrefix !== '') {
      stops.push(register({ upstream, ns, keepAlives: keepAlives(''), prefix: cfg.resolverPrefix, addr: cfg.advertiseClientUrl, ttlSeconds: cfg.resolverTtl, log }));
      if (cfg.advertiseClientUrl !== '') {
        const r = new RegisteredProxies(upstream, ranges.streamFor(''), ns, cfg.resolverPrefix, log);
        r.start();
        stops.push(() => r.stop());
        registered = r;
      }
    }

    const services = {
      'etcdserverpb.KV': kvProxy(upstream, ns, new RangeCache(), metrics),
      'etcdserverpb.Watch': watchProxy({ upstream, ns, ranges, leader }),
      'etcdserverpb.Lease': leaseProxy({ upstream, ns, leader, keepAlives }),
      'etcdserverpb.Cluster': clusterProxy(upstream, cfg.advertiseClientUrl, registered),
      'etcdserverpb.Maintenance': passThrough(upstream, 'etcdserverpb.Maintenance'),
      'etcdserverpb.Auth': passThrough(upstream, 'etcdserverpb.Auth'),
      'v3lockpb.Lock': lockProxy(upstream, ns),
      'v3electionpb.Election': electionProxy(upstream, ns),
    };
    for (const [name, impl] of Object.entries(services)) grpcServer.addService(serviceDefinition(name), impl);
    const proxyHttp = proxyHttpHandler({ upstream, ns, metrics, tls: clientTls, log });
    httpHandler = proxyHttp;
    if (cfg.enablePprof) {
      const profiler = new ProcessProfiler();
      stops.push(() => profiler.close());
      const pprof = pprofRoute(profiler, process.argv.slice(1));
      httpHandler = (req, res) => ((req.url ?? '').startsWith(pprof.prefix) ? pprof.handler(req, res) : proxyHttp(req, res));
      log.info({ path: PPROF_PREFIX }, 'gRPC proxy enabled pprof');
    }

    if (cfg.metricsAddr !== '') {
      const url = new URL(cfg.metricsAddr);
      listeners.push(await serveMetrics(url, url.protocol === 'https:' ? tls : undefined, proxyHttp, log, { checkClientSan: true }));
      log.info({ address: url.href.replace(/\/$/, '') }, 'gRPC proxy listening for metrics');
    }
    log.info({ address: cfg.listenAddr }, 'started gRPC proxy');
    return { url: listeners[0]!.url, metrics, close };
  } catch (err) {
    await close();
    throw err;
  }
}
