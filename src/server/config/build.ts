// From flag values (command line + ETCD_*, a config file, or library overrides) to a
// frozen EtcdConfig: defaults filled in, derived values computed as etcd derives them
// (data dir from the name, initial cluster from the advertised peer URLs), then checked.

import { AuthTokenErrors, JwtTokens, decomposeAuthToken } from '../auth/jwt-token.js';
import { FLAGS_BY_NAME, flagToKey, parseFlagValue, type FlagValue } from './flags.js';
import type { AutoCompaction, AutoCompactionMode, EtcdConfig, LogLevel, LoggerKind } from './types.js';
import { parseGoDuration, parseGoInt, parseInitialCluster, INT64_MAX, type Parsed } from './values.js';

/** etcd's default backend quota (DefaultQuotaBytes), used when the flag is 0. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd refuses election timeouts above this (maxElectionMs). */
export const MAX_ELECTION_MS = 50_000;

/** Where the values came from: etcd applies a few rules only to flags. */
export type ConfigSource = 'flags' | 'file' | 'library';

export type BuildResult = { readonly ok: true; readonly config: EtcdConfig } | { readonly ok: false; readonly error: string };

/** The default of a flag, parsed like any other value (the table holds valid defaults). */
function defaultValue(name: string): FlagValue {
  const spec = FLAGS_BY_NAME.get(name);
  if (spec === undefined) throw new Error(`no flag --${name}`);
  const v = parseFlagValue(spec, spec.default);
  if (!v.ok) throw new Error(`bad default for --${name}: ${v.reason}`);
  return v.value;
}

class Values {
  constructor(private readonly given: ReadonlyMap<string, FlagValue>) {}
  has(name: string): boolean {
    return this.given.has(name);
  }
  private get(name: string): FlagValue {
    return this.given.get(name) ?? defaultValue(name);
  }
  str(name: string): string {
    const v = this.get(name);
    if (typeof v !== 'string') throw new Error(`--${name} is not a string flag`);
    return v;
  }
  num(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number') throw new Error(`--${name} is not a numeric flag`);
    return v;
  }
  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== 'boolean') throw new Error(`--${name} is not a bool flag`);
    return v;
  }
  urls(name: string): readonly URL[] {
    const v = this.get(name);
    if (!Array.isArray(v) || v.some((x) => !(x instanceof URL))) throw new Error(`--${name} is not a URL list flag`);
    return v as readonly URL[];
  }
  list(name: string): readonly string[] {
    const v = this.get(name);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`--${name} is not a list flag`);
    return v as readonly string[];
  }
}

/**
 * etcd's parseCompactionRetention: a bare non-negative integer is hours (periodic) or
 * revisions (revision); periodic also takes a Go duration.
 */
export function parseAutoCompaction(mode: AutoCompactionMode, retention: string): Parsed<AutoCompaction | null> {
  const asInt = /^\+?[0-9]+$/.test(retention) ? parseGoInt(retention.replace(/^\+/, '').replace(/^0+(?=.)/, ''), 0n, INT64_MAX) : undefined;
  if (mode === 'revision') {
    if (asInt === undefined || !asInt.ok) {
      return { ok: false, reason: `error parsing CompactionRetention: ${JSON.stringify(retention)} is not a number of revisions (--auto-compaction-mode=revision takes an integer)` };
    }
    return { ok: true, value: asInt.value === 0 ? null : { mode, retentionRevisions: asInt.value } };
  }
  let ms: number;
  if (asInt !== undefined && asInt.ok) ms = asInt.value * 3_600_000;
  else {
    const d = parseGoDuration(retention);
    if (!d.ok) return { ok: false, reason: `error parsing CompactionRetention: ${d.reason}` };
    ms = d.value;
  }
  if (ms < 0) return { ok: false, reason: `error parsing CompactionRetention: negative retention ${JSON.stringify(retention)}` };
  return { ok: true, value: ms === 0 ? null : { mode, retentionMs: ms } };
}

function autoCompactionMode(s: string): AutoCompactionMode | undefined {
  return s === 'periodic' || s === 'revision' ? s : undefined;
}

function isLoggerKind(s: string): s is LoggerKind {
  return s === 'capnslog' || s === 'zap';
}

/** Build and validate. Overrides (library use) replace typed fields before derivation. */
export function buildConfig(
  given: ReadonlyMap<string, FlagValue>,
  source: ConfigSource,
  overrides: Partial<EtcdConfig> = {},
): BuildResult {
  const v = new Values(given);
  const over = <K extends keyof EtcdConfig>(key: K, value: EtcdConfig[K]): EtcdConfig[K] =>
    key in overrides && overrides[key] !== undefined ? (overrides[key] as EtcdConfig[K]) : value;
  const has = (flag: string): boolean => v.has(flag) || flagToKey(flag) in overrides;

  const logger = v.str('logger');
  if (!isLoggerKind(logger)) return { ok: false, error: `unknown logger option ${JSON.stringify(logger)}` };
  const modeText = v.str('auto-compaction-mode');
  const mode = overrides.autoCompactionMode ?? autoCompactionMode(modeText);
  if (mode === undefined) return { ok: false, error: `unknown auto-compaction-mode ${JSON.stringify(modeText)}` };
  const retention = over('autoCompactionRetention', v.str('auto-compaction-retention'));
  const autoCompaction = parseAutoCompaction(mode, retention);
  if (!autoCompaction.ok) return { ok: false, error: autoCompaction.reason };

  const name = over('name', v.str('name'));
  const initialAdvertisePeerUrls = over('initialAdvertisePeerUrls', v.urls('initial-advertise-peer-urls'));
  const discovering = v.str('discovery') !== '' || v.str('discovery-srv') !== '';
  let initialCluster: ReadonlyMap<string, readonly URL[]>;
  if (v.has('initial-cluster')) {
    const ic = parseInitialCluster(v.str('initial-cluster'));
    if (!ic.ok) return { ok: false, error: `error setting up initial cluster: ${ic.reason}` };
    initialCluster = ic.value;
  } else if (discovering) {
    initialCluster = new Map();
  } else {
    initialCluster = new Map([[name, initialAdvertisePeerUrls]]);
  }

  const listenClientUrls = over('listenClientUrls', v.urls('listen-client-urls'));
  // etcdmain drops the default advertise URLs once listen URLs are chosen explicitly,
  // so a member never advertises http://localhost:2379 it does not listen on.
  const missingAdvertise = source === 'flags' && has('listen-client-urls') && !has('advertise-client-urls') && v.str('proxy') === 'off';
  const advertiseClientUrls = over('advertiseClientUrls', missingAdvertise ? [] : v.urls('advertise-client-urls'));


  const logOutputs = v.has('log-outputs') || !v.has('log-output') ? v.list('log-outputs') : v.list('log-output');
  const debug = over('debug', v.bool('debug'));
  const logLevel = debug ? 'debug' : (v.str('log-level') as LogLevel);

  const config: EtcdConfig = {
    name,
    dataDir: v.str('data-dir') !== '' ? v.str('data-dir') : `${name}.etcd`,
    walDir: v.str('wal-dir'),
    snapshotCount: v.num('snapshot-count'),
    heartbeatInterval: v.num('heartbeat-interval'),
    electionTimeout: v.num('election-timeout'),
    initialElectionTickAdvance: v.bool('initial-election-tick-advance'),
    listenPeerUrls: v.urls('listen-peer-urls'),
    listenClientUrls,
    maxSnapshots: v.num('max-snapshots'),
    maxWals: v.num('max-wals'),
    quotaBackendBytes: v.num('quota-backend-bytes'),
    backendBatchInterval: v.num('backend-batch-interval'),
    backendBatchLimit: v.num('backend-batch-limit'),
    maxTxnOps: v.num('max-txn-ops'),
    maxRequestBytes: v.num('max-request-bytes'),
    maxConcurrentStreams: v.num('max-concurrent-streams'),
    grpcKeepaliveMinTime: v.num('grpc-keepalive-min-time'),
    grpcKeepaliveInterval: v.num('grpc-keepalive-interval'),
    grpcKeepaliveTimeout: v.num('grpc-keepalive-timeout'),

    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: v.str('initial-cluster-state') as EtcdConfig['initialClusterState'],
    initialClusterToken: v.str('initial-cluster-token'),
    advertiseClientUrls,
    discovery: v.str('discovery'),
    discoveryFallback: v.str('discovery-fallback') as EtcdConfig['discoveryFallback'],
    discoveryProxy: v.str('discovery-proxy'),
    discoverySrv: v.str('discovery-srv'),
    discoverySrvName: v.str('discovery-srv-name'),
    strictReconfigCheck: v.bool('strict-reconfig-check'),
    preVote: v.bool('pre-vote'),
    autoCompactionMode: mode,
    autoCompactionRetention: retention,
    autoCompaction: autoCompaction.value,
    enableV2: v.bool('enable-v2'),

    certFile: v.str('cert-file'),
    keyFile: v.str('key-file'),
    clientCertAuth: v.bool('client-cert-auth'),
    clientCrlFile: v.str('client-crl-file'),
    clientCertAllowedHostname: v.str('client-cert-allowed-hostname'),
    trustedCaFile: v.str('trusted-ca-file'),
    autoTls: v.bool('auto-tls'),
    peerCertFile: v.str('peer-cert-file'),
    peerKeyFile: v.str('peer-key-file'),
    peerClientCertAuth: v.bool('peer-client-cert-auth'),
    peerTrustedCaFile: v.str('peer-trusted-ca-file'),
    peerCertAllowedCn: v.str('peer-cert-allowed-cn'),
    peerCertAllowedHostname: v.str('peer-cert-allowed-hostname'),
    peerAutoTls: v.bool('peer-auto-tls'),
    peerCrlFile: v.str('peer-crl-file'),
    cipherSuites: v.list('cipher-suites'),
    cors: v.list('cors'),
    hostWhitelist: v.list('host-whitelist'),

    authToken: v.str('auth-token'),
    bcryptCost: v.num('bcrypt-cost'),
    authTokenTtl: v.num('auth-token-ttl'),

    enablePprof: v.bool('enable-pprof'),
    metrics: v.str('metrics') as EtcdConfig['metrics'],
    listenMetricsUrls: v.urls('listen-metrics-urls'),

    logger,
    logOutputs,
    logLevel,

    proxy: v.str('proxy') as EtcdConfig['proxy'],
    proxyFailureWait: v.num('proxy-failure-wait'),
    proxyRefreshInterval: v.num('proxy-refresh-interval'),
    proxyDialTimeout: v.num('proxy-dial-timeout'),
    proxyWriteTimeout: v.num('proxy-write-timeout'),
    proxyReadTimeout: v.num('proxy-read-timeout'),

    experimentalInitialCorruptCheck: v.bool('experimental-initial-corrupt-check'),
    experimentalCorruptCheckTime: v.num('experimental-corrupt-check-time'),
    experimentalEnableV2v3: v.str('experimental-enable-v2v3'),
    experimentalBackendBboltFreelistType: v.str('experimental-backend-bbolt-freelist-type') as EtcdConfig['experimentalBackendBboltFreelistType'],
    experimentalEnableLeaseCheckpoint: v.bool('experimental-enable-lease-checkpoint'),
    experimentalEnableLeaseCheckpointPersist: v.bool('experimental-enable-lease-checkpoint-persist'),
    experimentalCompactionBatchLimit: v.num('experimental-compaction-batch-limit'),
    experimentalPeerSkipClientSanVerification: v.bool('experimental-peer-skip-client-san-verification'),
    experimentalWatchProgressNotifyInterval: v.num('experimental-watch-progress-notify-interval'),
    experimentalWarningApplyDuration: v.num('experimental-warning-apply-duration'),
    experimentalSnapshotCatchupEntries: v.num('experimental-snapshot-catchup-entries'),

    forceNewCluster: v.bool('force-new-cluster'),
    unsafeNoFsync: v.bool('unsafe-no-fsync'),
    enableGrpcGateway: v.bool('enable-grpc-gateway'),
    debug,
    logPackageLevels: v.str('log-package-levels'),
  };
  const merged: EtcdConfig = { ...config, ...definedOnly(overrides) };
  // etcd's quota semantics, whoever set it: 0 is the default, negative disables it.
  const q = merged.quotaBackendBytes;
  (merged as { quotaBackendBytes: number }).quotaBackendBytes = q === 0 ? DEFAULT_QUOTA_BYTES : q < 0 ? Number.POSITIVE_INFINITY : q;
  const error = validateConfig(merged);
  if (error !== undefined) return { ok: false, error };
  return { ok: true, config: freezeConfig(merged) };
}

function definedOnly(o: Partial<EtcdConfig>): Partial<EtcdConfig> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<EtcdConfig>;
}

function freezeConfig(c: EtcdConfig): EtcdConfig {
  const frozenUrls = (u: readonly URL[]) => Object.freeze([...u]);
  const cluster = new Map<string, readonly URL[]>();
  for (const [n, urls] of c.initialCluster) cluster.set(n, frozenUrls(urls));
  return Object.freeze({
    ...c,
    listenPeerUrls: frozenUrls(c.listenPeerUrls),
    listenClientUrls: frozenUrls(c.listenClientUrls),
    initialAdvertisePeerUrls: frozenUrls(c.initialAdvertisePeerUrls),
    advertiseClientUrls: frozenUrls(c.advertiseClientUrls),
    listenMetricsUrls: frozenUrls(c.listenMetricsUrls),
    initialCluster: new ReadonlyUrlMap(cluster),
    cipherSuites: Object.freeze([...c.cipherSuites]),
    cors: Object.freeze([...c.cors]),
    hostWhitelist: Object.freeze([...c.hostWhitelist]),
    logOutputs: Object.freeze([...c.logOutputs]),
  });
}

/** A Map whose mutators throw, so a frozen config's initial cluster cannot change. */
class ReadonlyUrlMap extends Map<string, readonly URL[]> {
  #sealed = false;
  constructor(entries: ReadonlyMap<string, readonly URL[]>) {
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#sealed = true;
  }
  override set(key: string, value: readonly URL[]): this {
    if (this.#sealed) throw new TypeError('EtcdConfig.initialCluster is read-only');
    return super.set(key, value);
  }
  override delete(): boolean {
    throw new TypeError('EtcdConfig.initialCluster is read-only');
  }
  override clear(): void {
    throw new TypeError('EtcdConfig.initialCluster is read-only');
  }
}

/** etcd's checkBindURLs: listeners bind to IPs (or localhost), not host names. */
function checkBindUrls(urls: readonly URL[]): string | undefined {
  for (const u of urls) {
    if (u.protocol === 'unix:' || u.protocol === 'unixs:') continue;
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === 'localhost') continue;
    if (!isIP(host)) return `expected IP in URL for binding (${u.protocol}//${u.host}); listen URLs take an IP address such as 127.0.0.1 or 0.0.0.0, not a host name`;
  }
  return undefined;
}

function isIP(host: string): boolean {
  return /^(\d{1,3})(\.\d{1,3}){3}$/.test(host) || (host.includes(':') && /^[0-9a-fA-F:.]+$/.test(host));
}

/**
 * The checks etcd runs before starting (embed Config.Validate and etcdmain), in its
 * order and with its wording, plus a hint where etcd gives none.
 */
export function validateConfig(c: EtcdConfig): string | undefined {
  if (c.logOutputs.length > 1 && c.logOutputs.includes('default')) {
    return 'multi logoutput for "default" is not supported yet';
  }
  for (const urls of [c.listenPeerUrls, c.listenClientUrls, c.listenMetricsUrls]) {
    const e = checkBindUrls(urls);
    if (e !== undefined) return e;
  }
  // The initial cluster is only non-empty next to discovery when both were given.
  const bootstrapFlags = [c.discovery !== '', c.initialCluster.size > 0, c.discoverySrv !== ''];
  if (bootstrapFlags.filter(Boolean).length > 1) {
    return 'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"';
  }
  if (c.heartbeatInterval <= 0) return `--heartbeat-interval must be >0 (set to ${c.heartbeatInterval}ms)`;
  if (c.electionTimeout <= 0) return `--election-timeout must be >0 (set to ${c.electionTimeout}ms)`;
  if (5 * c.heartbeatInterval > c.electionTimeout) {
    return `--election-timeout[${c.electionTimeout}ms] should be at least as 5 times as --heartbeat-interval[${c.heartbeatInterval}ms]`;
  }
  if (c.electionTimeout > MAX_ELECTION_MS) {
    return `--election-timeout[${c.electionTimeout}ms] is too long, and should be set less than ${MAX_ELECTION_MS}ms`;
  }
  if (c.advertiseClientUrls.length === 0 && c.listenClientUrls.length > 0) {
    return '--advertise-client-urls is required when --listen-client-urls is set explicitly. When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client';
  }
  if (c.bcryptCost < 4 || c.bcryptCost > 31) return `--bcrypt-cost must be between 4 and 31 (set to ${c.bcryptCost})`;
  const tokenError = checkAuthToken(c.authToken);
  if (tokenError !== undefined) return tokenError;
  if (c.experimentalEnableLeaseCheckpointPersist && !c.experimentalEnableLeaseCheckpoint) {
    return 'setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint';
  }
  if (c.initialCluster.size === 0 && c.discovery === '' && c.discoverySrv === '') return 'initial cluster unset and no discovery URL found; set --initial-cluster';
  if (c.discovery !== '' && c.initialClusterState === 'existing') return 'discovery URL should not be set when joining existing initial cluster';
  return checkTls(c);
}

/** --auth-token: etcd fails to start when its token provider cannot be made (keys read and checked here). */
function checkAuthToken(option: string): string | undefined {
  try {
    const { type, options } = decomposeAuthToken(option);
    if (type === 'jwt') JwtTokens.load(options);
    else if (type !== 'simple') return `${AuthTokenErrors.invalidOptions} (unknown token type ${JSON.stringify(type)}: use simple or jwt)`;
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** Listener TLS material: etcd fails these when it opens the listeners; we fail early. */
function checkTls(c: EtcdConfig): string | undefined {
  if ((c.certFile === '') !== (c.keyFile === '')) {
    return `KeyFile and CertFile must both be present[key: ${c.keyFile}, cert: ${c.certFile}]; set both --cert-file and --key-file`;
  }
  if ((c.peerCertFile === '') !== (c.peerKeyFile === '')) {
    return `KeyFile and CertFile must both be present[key: ${c.peerKeyFile}, cert: ${c.peerCertFile}]; set both --peer-cert-file and --peer-key-file`;
  }
  const clientTls = c.certFile !== '' || c.autoTls;
  for (const u of [...c.listenClientUrls, ...c.listenMetricsUrls]) {
    if ((u.protocol === 'https:' || u.protocol === 'unixs:') && !clientTls) {
      return `TLS key/cert (--cert-file, --key-file) must be provided for client url ${u.protocol}//${u.host} with HTTPS scheme`;
    }
  }
  const peerTls = c.peerCertFile !== '' || c.peerAutoTls;
  for (const u of c.listenPeerUrls) {
    if ((u.protocol === 'https:' || u.protocol === 'unixs:') && !peerTls) {
      return `cannot listen on TLS for ${u.host}: KeyFile and CertFile are not presented (set --peer-cert-file and --peer-key-file, or --peer-auto-tls)`;
    }
  }
  return undefined;
}
