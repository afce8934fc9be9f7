// The node's configuration, one field per etcd 3.4 flag (camelCase of the flag name).
// Values arrive already parsed and validated: URLs are URL objects, durations are
// milliseconds, enumerations are literal unions. The object is frozen once built.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'panic', 'fatal'];

export type InitialClusterState = 'new' | 'existing';
export type AutoCompactionMode = 'periodic' | 'revision';
export type DiscoveryFallback = 'exit' | 'proxy';
export type ProxyMode = 'off' | 'readonly' | 'on';
export type MetricsLevel = 'basic' | 'extensive';
/** etcd 3.4 knows capnslog (default) and zap; etcd-ts always writes zap-shaped JSON lines. */
export type LoggerKind = 'capnslog' | 'zap';
export type FreelistType = 'array' | 'map';

/**
 * What `--auto-compaction-mode`/`--auto-compaction-retention` mean once interpreted:
 * periodic keeps `retentionMs` of history, revision keeps the last `retentionRevisions`.
 */
export type AutoCompaction =
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

export interface EtcdConfig {
  // ── Member ────────────────────────────────────────────────────────────────
  readonly name: string;
  /** `${name}.etcd` unless given */
  readonly dataDir: string;
  /** '' = the WAL lives inside dataDir */
  readonly walDir: string;
  readonly snapshotCount: number;
  /** ms */
  readonly heartbeatInterval: number;
  /** ms */
  readonly electionTimeout: number;
  readonly initialElectionTickAdvance: boolean;
  readonly listenPeerUrls: readonly URL[];
  readonly listenClientUrls: readonly URL[];
  /** 0 = unlimited */
  readonly maxSnapshots: number;
  /** 0 = unlimited */
  readonly maxWals: number;
  /**
   * Effective quota in bytes: etcd's 0 is already turned into its 2 GiB default,
   * and a negative flag value (quota disabled in etcd) becomes Infinity.
   */
  readonly quotaBackendBytes: number;
  /** ms; 0 = backend default */
  readonly backendBatchInterval: number;
  /** 0 = backend default */
  readonly backendBatchLimit: number;
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
  readonly maxConcurrentStreams: number;
  /** ms */
  readonly grpcKeepaliveMinTime: number;
  /** ms; 0 disables */
  readonly grpcKeepaliveInterval: number;
  /** ms; 0 disables */
  readonly grpcKeepaliveTimeout: number;

  // ── Clustering ────────────────────────────────────────────────────────────
  readonly initialAdvertisePeerUrls: readonly URL[];
  /**
   * member name → peer URLs. Defaults to `${name}=${initialAdvertisePeerUrls}`;
   * empty when bootstrapping through discovery.
   */
  readonly initialCluster: ReadonlyMap<string, readonly URL[]>;
  readonly initialClusterState: InitialClusterState;
  readonly initialClusterToken: string;
  readonly advertiseClientUrls: readonly URL[];
  readonly discovery: string;
  readonly discoveryFallback: DiscoveryFallback;
  readonly discoveryProxy: string;
  readonly discoverySrv: string;
  readonly discoverySrvName: string;
  readonly strictReconfigCheck: boolean;
  readonly preVote: boolean;
  readonly autoCompactionMode: AutoCompactionMode;
  /** as given (e.g. "0", "1", "5m", "1000"); see `autoCompaction` for its meaning */
  readonly autoCompactionRetention: string;
  /** null = auto compaction disabled (retention 0) */
  readonly autoCompaction: AutoCompaction | null;
  readonly enableV2: boolean;

  // ── Security ──────────────────────────────────────────────────────────────
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCertAuth: boolean;
  readonly clientCrlFile: string;
  readonly clientCertAllowedHostname: string;
  readonly trustedCaFile: string;
  readonly autoTls: boolean;
  readonly peerCertFile: string;
  readonly peerKeyFile: string;
  readonly peerClientCertAuth: boolean;
  readonly peerTrustedCaFile: string;
  readonly peerCertAllowedCn: string;
  readonly peerCertAllowedHostname: string;
  readonly peerAutoTls: boolean;
  readonly peerCrlFile: string;
  /** Go cipher suite names as given; empty = library defaults */
  readonly cipherSuites: readonly string[];
  /** allowed CORS origins; ['*'] = all */
  readonly cors: readonly string[];
  /** allowed Host headers for insecure HTTP; ['*'] = all */
  readonly hostWhitelist: readonly string[];

  // ── Auth ──────────────────────────────────────────────────────────────────
  /** 'simple' or 'jwt,...options' as etcd takes it */
  readonly authToken: string;
  readonly bcryptCost: number;
  /** seconds */
  readonly authTokenTtl: number;

  // ── Profiling and monitoring ──────────────────────────────────────────────
  readonly enablePprof: boolean;
  readonly metrics: MetricsLevel;
  readonly listenMetricsUrls: readonly URL[];

  // ── Logging ───────────────────────────────────────────────────────────────
  readonly logger: LoggerKind;
  /** 'default' (= stderr), 'stderr', 'stdout' or file paths */
  readonly logOutputs: readonly string[];
  readonly logLevel: LogLevel;

  // ── v2 proxy (accepted, not implemented) ──────────────────────────────────
  readonly proxy: ProxyMode;
  /** ms */
  readonly proxyFailureWait: number;
  /** ms */
  readonly proxyRefreshInterval: number;
  /** ms */
  readonly proxyDialTimeout: number;
  /** ms */
  readonly proxyWriteTimeout: number;
  /** ms */
  readonly proxyReadTimeout: number;

  // ── Experimental ──────────────────────────────────────────────────────────
  readonly experimentalInitialCorruptCheck: boolean;
  /** ms; 0 = off */
  readonly experimentalCorruptCheckTime: number;
  readonly experimentalEnableV2v3: string;
  readonly experimentalBackendBboltFreelistType: FreelistType;
  readonly experimentalEnableLeaseCheckpoint: boolean;
  readonly experimentalEnableLeaseCheckpointPersist: boolean;
  readonly experimentalCompactionBatchLimit: number;
  readonly experimentalPeerSkipClientSanVerification: boolean;
  /** ms */
  readonly experimentalWatchProgressNotifyInterval: number;
  /** ms */
  readonly experimentalWarningApplyDuration: number;
  /** raft log entries kept behind a snapshot for slow followers (etcd 3.5.13's flag; 5000 as etcd 3.4) */
  readonly experimentalSnapshotCatchupEntries: number;

  // ── Unsafe and deprecated ─────────────────────────────────────────────────
  readonly forceNewCluster: boolean;
  readonly unsafeNoFsync: boolean;
  readonly enableGrpcGateway: boolean;
  /** deprecated in etcd 3.4: same as --log-level=debug */
  readonly debug: boolean;
  readonly logPackageLevels: string;
}
