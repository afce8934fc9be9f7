// Prometheus metrics: a small registry (counters, gauges, histograms, with or without
// labels) rendered in text exposition format 0.0.4 the way Go's client_golang renders it,
// plus the process metrics, and `Metrics`: etcd 3.4's metric names for the node to update.

import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { CallObserver, MethodDefinition } from './grpc/call.js';
import type { MvccStats } from '../mvcc/index.js';
import type { LessorStats } from './lessor.js';

/** Watch counts as the store reports them (MvccStore.watchStats). */
export interface WatchCounts {
  streams: number;
  watchers: number;
  slowWatchers: number;
  eventsSent: number;
}

/** Counters kept elsewhere and read at scrape time. */
export interface MetricSources {
  mvcc(): MvccStats;
  watch(): WatchCounts;
  lease(): LessorStats;
  leasesExpired(): number;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

// ---------------------------------------------------------------------------------------
// Values

export class Counter {
  private value = 0;
  inc(n = 1): void {
    if (!(n >= 0)) throw new RangeError(`a counter only goes up (inc by ${n})`);
    this.value += n;
  }
  get(): number {
    return this.value;
  }
}

export class Gauge {
  private value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  get(): number {
    return this.value;
  }
}

export class Histogram {
  /** counts[i] = observations ≤ buckets[i] and > buckets[i-1]; the last slot is +Inf. */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length + 1).fill(0);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.buckets.length && v > this.buckets[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  snapshot(): { cumulative: number[]; sum: number; count: number } {
    let acc = 0;
    const cumulative = this.counts.map((c) => (acc += c));
    return { cumulative, sum: this.sum, count: this.count };
  }
}

/** prometheus.ExponentialBuckets: count upper bounds start, start·factor, start·factor², … */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, b = start; i < count; i++, b *= factor) out.push(b);
  return out;
}

// ---------------------------------------------------------------------------------------
// Families and the registry

type Kind = 'counter' | 'gauge' | 'histogram';
/** A value read when rendered (client_golang's CounterFunc/GaugeFunc). */
interface Readout {
  get(): number;
}
type Value = Counter | Gauge | Histogram | Readout;
type Sample = { labels: Record<string, string>; value: Value };

/** Children of a labelled family, one per distinct combination of label values. */
export class Vec<T extends Value, L extends string> {
  private readonly children = new Map<string, { labels: Record<string, string>; value: T }>();
  constructor(
    readonly labelNames: readonly L[],
    private readonly make: () => T,
  ) {}
  labels(values: Record<L, string>): T {
    const key = this.labelNames.map((n) => values[n]).join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      const labels: Record<string, string> = {};
      for (const n of this.labelNames) {
        if (typeof values[n] !== 'string') throw new TypeError(`missing label ${n}`);
        labels[n] = values[n];
      }
      child = { labels, value: this.make() };
      this.children.set(key, child);
    }
    return child.value;
  }
  /** Drops every child, e.g. a member's old ID after it changes. */
  reset(): void {
    this.children.clear();
  }
  samples(): Sample[] {
    return [...this.children.values()];
  }
}

interface Family {
  name: string;
  help: string;
  kind: Kind;
  samples(): Sample[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Registry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string): Counter {
    const c = new Counter();
    this.add({ name, help, kind: 'counter', samples: () => [{ labels: {}, value: c }] });
    return c;
  }
  gauge(name: string, help: string): Gauge {
    const g = new Gauge();
    this.add({ name, help, kind: 'gauge', samples: () => [{ labels: {}, value: g }] });
    return g;
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const h = new Histogram(checkBuckets(name, buckets));
    this.add({ name, help, kind: 'histogram', samples: () => [{ labels: {}, value: h }] });
    return h;
  }
  counterVec<L extends string>(name: string, help: string, labelNames: readonly L[]): Vec<Counter, L> {
    return this.addVec(name, help, 'counter', new Vec(checkLabels(name, labelNames), () => new Counter()));
  }
  gaugeVec<L extends string>(name: string, help: string, labelNames: readonly L[]): Vec<Gauge, L> {
    return this.addVec(name, help, 'gauge', new Vec(checkLabels(name, labelNames), () => new Gauge()));
  }
  histogramVec<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Vec<Histogram, L> {
    const b = checkBuckets(name, buckets);
    return this.addVec(name, help, 'histogram', new Vec(checkLabels(name, labelNames), () => new Histogram(b)));
  }
  /** Exposes an existing value under a second name (etcd keeps old debugging names alive). */
  alias(name: string, help: string, value: Counter | Gauge): void {
    this.add({ name, help, kind: value instanceof Counter ? 'counter' : 'gauge', samples: () => [{ labels: {}, value }] });
  }
  /** A counter or gauge whose value is read at render time; undefined leaves it out. */
  readout(name: string, help: string, kind: 'counter' | 'gauge', read: () => number | undefined): void {
    this.add({
      name,
      help,
      kind,
      samples: () => {
        const v = read();
        return v === undefined ? [] : [{ labels: {}, value: { get: () => v } }];
      },
    });
  }

  /** The text exposition format, families sorted by name as client_golang does. */
  render(): string {
    const out: string[] = [];
    for (const name of [...this.families.keys()].sort()) {
      const f = this.families.get(name)!;
      const samples = f.samples();
      if (samples.length === 0) continue;
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`);
      const lines: Array<[string, string[]]> = samples.map((s) => [labelKey(s.labels), renderSample(f.name, s)]);
      lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [, l] of lines) out.push(...l);
    }
    return out.length === 0 ? '' : out.join('\n') + '\n';
  }

  private add(f: Family): void {
    if (!NAME_RE.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} is already registered`);
    this.families.set(f.name, f);
  }
  private addVec<T extends Value, L extends string>(name: string, help: string, kind: Kind, vec: Vec<T, L>): Vec<T, L> {
    this.add({ name, help, kind, samples: () => vec.samples() });
    return vec;
  }
}

function checkLabels<L extends string>(name: string, labelNames: readonly L[]): L[] {
  for (const l of labelNames) {
    if (!LABEL_RE.test(l) || l.startsWith('__') || l === 'le') throw new Error(`invalid label ${JSON.stringify(l)} on ${name}`);
  }
  // client_golang prints labels sorted by name.
  return [...labelNames].sort();
}

function checkBuckets(name: string, buckets: readonly number[]): number[] {
  for (let i = 1; i < buckets.length; i++) {
    if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`histogram ${name}: buckets must increase`);
  }
  return [...buckets];
}

function labelKey(labels: Record<string, string>): string {
  return Object.values(labels).join('\u0000');
}

function renderSample(name: string, s: Sample): string[] {
  const v = s.value;
  if (!(v instanceof Histogram)) return [`${name}${renderLabels(s.labels)} ${formatFloat(v.get())}`];
  const { cumulative, sum, count } = v.snapshot();
  const lines = v.buckets.map(
    (b, i) => `${name}_bucket${renderLabels({ ...s.labels, le: formatFloat(b) })} ${formatFloat(cumulative[i]!)}`,
  );
  lines.push(`${name}_bucket${renderLabels({ ...s.labels, le: '+Inf' })} ${formatFloat(count)}`);
  lines.push(`${name}_sum${renderLabels(s.labels)} ${formatFloat(sum)}`);
  lines.push(`${name}_count${renderLabels(s.labels)} ${formatFloat(count)}`);
  return lines;
}

function renderLabels(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/**
 * Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses: the shortest digits
 * that round-trip, in exponent form when the decimal exponent is < -4 or ≥ 6
 * (2147483648 → "2.147483648e+09", 524288 → "524288", 0.00001 → "1e-05").
 */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa, expText] = v.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const sign = exp < 0 ? '-' : '+';
    const abs = Math.abs(exp);
    return `${mantissa}e${sign}${abs < 10 ? '0' : ''}${abs}`;
  }
  return String(v);
}

// ---------------------------------------------------------------------------------------
// Process metrics (client_golang's process collector; read from /proc where there is one)

function registerProcessMetrics(r: Registry): void {
  const startTime = Math.round(performance.timeOrigin / 10) / 100;
  r.readout('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  });
  r.readout('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => process.memoryUsage.rss());
  r.readout('process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', virtualMemoryBytes);
  r.readout('process_open_fds', 'Number of open file descriptors.', 'gauge', countOpenFds);
  r.readout('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', softFdLimit);
  r.readout('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => startTime);
  // etcd's own copies of the descriptor counts.
  r.readout('os_fd_used', 'The number of used file descriptors.', 'gauge', countOpenFds);
  r.readout('os_fd_limit', 'The file descriptor limit.', 'gauge', softFdLimit);
}

function countOpenFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

function softFdLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function virtualMemoryBytes(): number | undefined {
  try {
    // Field 23 (vsize); the command name in parentheses may hold spaces, so count after it.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[20]);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// etcd's metrics

const fsyncBuckets = exponentialBuckets(0.001, 2, 14);

/** Every metric etcd-ts exports, under etcd 3.4's names; the node sets the values. */
export class Metrics {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;

  // etcdserver
  readonly hasLeader: Gauge;
  readonly isLeader: Gauge;
  readonly isLearner: Gauge;
  readonly leaderChanges: Counter;
  readonly proposalsCommitted: Gauge;
  readonly proposalsApplied: Gauge;
  readonly proposalsPending: Gauge;
  readonly proposalsFailed: Counter;
  readonly heartbeatSendFailures: Counter;
  readonly slowApply: Counter;
  readonly slowReadIndexes: Counter;
  readonly quotaBackendBytes: Gauge;
  readonly learnerPromoteSucceed: Counter;
  readonly snapshotApplyInProgress: Gauge;
  readonly snapshotReceiveSuccess: Vec<Counter, 'From'>;
  readonly healthSuccess: Counter;
  readonly healthFailures: Counter;
  readonly clientRequests: Vec<Counter, 'type' | 'client_api_version'>;
  readonly serverVersion: Vec<Gauge, 'server_version'>;
  readonly clusterVersion: Vec<Gauge, 'cluster_version'>;
  readonly serverId: Vec<Gauge, 'server_id'>;

  // disk, snapshots
  readonly walFsyncDuration: Histogram;
  readonly walWriteBytes: Gauge;
  readonly backendCommitDuration: Histogram;
  readonly backendDefragDuration: Histogram;
  readonly backendSnapshotDuration: Histogram;
  readonly defragInflight: Gauge;
  readonly snapFsyncDuration: Histogram;
  readonly snapDbFsyncDuration: Histogram;
  readonly snapDbSaveTotalDuration: Histogram;

  // mvcc
  readonly dbTotalSize: Gauge;
  readonly dbTotalSizeInUse: Gauge;
  readonly dbOpenReadTransactions: Gauge;
  readonly currentRevision: Gauge;
  readonly compactRevision: Gauge;
  readonly hashDuration: Histogram;
  readonly hashRevDuration: Histogram;

  // network
  readonly clientGrpcSentBytes: Counter;
  readonly clientGrpcReceivedBytes: Counter;
  readonly peerSentBytes: Vec<Counter, 'To'>;
  readonly peerReceivedBytes: Vec<Counter, 'From'>;
  readonly peerSentFailures: Vec<Counter, 'To'>;
  readonly peerReceivedFailures: Vec<Counter, 'From'>;
  readonly peerRoundTripTime: Vec<Histogram, 'To'>;
  readonly activePeers: Vec<Gauge, 'Local' | 'Remote'>;
  readonly disconnectedPeers: Vec<Counter, 'Local' | 'Remote'>;

  // gRPC (go-grpc-prometheus names)
  readonly grpcStarted: Vec<Counter, 'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly grpcHandled: Vec<Counter, 'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code'>;
  readonly grpcMsgReceived: Vec<Counter, 'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly grpcMsgSent: Vec<Counter, 'grpc_type' | 'grpc_service' | 'grpc_method'>;

  constructor() {
    const r = this.registry;
    this.hasLeader = r.gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
    this.isLeader = r.gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.');
    this.isLearner = r.gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.');
    this.leaderChanges = r.counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.');
    this.proposalsCommitted = r.gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.');
    this.proposalsApplied = r.gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.');
    this.proposalsPending = r.gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.');
    this.proposalsFailed = r.counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.');
    this.heartbeatSendFailures = r.counter(
      'etcd_server_heartbeat_send_failures_total',
      'The total number of leader heartbeat send failures (likely overloaded from slow disk).',
    );
    this.slowApply = r.counter('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).');
    this.slowReadIndexes = r.counter(
      'etcd_server_slow_read_indexes_total',
      "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
    );
    // etcd_server_read_indexes_failed_total is not exported: it counts raft refusing a
    // ReadIndex request, which etcd-ts's raft never does (a round that gets no answer is
    // asked again, then times out: etcd_server_slow_read_indexes_total).
    r.readout('etcd_debugging_server_lease_expired_total', 'The total number of expired leases.', 'counter', () => this.sources?.leasesExpired() ?? 0);
    this.quotaBackendBytes = r.gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
    this.learnerPromoteSucceed = r.counter(
      'etcd_server_learner_promote_successes',
      'The total number of successful learner promotions while this member is leader.',
    );
    this.snapshotApplyInProgress = r.gauge(
      'etcd_server_snapshot_apply_in_progress_total',
      '1 if the server is applying the incoming snapshot. 0 if none.',
    );
    this.snapshotReceiveSuccess = r.counterVec('etcd_network_snapshot_receive_success', 'Total number of successful snapshot receives', [
      'From',
    ]);
    this.healthSuccess = r.counter('etcd_server_health_success', 'The total number of successful health checks');
    this.healthFailures = r.counter('etcd_server_health_failures', 'The total number of failed health checks');
    this.clientRequests = r.counterVec('etcd_server_client_requests_total', 'The total number of client requests per client version.', [
      'type',
      'client_api_version',
    ]);
    this.serverVersion = r.gaugeVec(
      'etcd_server_version',
      "Which version is running. 1 for 'server_version' label with current version.",
      ['server_version'],
    );
    this.clusterVersion = r.gaugeVec(
      'etcd_cluster_version',
      "Which version is running. 1 for 'cluster_version' label with current cluster version",
      ['cluster_version'],
    );
    this.serverId = r.gaugeVec('etcd_server_id', "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", [
      'server_id',
    ]);

    this.walFsyncDuration = r.histogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', fsyncBuckets);
    this.walWriteBytes = r.gauge('etcd_disk_wal_write_bytes_total', 'Total number of bytes written in WAL.');
    this.backendCommitDuration = r.histogram(
      'etcd_disk_backend_commit_duration_seconds',
      'The latency distributions of commit called by backend.',
      fsyncBuckets,
    );
    this.backendDefragDuration = r.histogram(
      'etcd_disk_backend_defrag_duration_seconds',
      'The latency distribution of backend defragmentation.',
      exponentialBuckets(0.1, 2, 13),
    );
    this.backendSnapshotDuration = r.histogram(
      'etcd_disk_backend_snapshot_duration_seconds',
      'The latency distribution of backend snapshots.',
      exponentialBuckets(0.01, 2, 17),
    );
    this.defragInflight = r.gauge('etcd_disk_defrag_inflight', 'Whether or not defrag is active on the member. 1 means active, 0 means not.');
    this.snapFsyncDuration = r.histogram('etcd_snap_fsync_duration_seconds', 'The latency distributions of fsync called by snap.', fsyncBuckets);
    this.snapDbFsyncDuration = r.histogram('etcd_snap_db_fsync_duration_seconds', 'The latency distributions of fsyncing .snap.db file', fsyncBuckets);
    this.snapDbSaveTotalDuration = r.histogram(
      'etcd_snap_db_save_total_duration_seconds',
      'The total latency distributions of v3 snapshot save',
      exponentialBuckets(0.1, 2, 10),
    );

    this.dbTotalSize = r.gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    r.alias('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', this.dbTotalSize);
    this.dbTotalSizeInUse = r.gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    this.dbOpenReadTransactions = r.gauge('etcd_mvcc_db_open_read_transactions', 'The number of currently open read transactions');
    const mvcc = (field: keyof MvccStats) => () => this.sources?.mvcc()[field] ?? 0;
    for (const [name, help, field] of [
      ['range_total', 'Total number of ranges seen by this member.', 'ranges'],
      ['put_total', 'Total number of puts seen by this member.', 'puts'],
      ['delete_total', 'Total number of deletes seen by this member.', 'deletes'],
      ['txn_total', 'Total number of txns seen by this member.', 'txns'],
    ] as const) {
      r.readout(`etcd_mvcc_${name}`, help, 'counter', mvcc(field));
      r.readout(`etcd_debugging_mvcc_${name}`, help, 'counter', mvcc(field));
    }
    r.readout('etcd_debugging_mvcc_keys_total', 'Total number of keys.', 'gauge', mvcc('keys'));
    r.readout('etcd_debugging_mvcc_total_put_size_in_bytes', 'The total size of put kv pairs seen by this member.', 'gauge', mvcc('putBytes'));
    this.currentRevision = r.gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.');
    this.compactRevision = r.gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.');
    const watch = (field: keyof WatchCounts) => () => this.sources?.watch()[field] ?? 0;
    r.readout('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.', 'gauge', watch('streams'));
    r.readout('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', 'gauge', watch('watchers'));
    r.readout('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.', 'gauge', watch('slowWatchers'));
    r.readout('etcd_debugging_mvcc_events_total', 'Total number of events sent by this member.', 'counter', watch('eventsSent'));
    // etcd_debugging_mvcc_pending_events_total is not exported: a watcher whose receiver is
    // slow is paused and catches up from history later (src/mvcc/watchable-store.ts), so
    // no events ever wait in a buffer to be sent.
    r.readout('etcd_debugging_mvcc_db_compaction_keys_total', 'Total number of db keys compacted.', 'counter', mvcc('compactedDbKeys'));
    this.hashDuration = r.histogram(
      'etcd_mvcc_hash_duration_seconds',
      'The latency distribution of storage hash operation.',
      exponentialBuckets(0.01, 2, 15),
    );
    this.hashRevDuration = r.histogram(
      'etcd_mvcc_hash_rev_duration_seconds',
      'The latency distribution of storage hash by revision operation.',
      exponentialBuckets(0.01, 2, 15),
    );

    const lease = (field: keyof LessorStats) => () => this.sources?.lease()[field] ?? 0;
    r.readout('etcd_debugging_lease_granted_total', 'The total number of granted leases.', 'counter', lease('granted'));
    r.readout('etcd_debugging_lease_revoked_total', 'The total number of revoked leases.', 'counter', lease('revoked'));
    r.readout('etcd_debugging_lease_renewed_total', 'The number of renewed leases seen by the leader.', 'counter', lease('renewed'));

    this.clientGrpcSentBytes = r.counter('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.');
    this.clientGrpcReceivedBytes = r.counter(
      'etcd_network_client_grpc_received_bytes_total',
      'The total number of bytes received from grpc clients.',
    );
    this.peerSentBytes = r.counterVec('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', ['To']);
    this.peerReceivedBytes = r.counterVec('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', ['From']);
    this.peerSentFailures = r.counterVec('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', ['To']);
    this.peerReceivedFailures = r.counterVec(
      'etcd_network_peer_received_failures_total',
      'The total number of receive failures from peers.',
      ['From'],
    );
    this.peerRoundTripTime = r.histogramVec(
      'etcd_network_peer_round_trip_time_seconds',
      'Round-Trip-Time histogram between peers',
      ['To'],
      exponentialBuckets(0.0001, 2, 14),
    );
    this.activePeers = r.gaugeVec('etcd_network_active_peers', 'The current number of active peer connections.', ['Local', 'Remote']);
    this.disconnectedPeers = r.counterVec('etcd_network_disconnected_peers_total', 'The total number of disconnected peers.', [
      'Local',
      'Remote',
    ]);

    const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
    this.grpcStarted = r.counterVec('grpc_server_started_total', 'Total number of RPCs started on the server.', grpcLabels);
    this.grpcHandled = r.counterVec(
      'grpc_server_handled_total',
      'Total number of RPCs completed on the server, regardless of success or failure.',
      [...grpcLabels, 'grpc_code'],
    );
    this.grpcMsgReceived = r.counterVec('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', grpcLabels);
    this.grpcMsgSent = r.counterVec('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', grpcLabels);

    registerProcessMetrics(r);
  }

  /**
   * Where the counts kept by the store, the watchers and the lessor come from: read when
   * /metrics is rendered, so a scrape right after a request sees it, as etcd's counters do,
   * and the hot paths only bump a field.
   */
  readFrom(sources: MetricSources): void {
    this.sources = sources;
  }

  /** Sets the one-sample identity gauges (server_version, cluster_version, server_id). */
  setIdentity(id: { serverVersion: string; clusterVersion?: string; memberId?: bigint }): void {
    this.serverVersion.reset();
    this.serverVersion.labels({ server_version: id.serverVersion }).set(1);
    if (id.clusterVersion !== undefined) {
      this.clusterVersion.reset();
      this.clusterVersion.labels({ cluster_version: id.clusterVersion }).set(1);
    }
    if (id.memberId !== undefined) {
      this.serverId.reset();
      this.serverId.labels({ server_id: id.memberId.toString(16) }).set(1);
    }
  }

  render(): string {
    return this.registry.render();
  }
}

// ---------------------------------------------------------------------------------------
// gRPC call metrics

/** grpc-go's code names, which go-grpc-prometheus puts in the grpc_code label. */
export const GRPC_CODE_NAMES: Record<number, string> = {
  0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound',
  6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition', 10: 'Aborted',
  11: 'OutOfRange', 12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

/**
 * Counts calls and messages as go-grpc-prometheus does, and their bytes as etcd does:
 * `new GrpcServer({ observe: grpcCallMetrics(metrics) })`. Every call is counted as
 * handled with the status it ended with, those refused before a handler ran (an
 * over-large or undecodable request) included.
 */
export function grpcCallMetrics(metrics: Metrics): (method: MethodDefinition) => CallObserver {
  // The counters of one method never change: look them up once per method, not per call.
  interface MethodCounters {
    labels: { grpc_type: string; grpc_service: string; grpc_method: string };
    started: Counter;
    received: Counter;
    sent: Counter;
    handled: Map<number, Counter>;
  }
  const byPath = new Map<string, MethodCounters>();
  const countersFor = (method: MethodDefinition): MethodCounters => {
    let c = byPath.get(method.path);
    if (c === undefined) {
      const slash = method.path.lastIndexOf('/');
      const labels = {
        grpc_type: method.requestStream
          ? method.responseStream ? 'bidi_stream' : 'client_stream'
          : method.responseStream ? 'server_stream' : 'unary',
        grpc_service: method.path.slice(1, slash),
        grpc_method: method.path.slice(slash + 1),
      };
      c = {
        labels,
        started: metrics.grpcStarted.labels(labels),
        received: metrics.grpcMsgReceived.labels(labels),
        sent: metrics.grpcMsgSent.labels(labels),
        handled: new Map(),
      };
      byPath.set(method.path, c);
    }
    return c;
  };
  return (method) => {
    const c = countersFor(method);
    c.started.inc();
    return {
      received: (bytes) => {
        c.received.inc();
        metrics.clientGrpcReceivedBytes.inc(bytes);
      },
      sent: (bytes) => {
        c.sent.inc();
        metrics.clientGrpcSentBytes.inc(bytes);
      },
      handled: (code) => {
        let counter = c.handled.get(code);
        if (counter === undefined) {
          counter = metrics.grpcHandled.labels({ ...c.labels, grpc_code: GRPC_CODE_NAMES[code] ?? 'Unknown' });
          c.handled.set(code, counter);
        }
        counter.inc();
      },
    };
  };
}
