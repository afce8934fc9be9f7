// etcd 3.4.23's flag set: name, value kind, default (as `etcd --help` shows it) and
// help text. The command line, the ETCD_* variables, the config file and `--help`
// are all driven from this one table.

import {
  INT64_MAX,
  INT64_MIN,
  PARSE_ERROR,
  UINT32_MAX,
  UINT64_MAX,
  parseGoBool,
  parseGoDuration,
  parseGoInt,
  parseStringList,
  parseOriginList,
  parseUrlList,
  type Parsed,
} from './values.js';

export type FlagKind =
  | 'string'
  | 'bool'
  | 'uint' // Go uint / uint64
  | 'uint32'
  | 'int' // Go int / int64
  | 'duration' // Go time.Duration, kept in ms
  | 'urls' // comma-separated URLs
  | 'list' // comma-separated strings
  | 'origins' // comma-separated URLs, or "*" (--cors)
  | 'choice';

export type FlagValue = string | boolean | number | readonly URL[] | readonly string[];

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** the default in flag syntax; '' for none */
  readonly default: string;
  readonly help: string;
  readonly group: string;
  readonly choices?: readonly string[];
  /** accepted by etcd 3.4.23 but not listed by its --help */
  readonly hidden?: boolean;
  /** how --help shows the default when it differs from `'default'` quoting */
  readonly shownDefault?: string;
  /** only meaningful on the command line: not read from ETCD_* variables */
  readonly cliOnly?: boolean;
}

const M = 'Member';
const C = 'Clustering';
const S = 'Security';
const A = 'Auth';
const P = 'Profiling and Monitoring';
const L = 'Logging';
const X = 'v2 Proxy (to be deprecated in v4)';
const E = 'Experimental feature';
const U = 'Unsafe feature';
const D = 'TO BE DEPRECATED';
const H = 'Hidden';

function f(
  group: string,
  name: string,
  kind: FlagKind,
  def: string,
  help: string,
  extra: Partial<Pick<FlagSpec, 'choices' | 'hidden' | 'shownDefault' | 'cliOnly'>> = {},
): FlagSpec {
  return { group, name, kind, default: def, help, ...extra };
}

export const FLAGS: readonly FlagSpec[] = [
  f(M, 'name', 'string', 'default', 'Human-readable name for this member.'),
  f(M, 'data-dir', 'string', '', 'Path to the data directory.', { shownDefault: '${name}.etcd' }),
  f(M, 'wal-dir', 'string', '', 'Path to the dedicated wal directory.'),
  f(M, 'snapshot-count', 'uint', '100000', 'Number of committed transactions to trigger a snapshot to disk.'),
  f(M, 'heartbeat-interval', 'uint', '100', 'Time (in milliseconds) of a heartbeat interval.'),
  f(M, 'election-timeout', 'uint', '1000', 'Time (in milliseconds) for an election to timeout. See tuning documentation for details.'),
  f(M, 'initial-election-tick-advance', 'bool', 'true', 'Whether to fast-forward initial election ticks on boot for faster election.'),
  f(M, 'listen-peer-urls', 'urls', 'http://localhost:2380', 'List of URLs to listen on for peer traffic.'),
  f(M, 'listen-client-urls', 'urls', 'http://localhost:2379', 'List of URLs to listen on for client traffic.'),
  f(M, 'max-snapshots', 'uint', '5', 'Maximum number of snapshot files to retain (0 is unlimited).'),
  f(M, 'max-wals', 'uint', '5', 'Maximum number of wal files to retain (0 is unlimited).'),
  f(M, 'quota-backend-bytes', 'int', '0', 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).'),
  f(M, 'backend-batch-interval', 'duration', '0', 'BackendBatchInterval is the maximum time before commit the backend transaction.', { shownDefault: '' }),
  f(M, 'backend-batch-limit', 'int', '0', 'BackendBatchLimit is the maximum operations before commit the backend transaction.'),
  f(M, 'max-txn-ops', 'uint', '128', 'Maximum number of operations permitted in a transaction.'),
  f(M, 'max-request-bytes', 'uint', '1572864', 'Maximum client request size in bytes the server will accept.'),
  f(M, 'max-concurrent-streams', 'uint32', '4294967295', 'Maximum concurrent streams that each client can open at a time.', { shownDefault: 'math.MaxUint32' }),
  f(M, 'grpc-keepalive-min-time', 'duration', '5s', 'Minimum duration interval that a client should wait before pinging server.'),
  f(M, 'grpc-keepalive-interval', 'duration', '2h', 'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).'),
  f(M, 'grpc-keepalive-timeout', 'duration', '20s', 'Additional duration of wait before closing a non-responsive connection (0 to disable).'),

  f(C, 'initial-advertise-peer-urls', 'urls', 'http://localhost:2380', "List of this member's peer URLs to advertise to the rest of the cluster."),
  f(C, 'initial-cluster', 'string', 'default=http://localhost:2380', 'Initial cluster configuration for bootstrapping.'),
  f(C, 'initial-cluster-state', 'choice', 'new', "Initial cluster state ('new' or 'existing').", { choices: ['new', 'existing'] }),
  f(C, 'initial-cluster-token', 'string', 'etcd-cluster', 'Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.'),
  f(C, 'advertise-client-urls', 'urls', 'http://localhost:2379', "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster."),
  f(C, 'discovery', 'string', '', 'Discovery URL used to bootstrap the cluster.'),
  f(C, 'discovery-fallback', 'choice', 'proxy', "Expected behavior ('exit' or 'proxy') when discovery services fails.\n\"proxy\" supports v2 API only.", { choices: ['exit', 'proxy'] }),
  f(C, 'discovery-proxy', 'string', '', 'HTTP proxy to use for traffic to discovery service.'),
  f(C, 'discovery-srv', 'string', '', 'DNS srv domain used to bootstrap the cluster.'),
  f(C, 'discovery-srv-name', 'string', '', 'Suffix to the dns srv name queried when bootstrapping.'),
  f(C, 'strict-reconfig-check', 'bool', 'true', 'Reject reconfiguration requests that would cause quorum loss.'),
  f(C, 'pre-vote', 'bool', 'false', 'Enable to run an additional Raft election phase.'),
  f(C, 'auto-compaction-retention', 'string', '0', 'Auto compaction retention length. 0 means disable auto compaction.'),
  f(C, 'auto-compaction-mode', 'string', 'periodic', "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."),
  f(C, 'enable-v2', 'bool', 'false', 'Accept etcd V2 client requests.'),

  f(S, 'cert-file', 'string', '', 'Path to the client server TLS cert file.'),
  f(S, 'key-file', 'string', '', 'Path to the client server TLS key file.'),
  f(S, 'client-cert-auth', 'bool', 'false', 'Enable client cert authentication.'),
  f(S, 'client-crl-file', 'string', '', 'Path to the client certificate revocation list file.'),
  f(S, 'client-cert-allowed-hostname', 'string', '', 'Allowed TLS hostname for client cert authentication.'),
  f(S, 'trusted-ca-file', 'string', '', 'Path to the client server TLS trusted CA cert file.'),
  f(S, 'auto-tls', 'bool', 'false', 'Client TLS using generated certificates.'),
  f(S, 'peer-cert-file', 'string', '', 'Path to the peer server TLS cert file.'),
  f(S, 'peer-key-file', 'string', '', 'Path to the peer server TLS key file.'),
  f(S, 'peer-client-cert-auth', 'bool', 'false', 'Enable peer client cert authentication.'),
  f(S, 'peer-trusted-ca-file', 'string', '', 'Path to the peer server TLS trusted CA file.'),
  f(S, 'peer-cert-allowed-cn', 'string', '', 'Required CN for client certs connecting to the peer endpoint.'),
  f(S, 'peer-cert-allowed-hostname', 'string', '', 'Allowed TLS hostname for inter peer authentication.'),
  f(S, 'peer-auto-tls', 'bool', 'false', 'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.'),
  f(S, 'peer-crl-file', 'string', '', 'Path to the peer certificate revocation list file.'),
  f(S, 'cipher-suites', 'list', '', 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).'),
  f(S, 'cors', 'origins', '*', 'Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).'),
  f(S, 'host-whitelist', 'list', '*', 'Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).'),

  f(A, 'auth-token', 'string', 'simple', "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
  f(A, 'bcrypt-cost', 'uint', '10', 'Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.'),
  f(A, 'auth-token-ttl', 'uint', '300', 'Time (in seconds) of the auth-token-ttl.'),

  f(P, 'enable-pprof', 'bool', 'false', 'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"'),
  f(P, 'metrics', 'choice', 'basic', "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.", { choices: ['basic', 'extensive'] }),
  f(P, 'listen-metrics-urls', 'urls', '', 'List of URLs to listen on for the metrics and health endpoints.'),

  f(L, 'logger', 'string', 'capnslog', "Specify 'zap' for structured logging or 'capnslog'. etcd-ts always writes zap's JSON lines."),
  f(L, 'log-outputs', 'list', 'default', "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
  f(L, 'log-level', 'choice', 'info', 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.', { choices: ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] }),

  f(X, 'proxy', 'choice', 'off', "Proxy mode setting ('off', 'readonly' or 'on').", { choices: ['off', 'readonly', 'on'] }),
  f(X, 'proxy-failure-wait', 'uint', '5000', 'Time (in milliseconds) an endpoint will be held in a failed state.'),
  f(X, 'proxy-refresh-interval', 'uint', '30000', 'Time (in milliseconds) of the endpoints refresh interval.'),
  f(X, 'proxy-dial-timeout', 'uint', '1000', 'Time (in milliseconds) for a dial to timeout.'),
  f(X, 'proxy-write-timeout', 'uint', '5000', 'Time (in milliseconds) for a write to timeout.'),
  f(X, 'proxy-read-timeout', 'uint', '0', 'Time (in milliseconds) for a read to timeout.'),

  f(E, 'experimental-initial-corrupt-check', 'bool', 'false', 'Enable to check data corruption before serving any client/peer traffic.'),
  f(E, 'experimental-corrupt-check-time', 'duration', '0s', 'Duration of time between cluster corruption check passes.'),
  f(E, 'experimental-enable-v2v3', 'string', '', 'Serve v2 requests through the v3 backend under a given prefix.'),
  f(E, 'experimental-backend-bbolt-freelist-type', 'choice', 'array', 'ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).', { choices: ['array', 'map'] }),
  f(E, 'experimental-enable-lease-checkpoint', 'bool', 'false', 'ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.'),
  f(E, 'experimental-compaction-batch-limit', 'int', '1000', 'ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.'),
  f(E, 'experimental-peer-skip-client-san-verification', 'bool', 'false', 'Skip verification of SAN field in client certificate for peer connections.'),
  f(E, 'experimental-watch-progress-notify-interval', 'duration', '10m', 'Duration of periodical watch progress notification.'),
  f(E, 'experimental-warning-apply-duration', 'duration', '100ms', 'Warning is generated if requests take more than this duration.'),

  f(U, 'force-new-cluster', 'bool', 'false', 'Force to create a new one-member cluster.'),

  f(D, 'debug', 'bool', 'false', "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead."),
  f(D, 'log-package-levels', 'string', '', "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG')."),

  // Accepted by etcd 3.4.23 without a --help line.
  f(H, 'config-file', 'string', '', 'Path to the server configuration file.', { hidden: true, cliOnly: true }),
  f(H, 'version', 'bool', 'false', 'Print the version and exit.', { hidden: true, cliOnly: true }),
  f(H, 'enable-grpc-gateway', 'bool', 'true', 'Enable the JSON gateway for the v3 API on the client port.', { hidden: true }),
  f(H, 'unsafe-no-fsync', 'bool', 'false', 'Disables fsync, unsafe, will cause data loss.', { hidden: true }),
  f(H, 'experimental-enable-lease-checkpoint-persist', 'bool', 'false', 'Persist lease remaining TTL checkpoints.', { hidden: true }),
  f(H, 'log-output', 'list', '', "[DEPRECATED] use '--log-outputs'.", { hidden: true }),

  // From etcd 3.5.13 (3.4 has the value built in, 5000): how many entries the raft log keeps
  // behind a snapshot, so that a follower that lags by fewer catches up from the log.
  f(H, 'experimental-snapshot-catchup-entries', 'uint', '5000', 'Number of entries for a slow follower to catch up after compacting the raft storage entries.', { hidden: true }),
];

export const FLAGS_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((s) => [s.name, s]));

/** `--initial-cluster-token` → `ETCD_INITIAL_CLUSTER_TOKEN` (etcd's FlagToEnv). */
export function flagToEnv(name: string): string {
  return 'ETCD_' + name.toUpperCase().replace(/-/g, '_');
}

/** `initial-cluster-token` → `initialClusterToken`: the EtcdConfig field of a flag. */
export function flagToKey(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Parse one flag value as etcd's flag.Value.Set would; the reason is the text Go puts
 * after the colon in `invalid value "x" for flag -name: <reason>`.
 */
export function parseFlagValue(spec: FlagSpec, raw: string): Parsed<FlagValue> {
  switch (spec.kind) {
    case 'string':
      return { ok: true, value: raw };
    case 'bool':
      return parseGoBool(raw);
    case 'uint':
      return parseGoInt(raw, 0n, UINT64_MAX);
    case 'uint32':
      return parseGoInt(raw, 0n, UINT32_MAX);
    case 'int':
      return parseGoInt(raw, INT64_MIN, INT64_MAX);
    case 'duration': {
      const d = parseGoDuration(raw);
      return d.ok ? d : { ok: false, reason: PARSE_ERROR };
    }
    case 'urls':
      // An empty list is "not set" for the URL flags that default to nothing.
      if (raw === '' && spec.default === '') return { ok: true, value: [] };
      return parseUrlList(raw);
    case 'list':
      return { ok: true, value: parseStringList(raw) };
    case 'origins':
      return parseOriginList(raw);
    case 'choice': {
      const choices = spec.choices ?? [];
      if (choices.includes(raw)) return { ok: true, value: raw };
      return { ok: false, reason: `invalid value (valid values are ${choices.map((c) => JSON.stringify(c)).join(', ')})` };
    }
  }
}
