// Every listen URL of a member bound before its data dir is touched, as etcd's StartEtcd
// binds its peer and client listeners (configurePeerListeners, configureClientListeners)
// before NewServer creates anything on disk: a start that fails on a taken port, a socket
// file it cannot create or a certificate it cannot load leaves the data dir as it found it.
// etcd-ts binds the metrics listeners in the same step (etcd 3.4 binds them only after
// NewServer, so a taken metrics port leaves it a member dir). The sockets accept at once;
// their connections are served only once what they are for exists.

import type http from 'node:http';
import type { Logger } from 'pino';
import type { EtcdConfig } from './config/types.js';
import { type GrpcServer, type Listener, groupListenUrls, serveClient, serveMetrics, servePeer } from './listener/index.js';
import type { TlsContext } from './tls.js';

/** What the listeners hand their connections to once the member exists. */
export interface MemberHandlers {
  /** the peer transport's (rafthttp's) handler */
  peer: http.RequestListener;
  /** the client port's HTTP/1.1 side: /health, /version, /metrics, the gateway, v2 */
  client: http.RequestListener;
  /** --listen-metrics-urls: /metrics and /health */
  metrics: http.RequestListener;
  /**
   * Resolves once the member has published itself: client connections wait for it, as
   * etcd's serveClients waits for ReadyNotify. Peer and metrics connections are served as
   * soon as the handlers are given, as etcd serves them right after the server starts.
   */
  published: Promise<void>;
}

/** A client socket and the URLs it serves: an https:// (unixs://) URL and the http:// (unix://) twin it shares its socket with. */
export interface ClientListener {
  listener: Listener;
  urls: string[];
}

export interface MemberListeners {
  readonly peers: readonly Listener[];
  readonly clients: readonly ClientListener[];
  readonly metrics: readonly Listener[];
  /** Starts serving: called once, when the member's server and transport exist. */
  serve(handlers: MemberHandlers): void;
}

export interface ListenerTls {
  peer: TlsContext | undefined;
  client: TlsContext | undefined;
}

/**
 * Binds --listen-peer-urls, --listen-client-urls and --listen-metrics-urls, in etcd's
 * order; if one cannot be bound, closes those already bound and throws etcd's error.
 * gRPC services may be added to `grpcServer` until serve() hands the client connections
 * over.
 */
export async function bindMemberListeners(cfg: EtcdConfig, tls: ListenerTls, grpcServer: GrpcServer, log: Logger): Promise<MemberListeners> {
  let resolveHandlers!: (h: MemberHandlers) => void;
  // Never rejected: a start that fails closes the listeners, which drops the connections they hold.
  const handlers = new Promise<MemberHandlers>((resolve) => (resolveHandlers = resolve));
  const later =
    (pick: (h: MemberHandlers) => http.RequestListener): http.RequestListener =>
    (req, res) =>
      void handlers.then((h) => pick(h)(req, res));
  const published = handlers.then((h) => h.published);

  const peers: Listener[] = [];
  const clients: ClientListener[] = [];
  const metrics: Listener[] = [];
  try {
    log.info({ 'listen-peer-urls': cfg.listenPeerUrls.map((u) => u.href) }, 'configuring peer listeners');
    for (const url of cfg.listenPeerUrls) {
      const peerTls = url.protocol === 'https:' ? tls.peer : undefined;
      peers.push(await servePeer(url, peerTls, later((h) => h.peer), log, undefined, { ready: handlers, checkClientSan: !cfg.experimentalPeerSkipClientSanVerification }));
      warnIfPeersUnauthenticated(peers[peers.length - 1]!.url, cfg, log);
    }
    log.info({ 'listen-client-urls': cfg.listenClientUrls.map((u) => u.href) }, 'configuring client listeners');
    for (const { url, plainToo } of groupListenUrls(cfg.listenClientUrls)) {
      const listener = await serveClient(url, tls.client, grpcServer, later((h) => h.client), log, { ready: published, plainToo });
      const twin = listener.url.replace(/^https:/, 'http:').replace(/^unixs:/, 'unix:');
      clients.push({ listener, urls: plainToo ? [listener.url, twin] : [listener.url] });
    }
    for (const url of cfg.listenMetricsUrls) {
      const metricsTls = url.protocol === 'https:' ? tls.client : undefined;
      metrics.push(await serveMetrics(url, metricsTls, later((h) => h.metrics), log, { ready: handlers, checkClientSan: true }));
    }
  } catch (err) {
    await Promise.all([...peers, ...clients.map((c) => c.listener), ...metrics].map((l) => l.close()));
    throw err;
  }
  return { peers, clients, metrics, serve: resolveHandlers };
}

/**
 * Peers are trusted with the raft log, membership changes and snapshots: whoever can
 * reach a peer port that asks for no client certificate can act as a member. etcd warns
 * about insecure client ports ("... this is strongly discouraged!") but not about peer
 * ports; etcd-ts says it for both.
 */
function warnIfPeersUnauthenticated(url: string, cfg: EtcdConfig, log: Logger): void {
  const secure = url.startsWith('https:');
  if (secure && cfg.peerClientCertAuth) return;
  log.warn(
    { address: url, reason: secure ? 'no --peer-client-cert-auth' : 'plain HTTP' },
    'peer traffic is not authenticated: anyone who can reach this port can act as a cluster member; this is not recommended for production',
  );
}
