// startEtcd: the library entry point (etcd's embed.StartEtcd). In etcd's order: it loads
// the TLS material and binds every listen URL, only then bootstraps the member from its
// data dir, connects it to its peers, serves the client API on every --listen-client-urls
// address and hands back a handle.

import type { Logger } from 'pino';
import { Compactor, DEFAULT_COMPACTION_BATCH_LIMIT } from '../mvcc/index.js';
import { WAL, createNodeDisk, purgeFiles } from '../wal/index.js';
import { authService } from './api/auth.js';
import { AuthGate } from './auth/gate.js';
import { clusterService, memberOps } from './api/cluster.js';
import { Headers } from './api/common.js';
import { electionService } from './api/election.js';
import { healthService } from './api/health.js';
import { kvService } from './api/kv.js';
import { leaseService } from './api/lease.js';
import { lockService } from './api/lock.js';
import { ETCD_API_VERSION, maintenanceService } from './api/maintenance.js';
import { watchService } from './api/watch.js';
import { type BootstrapResult, bootstrap, dataDirLayout } from './bootstrap.js';
import { clusterToken } from './initial-cluster.js';
import type { StartStep } from './start-steps.js';
import { ClusterVersionMonitor, MONITOR_VERSION_INTERVAL_MS, NOT_DECIDED } from './cluster-version.js';
import { proposeClusterVersion } from './publish.js';
import { MemberClient } from './concurrency/client.js';
import { CorruptionMonitor, checkInitialHashKV } from './corrupt.js';
import type { EtcdConfig } from './config/types.js';
import { urlString } from './config/values.js';
import { createGateway } from './gateway/index.js';
import { createHttpHandler, createMetricsHttpHandler } from './http/index.js';
import { PPROF_PREFIX, ProcessProfiler, pprofRoute } from './http/pprof.js';
import { idHex } from './ids.js';
import { GrpcServer, type Listener } from './listener/index.js';
import { createLogger, moduleLogger } from './logger.js';
import { bindMemberListeners } from './member-listeners.js';
import { Metrics, grpcCallMetrics } from './metrics.js';
import { observeServer } from './observe.js';
import { serviceDefinition } from './pb.js';
import { EtcdServer } from './server.js';
import { encodeStoreRequest } from './v2request.js';
import { keyStoreRequest } from './v2store/index.js';
import { type TlsContext, loadTls } from './tls.js';
import { Transport, fetchPeerHashKV, fetchServerVersion } from './transport/index.js';
import { AlarmAction, AlarmType, alarmName } from './alarms.js';
import { uint64 } from './pb.js';
import { JwtTokens, decomposeAuthToken } from './auth/jwt-token.js';
import { V2AuthStore } from './v2auth/store.js';
import { V2Access } from './v2http/access.js';
import { type V2Deps, v2Routes } from './v2http/index.js';
import { WalWriteMode } from './wal-write-mode.js';

export interface Etcd {
  readonly server: EtcdServer;
  /** the client URLs actually bound (port 0 resolved) */
  readonly clientUrls: string[];
  /** the peer URLs actually bound */
  readonly peerUrls: string[];
  /** resolves when the member serves clients (it has published itself through raft) */
  readonly ready: Promise<void>;
  /** resolves with the error that stopped the member, or undefined after close() */
  readonly done: Promise<Error | undefined>;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** called after each durable step of the start (START_STEPS), before the next begins */
  onStartStep?: (step: StartStep) => void;
}

/** etcd purges old WAL segments and snap files on this period. */
const PURGE_INTERVAL_MS = 30_000;

function tlsFor(
  cfg: EtcdConfig,
  side: 'client' | 'peer',
  urls: readonly URL[],
  log: Logger,
): Promise<TlsContext> | undefined {
  const info =
    side === 'client'
      ? {
          certFile: cfg.certFile, keyFile: cfg.keyFile, trustedCaFile: cfg.trustedCaFile, clientCertAuth: cfg.clientCertAuth, autoTls: cfg.autoTls,
          crlFile: cfg.clientCrlFile, allowedHostname: cfg.clientCertAllowedHostname,
        }
      : {
          certFile: cfg.peerCertFile, keyFile: cfg.peerKeyFile, trustedCaFile: cfg.peerTrustedCaFile, clientCertAuth: cfg.peerClientCertAuth, autoTls: cfg.peerAutoTls,
          crlFile: cfg.peerCrlFile, allowedCn: cfg.peerCertAllowedCn, allowedHostname: cfg.peerCertAllowedHostname,
        };
  const wanted = urls.some((u) => u.protocol === 'https:') || info.certFile !== '' || info.autoTls;
  if (!wanted) return undefined;
  return loadTls(
    { ...info, trustedCaFile: info.trustedCaFile || undefined, cipherSuites: cfg.cipherSuites },
    `${cfg.dataDir}/fixtures/${side}`,
    urls.map((u) => u.hostname),
    (fields, msg) => log.warn(fields, msg),
  );
}

export async function startEtcd(cfg: EtcdConfig, opts: StartOptions = {}): Promise<Etcd> {
  const log = opts.logger ?? createLogger(cfg);
  log.info(
    { 'etcd-version': ETCD_API_VERSION, 'data-dir': cfg.dataDir, name: cfg.name, 'node-version': process.version },
    'starting an etcd server',
  );
  const metrics = new Metrics();
  // the lines etcd's embed package writes (--log-package-levels names it)
  const embedLog = moduleLogger(log, 'embed/etcd.ts');
  // etcd's words, as it configures its client listeners (--debug serves the profiles too, unannounced)
  if (cfg.enablePprof) embedLog.info({ path: PPROF_PREFIX }, 'pprof is enabled');
  // Everything that can fail on a port, a certificate or a key file comes before the data
  // dir (auto TLS aside, whose certificates live in it, as etcd keeps them).
  const jwt = jwtTokens(cfg.authToken, log);
  const peerTls = await tlsFor(cfg, 'peer', [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls], log);
  const clientTls = await tlsFor(cfg, 'client', cfg.listenClientUrls, log);
  const grpcServer = new GrpcServer({
    maxRequestBytes: cfg.maxRequestBytes,
    maxConcurrentStreams: cfg.maxConcurrentStreams,
    keepaliveTimeMs: cfg.grpcKeepaliveInterval,
    keepaliveTimeoutMs: cfg.grpcKeepaliveTimeout,
    // etcd sets no policy at 0, and grpc-go's own applies
    keepaliveMinTimeMs: cfg.grpcKeepaliveMinTime > 0 ? cfg.grpcKeepaliveMinTime : undefined,
    observe: grpcCallMetrics(metrics),
  });
  const listeners = await bindMemberListeners(cfg, { peer: peerTls, client: clientTls }, grpcServer, log);
  const clientListeners = listeners.clients.map((c) => c.listener);
  /** closed once the server has stopped: a stopping leader still commits its last lease checkpoint through its peers */
  const otherListeners = [...listeners.peers, ...listeners.metrics];
  // etcd runs the initial corruption check only on a member that has a WAL to restart from
  const memberInitialized = WAL.exists(dataDirLayout(cfg).walDir);
  const walWriteMode = new WalWriteMode(() => metrics.grpcCalls.receivedNotWrites);
  let b: BootstrapResult;
  try {
    b = await bootstrap(cfg, log, peerTls, {
      walDisk: createNodeDisk({ durableWriteMayBlock: walWriteMode.mayBlock }),
      onWalFsync: (s) => {
        metrics.walFsyncDuration.observe(s);
        walWriteMode.synced(s);
      },
      onWalWrite: (n) => metrics.walWriteBytes.inc(n),
      onSnapFsync: (s) => metrics.snapFsyncDuration.observe(s),
      onSnapMarshalled: (s) => metrics.snapSaveMarshallingDuration.observe(s),
      onSnapSaved: (s) => metrics.snapSaveTotalDuration.observe(s),
      compaction: {
        // etcd takes 0 for its default
        batchLimit: cfg.experimentalCompactionBatchLimit > 0 ? cfg.experimentalCompactionBatchLimit : DEFAULT_COMPACTION_BATCH_LIMIT,
        onBatch: (ms) => metrics.dbCompactionPause.observe(ms),
        onJob: (ms) => metrics.dbCompactionTotal.observe(ms),
        onIndex: (ms) => metrics.indexCompactionPause.observe(ms),
      },
      onStep: opts.onStartStep,
    });
  } catch (err) {
    await closeAll([...clientListeners, ...otherListeners]);
    throw err;
  }

  let transport!: Transport;
  const ownHashKV = (rev: number) => server.read((store) => store.hashKV(rev));
  const server = new EtcdServer(
    {
      name: cfg.name,
      heartbeatMs: cfg.heartbeatInterval,
      electionMs: cfg.electionTimeout,
      initialElectionTickAdvance: cfg.initialElectionTickAdvance,
      snapshotCount: cfg.snapshotCount,
      snapshotCatchUpEntries: cfg.experimentalSnapshotCatchupEntries,
      warningApplyMs: cfg.experimentalWarningApplyDuration,
      maxRequestBytes: cfg.maxRequestBytes,
      quotaBackendBytes: cfg.quotaBackendBytes,
      maxTxnOps: cfg.maxTxnOps,
      advertiseClientUrls: cfg.advertiseClientUrls.map(urlString),
      backendBatchIntervalMs: cfg.backendBatchInterval > 0 ? cfg.backendBatchInterval : 100,
      backendBatchLimit: cfg.backendBatchLimit > 0 ? cfg.backendBatchLimit : 10_000,
      authTokenTtlMs: cfg.authTokenTtl * 1000,
      jwt,
    },
    {
      ...b,
      send: (msgs) => transport.send(msgs),
      onBackendCommit: (s) => metrics.backendCommitDuration.observe(s),
      onBackendSnapshot: (s) => metrics.backendSnapshotDuration.observe(s),
      onSnapshotDbSaved: (times) => {
        metrics.snapDbFsyncDuration.observe(times.fsyncSeconds);
        metrics.snapDbSaveDuration.observe(times.totalSeconds);
      },
      peers: {
        add: (id, urls) => transport.addPeer(id, urls),
        update: (id, urls) => transport.updatePeer(id, urls),
        remove: (id) => transport.removePeer(id),
        activeSince: (id) => transport.activeSince(id),
        canSendTo: (id) => transport.canSendTo(id),
      },
    },
    log,
  );
  transport = new Transport({
    localId: b.memberId,
    clusterId: b.clusterId,
    tls: peerTls,
    raft: server.raftHandle(),
    snapshots: server.snapshotHooks(),
    logger: log.child({ caller: 'rafthttp' }),
    version: ETCD_API_VERSION,
    peerUrls: cfg.initialAdvertisePeerUrls.map(urlString),
    clusterVersion: () => server.membership.version(),
    members: () => server.membership.list(),
    isRemoved: (id) => server.membership.isRemoved(id),
    onRemoved: () => server.removedFromCluster(),
    leaderRpc: server.leaderRpc,
    applyWait: (ms) => server.waitApplied(server.committed, ms),
    hashKV: ownHashKV,
    onPeerRoundTrip: (id, seconds) => metrics.peerRoundTripTime.labels({ To: idHex(id) }).observe(seconds),
  });
  const corruptCheck = {
    localId: b.memberId,
    log,
    requestTimeoutMs: server.requestTimeoutMs(),
    hashKV: ownHashKV,
    members: () => server.membership.list(),
    fetchHashKV: (url: string, rev: number, ms: number) => fetchPeerHashKV(url, rev, peerTls, ms),
    isLeader: () => server.isLeader,
    linearizableReadNotify: () => server.linearizableReadNotify(),
    // etcd 3.4 cannot tell which member is corrupt and raises the alarm for member 0
    raiseCorruptAlarm: async () => {
      await server.proposals.propose({ kind: 'alarm', body: { action: AlarmAction.ACTIVATE, memberID: uint64(0n), alarm: AlarmType.CORRUPT } });
    },
  };
  const corruptionMonitor = cfg.experimentalCorruptCheckTime > 0 ? new CorruptionMonitor(corruptCheck, cfg.experimentalCorruptCheckTime) : undefined;
  server.setForwarder((leader, timeoutMs) => transport.forwardTo(leader, timeoutMs));
  for (const p of b.initialPeers) if (p.id !== b.memberId) transport.addPeer(p.id, p.peerUrls);

  const headers = new Headers(server);
  const clusterOptions = { clusterToken: clusterToken(cfg), strictReconfigCheck: cfg.strictReconfigCheck };
  // Lock and Election run etcd's concurrency recipes on this member, as its clients would.
  const memberClient = new MemberClient(server);
  const gate = new AuthGate(server, { clientCertAuth: cfg.clientCertAuth });
  // One implementation per service, served over gRPC and over the JSON gateway alike.
  const services = {
    'etcdserverpb.KV': kvService(server, headers, gate),
    'etcdserverpb.Watch': watchService(server, headers, gate, cfg.experimentalWatchProgressNotifyInterval),
    'etcdserverpb.Lease': leaseService(server, headers, gate),
    'etcdserverpb.Cluster': clusterService(server, headers, gate, clusterOptions),
    'etcdserverpb.Maintenance': maintenanceService(server, headers, gate, {
      hash: (s) => metrics.hashDuration.observe(s),
      hashKV: (s) => metrics.hashRevDuration.observe(s),
      defragStarted: () => metrics.defragInflight.set(1),
      defragEnded: (s) => {
        metrics.defragInflight.set(0);
        metrics.backendDefragDuration.observe(s);
      },
      snapshot: (s) => metrics.backendSnapshotDuration.observe(s),
    }, log.child({ caller: 'maintenance' })),
    'etcdserverpb.Auth': authService(server, headers, gate, { bcryptCost: cfg.bcryptCost, log: log.child({ caller: 'auth' }) }),
    'v3lockpb.Lock': lockService(server, headers, memberClient),
    'v3electionpb.Election': electionService(server, headers, memberClient),
  };
  for (const [name, impl] of Object.entries(services)) grpcServer.addService(serviceDefinition(name), impl);
  grpcServer.addService(serviceDefinition('grpc.health.v1.Health'), healthService());

  const healthCheck = (exclude: string[]) => health(server, exclude, metrics);
  const profiler = cfg.enablePprof || cfg.debug ? new ProcessProfiler() : undefined;
  const http = createHttpHandler({
    health: healthCheck,
    version: () => ({ etcdserver: ETCD_API_VERSION, etcdcluster: server.membership.version() ?? NOT_DECIDED }),
    metrics,
    logger: log,
    access: { cors: cfg.cors, hostWhitelist: cfg.hostWhitelist },
    extra: [
      ...(cfg.enableGrpcGateway
        ? createGateway(services, { logger: log, maxRequestBytes: cfg.maxRequestBytes, maxConcurrentStreams: cfg.maxConcurrentStreams })
        : []),
      // etcd 3.4 serves the v2 API only when asked to
      ...(cfg.enableV2 ? v2Routes(v2Deps(server, cfg, memberOps(server, clusterOptions), log)) : []),
      ...(profiler ? [pprofRoute(profiler, process.argv.slice(1))] : []),
    ],
  });
  metrics.setIdentity({ serverVersion: ETCD_API_VERSION, memberId: b.memberId });
  metrics.readFrom({
    mvcc: () => server.store.stats,
    watch: () => server.store.watchStats(),
    lease: () => server.lessor.stats,
    leasesExpired: () => server.stats.leasesExpired,
    authRevision: () => server.auth.revision,
  });
  server.lessor.onGrant((ttl) => metrics.leaseTtl.observe(ttl));
  const versionMonitor = new ClusterVersionMonitor({
    localId: b.memberId,
    serverVersion: ETCD_API_VERSION,
    log,
    isLeader: () => server.isLeader,
    members: () => server.membership.list(),
    current: () => server.membership.version(),
    fetchServerVersion: (m) => fetchServerVersion(m.peerUrls, peerTls, MONITOR_VERSION_INTERVAL_MS / 2),
    propose: (v) => proposeClusterVersion(server.proposals, v),
  });
  server.onFirstCommitInTerm(() => versionMonitor.check());

  const stopObserving = observeServer(
    metrics,
    server,
    (id) => transport.peerCounters(id),
    (id) => transport.activeSince(id) !== undefined,
  );
  const compactor = cfg.autoCompaction
    ? new Compactor({
        policy:
          cfg.autoCompaction.mode === 'periodic'
            ? { mode: 'periodic', periodMs: cfg.autoCompaction.retentionMs }
            : { mode: 'revision', retain: cfg.autoCompaction.retentionRevisions },
        currentRevision: () => server.store.currentRevision,
        compact: async (rev) => {
          await server.proposals.propose({ kind: 'compaction', body: { revision: rev, physical: false } });
        },
        logger: log.child({ caller: 'compactor' }),
      })
    : undefined;
  const purgeTimer = setInterval(() => void purge(cfg, b, log), PURGE_INTERVAL_MS);
  purgeTimer.unref();
  server.onSnapshot(() => void purge(cfg, b, log));

  let closed = false;
  let resolveDone!: (e: Error | undefined) => void;
  const done = new Promise<Error | undefined>((r) => (resolveDone = r));

  /** `writeEtcdDb`: a requested stop, which leaves etcd's bbolt file at the applied index */
  const shutdown = async (cause?: Error, writeEtcdDb = false): Promise<void> => {
    if (closed) return;
    closed = true;
    log.info({ name: cfg.name, 'data-dir': cfg.dataDir }, 'closing etcd server');
    clearInterval(purgeTimer);
    compactor?.stop();
    versionMonitor.stop();
    corruptionMonitor?.stop();
    stopObserving();
    await closeAll(clientListeners);
    profiler?.close();
    grpcServer.forceShutdown();
    await server.stop();
    // the key index saved beside the store, so the next start need not read every record:
    // before the bbolt export, which a stop timeout's SIGKILL may cut short
    await server.store.seal({ saveIndex: true });
    if (writeEtcdDb) await server.writeEtcdDbAtStop();
    await closeAll(otherListeners);
    await transport.stop();
    await b.wal.close();
    await server.store.close();
    log.info({ name: cfg.name }, 'stopped etcd server');
    resolveDone(cause);
  };

  if (memberInitialized && cfg.experimentalInitialCorruptCheck) {
    // before serving peers or clients, as etcd: a member whose store differs from its peers' at the same revision stays down
    try {
      await checkInitialHashKV(corruptCheck);
    } catch (err) {
      await shutdown();
      throw err;
    }
  }
  listeners.serve({
    peer: transport.handler,
    client: http,
    metrics: createMetricsHttpHandler({ health: healthCheck, metrics, logger: log }),
    published: server.published,
  });
  server.start();
  versionMonitor.start();
  corruptionMonitor?.start();
  if (compactor) {
    compactor.start();
    compactor.pause();
    server.onLeaderChange(() => (server.isLeader ? compactor.resume() : compactor.pause()));
  }
  void server.failed.then((err) =>
    shutdown(err).catch((closeErr: unknown) => {
      // The disk that failed the member often fails its last writes too (a full disk):
      // the member still ends, with the error that stopped it.
      log.error({ error: closeErr instanceof Error ? closeErr.message : String(closeErr) }, 'failed to close etcd server cleanly');
      resolveDone(err);
    }),
  );
  void server.removed.then(() => shutdown());

  const ready = server.published.then(() => {
    opts.onStartStep?.('published');
    for (const { urls } of listeners.clients) {
      for (const url of urls) {
        embedLog.info(
          { address: url },
          /^(https|unixs):/.test(url) ? 'serving client traffic securely' : 'serving client traffic insecurely; this is strongly discouraged!',
        );
      }
    }
    embedLog.info({ 'local-member-id': idHex(server.memberId) }, 'ready to serve client requests');
  });

  return {
    server,
    clientUrls: listeners.clients.flatMap((c) => c.urls),
    peerUrls: listeners.peers.map((l) => l.url),
    ready,
    done,
    close: () => shutdown(undefined, true),
  };
}

async function closeAll(listeners: readonly Listener[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.close()));
}

/** The JWT provider --auth-token asks for (the options were checked with the configuration). */
function jwtTokens(option: string, log: Logger): JwtTokens | undefined {
  const { type, options } = decomposeAuthToken(option);
  if (type !== 'jwt') return undefined;
  return JwtTokens.load(options, (keys) => log.warn({ keys }, 'unknown JWT options'));
}

/** What the v2 API reads and changes: the member's v2 store (v2 auth's users and roles too), membership and raft state. */
function v2Deps(server: EtcdServer, cfg: EtcdConfig, ops: ReturnType<typeof memberOps>, log: Logger): V2Deps {
  const authLog = log.child({ caller: 'v2auth' });
  const auth = new V2AuthStore({ get: (path) => server.v2store.get(path, false, false), propose: (r) => server.proposals.proposeV2Store(r) }, authLog);
  const startTime = Date.now();
  let leaderSince = startTime;
  server.onLeaderChange(() => (leaderSince = Date.now()));
  return {
    store: server.v2store,
    propose: (r) => server.proposals.proposeV2Store(r),
    clusterId: () => idHex(server.clusterId),
    raftIndex: () => server.committed,
    raftTerm: () => server.raftTerm,
    members: () => server.membership.list(),
    isRemoved: (id) => server.membership.isRemoved(id),
    leader: () => server.leader,
    add: (urls) => ops.add(urls, false),
    remove: (id) => ops.remove(id),
    update: (id, urls) => ops.update(id, urls),
    storeStats: () => server.v2store.jsonStats(),
    access: new V2Access(auth, cfg.clientCertAuth, authLog),
    name: cfg.name,
    memberId: server.memberId,
    startTime,
    isLeader: () => server.isLeader,
    leaderSince: () => leaderSince,
    followers: () => server.membership.voters().map((m) => m.id).filter((id) => id !== server.memberId),
  };
}

/** Keeps at most --max-wals segments and --max-snapshots snap files. */
async function purge(cfg: EtcdConfig, b: BootstrapResult, log: Logger): Promise<void> {
  try {
    await purgeFiles(b.layout.walDir, '.wal', cfg.maxWals, { logger: log });
    await purgeFiles(b.layout.snapDir, '.snap', cfg.maxSnapshots, { logger: log });
  } catch (err) {
    log.warn({ error: (err as Error).message }, 'failed to purge old WAL or snap files');
  }
}

/** What /health proposes, as etcd 3.4's: a v2 QGET of the root, through raft. */
const HEALTH_QGET = keyStoreRequest('QGET', '');
const HEALTH_TIMEOUT_MS = 1000;

/**
 * /health: no alarm (unless excluded), a leader, and a QGET committed and applied within
 * 1 s. A raft entry, as etcd's check makes one, so a member whose writes are stuck (a
 * stalled disk, no quorum to commit with) is unhealthy, not only one without a leader.
 */
async function health(server: EtcdServer, exclude: string[], metrics: Metrics): Promise<{ ok: boolean; reason: string }> {
  const result = await checkHealth(server, exclude);
  (result.ok ? metrics.healthSuccess : metrics.healthFailures).inc();
  return result;
}

async function checkHealth(server: EtcdServer, exclude: string[]): Promise<{ ok: boolean; reason: string }> {
  const alarms = server.alarms.list().filter((a) => !exclude.includes(alarmName(a.alarm)));
  if (alarms.length > 0) return { ok: false, reason: 'ALARM' };
  if (server.leader === 0n) return { ok: false, reason: 'RAFT NO LEADER' };
  try {
    await server.proposals.proposeV2((id) => encodeStoreRequest(id, HEALTH_QGET), HEALTH_TIMEOUT_MS);
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: `QGET ERROR ${(err as Error).message}` };
  }
}
