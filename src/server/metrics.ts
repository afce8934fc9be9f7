// Prometheus metrics under etcd 3.4's names, kept in a prom-client registry (which also
// collects the process_* and nodejs_* runtime metrics, Node's counterpart of Go's
// go_*). The node updates the values; counts kept elsewhere are read at scrape time.

import { readdirSync, readFileSync } from 'node:fs';
import { Counter, collectDefaultMetrics, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client';
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
  /** the auth store's revision */
  authRevision(): number;
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * How often the nodejs_eventloop_lag_* histogram samples the event loop: once per default
 * heartbeat interval (etcd's most frequent timer), so that any stall long enough to delay
 * a heartbeat shows. prom-client's default, 10 ms, woke an idle member 100 times a second
 * and was half of its idle CPU.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

// ---------------------------------------------------------------------------------------
// Families on a registry. prom-client prints a sample's labels in the order of the object
// that first created it; client_golang sorts them by name, so every labels object built
// here lists its keys in name order.

/** One child's labels (keys in name order) and its total. */
interface Counted<L extends string> {
  labels: Record<L, string>;
  n: number;
}

/** Makes families on one registry. */
export class Families {
  constructor(readonly registry: Registry) {}

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
  histogram<L extends string = never>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  }
  /** A counter whose total is kept elsewhere and read at scrape time (client_golang's CounterFunc). */
  counterOf(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
  /** A labelled counter whose children's totals are kept elsewhere and read at scrape time. */
  counterVecOf<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => Iterable<Counted<L>>): void {
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const c of read()) this.inc(c.labels, c.n);
      },
    });
  }
  /** A gauge read at scrape time (GaugeFunc); undefined leaves the last value. */
  gaugeOf(name: string, help: string, read: () => number | undefined | Promise<number | undefined>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        const v = await read();
        if (v !== undefined) this.set(v);
      },
    });
  }
}

/** The value of an unlabelled gauge, for a second name that shows it too. */
async function valueOf(g: Gauge): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

// ---------------------------------------------------------------------------------------
// Process metrics client_golang and etcd have beyond prom-client's process_*

function registerOsMetrics(f: Families): void {
  // unlimited: Go prints RLIM_INFINITY (2^64-1 as a uint64) as the float 2^64
  f.gaugeOf('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.', () => softLimit('Max address space') ?? 2 ** 64);
  f.gaugeOf('os_fd_used', 'The number of used file descriptors.', countOpenFds);
  f.gaugeOf('os_fd_limit', 'The file descriptor limit.', () => softLimit('Max open files'));
}

function countOpenFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** A soft resource limit from /proc/self/limits; undefined when unlimited or unknown. */
function softLimit(name: 'Max open files' | 'Max address space'): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(name));
    const soft = line?.slice(name.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// etcd's metrics

const fsyncBuckets = exponentialBuckets(0.001, 2, 14);

type GrpcLabel = 'grpc_method' | 'grpc_service' | 'grpc_type';

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
  readonly snapshotReceiveSuccess: Counter<'From'>;
  readonly healthSuccess: Counter;
  readonly healthFailures: Counter;
  readonly serverVersion: Gauge<'server_version'>;
  readonly clusterVersion: Gauge<'cluster_version'>;
  readonly serverId: Gauge<'server_id'>;

  // disk, snapshots
  readonly walFsyncDuration: Histogram;
  readonly walWriteBytes: Gauge;
  readonly backendCommitDuration: Histogram;
  readonly backendDefragDuration: Histogram;
  readonly defragInflight: Gauge;
  readonly snapFsyncDuration: Histogram;
  readonly snapSaveMarshallingDuration: Histogram;
  readonly snapSaveTotalDuration: Histogram;
  /** a backup of the store streamed to a peer or a client */
  readonly backendSnapshotDuration: Histogram;
  /** a database received from the leader, saved */
  readonly snapDbFsyncDuration: Histogram;
  readonly snapDbSaveDuration: Histogram;

  // mvcc
  readonly dbTotalSize: Gauge;
  readonly dbTotalSizeInUse: Gauge;
  readonly currentRevision: Gauge;
  readonly compactRevision: Gauge;
  readonly hashDuration: Histogram;
  readonly hashRevDuration: Histogram;
  /** a compaction's batches, its whole job and its index pass, in milliseconds */
  readonly dbCompactionPause: Histogram;
  readonly dbCompactionTotal: Histogram;
  readonly indexCompactionPause: Histogram;

  // lease
  /** the TTL of every lease granted */
  readonly leaseTtl: Histogram;

  // network
  readonly peerSentBytes: Counter<'To'>;
  readonly peerReceivedBytes: Counter<'From'>;
  readonly peerSentFailures: Counter<'To'>;
  readonly peerReceivedFailures: Counter<'From'>;
  readonly activePeers: Gauge<'Local' | 'Remote'>;
  readonly disconnectedPeers: Counter<'Local' | 'Remote'>;
  readonly peerRoundTripTime: Histogram<'To'>;

  /** gRPC calls, counted by grpcCallMetrics as plain numbers: a call costs no label lookups */
  readonly grpcCalls = new GrpcCallCounts();

  constructor() {
    const f = new Families(this.registry);
    this.hasLeader = f.gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
    this.isLeader = f.gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.');
    this.isLearner = f.gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.');
    this.leaderChanges = f.counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.');
    this.proposalsCommitted = f.gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.');
    this.proposalsApplied = f.gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.');
    this.proposalsPending = f.gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.');
    this.proposalsFailed = f.counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.');
    this.heartbeatSendFailures = f.counter(
      'etcd_server_heartbeat_send_failures_total',
      'The total number of leader heartbeat send failures (likely overloaded from slow disk).',
    );
    this.slowApply = f.counter('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).');
    this.slowReadIndexes = f.counter(
      'etcd_server_slow_read_indexes_total',
      "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
    );
    // etcd_server_read_indexes_failed_total is not exported: it counts raft refusing a
    // ReadIndex request, which etcd-ts's raft never does (a round that gets no answer is
    // asked again, then times out: etcd_server_slow_read_indexes_total).
    f.counterOf('etcd_debugging_server_lease_expired_total', 'The total number of expired leases.', () => this.sources?.leasesExpired() ?? 0);
    this.quotaBackendBytes = f.gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
    this.learnerPromoteSucceed = f.counter(
      'etcd_server_learner_promote_successes',
      'The total number of successful learner promotions while this member is leader.',
    );
    this.snapshotApplyInProgress = f.gauge(
      'etcd_server_snapshot_apply_in_progress_total',
      '1 if the server is applying the incoming snapshot. 0 if none.',
    );
    this.snapshotReceiveSuccess = f.counter('etcd_network_snapshot_receive_success', 'Total number of successful snapshot receives', ['From']);
    this.healthSuccess = f.counter('etcd_server_health_success', 'The total number of successful health checks');
    this.healthFailures = f.counter('etcd_server_health_failures', 'The total number of failed health checks');
    f.counterVecOf('etcd_server_client_requests_total', 'The total number of client requests per client version.', ['client_api_version', 'type'], () =>
      this.grpcCalls.requests.values(),
    );
    this.serverVersion = f.gauge('etcd_server_version', "Which version is running. 1 for 'server_version' label with current version.", [
      'server_version',
    ]);
    this.clusterVersion = f.gauge(
      'etcd_cluster_version',
      "Which version is running. 1 for 'cluster_version' label with current cluster version",
      ['cluster_version'],
    );
    this.serverId = f.gauge('etcd_server_id', "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", ['server_id']);

    this.walFsyncDuration = f.histogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', fsyncBuckets);
    this.walWriteBytes = f.gauge('etcd_disk_wal_write_bytes_total', 'Total number of bytes written in WAL.');
    this.backendCommitDuration = f.histogram(
      'etcd_disk_backend_commit_duration_seconds',
      'The latency distributions of commit called by backend.',
      fsyncBuckets,
    );
    this.backendDefragDuration = f.histogram(
      'etcd_disk_backend_defrag_duration_seconds',
      'The latency distribution of backend defragmentation.',
      exponentialBuckets(0.1, 2, 13),
    );
    this.defragInflight = f.gauge('etcd_disk_defrag_inflight', 'Whether or not defrag is active on the member. 1 means active, 0 means not.');
    this.snapFsyncDuration = f.histogram('etcd_snap_fsync_duration_seconds', 'The latency distributions of fsync called by snap.', fsyncBuckets);
    this.snapSaveMarshallingDuration = f.histogram(
      'etcd_debugging_snap_save_marshalling_duration_seconds',
      'The marshalling cost distributions of save called by snapshot.',
      fsyncBuckets,
    );
    this.snapSaveTotalDuration = f.histogram('etcd_debugging_snap_save_total_duration_seconds', 'The total latency distributions of save called by snapshot.', fsyncBuckets);
    this.backendSnapshotDuration = f.histogram(
      'etcd_disk_backend_snapshot_duration_seconds',
      'The latency distribution of backend snapshots.',
      exponentialBuckets(0.01, 2, 17),
    );
    this.snapDbFsyncDuration = f.histogram('etcd_snap_db_fsync_duration_seconds', 'The latency distributions of fsyncing .snap.db file', fsyncBuckets);
    this.snapDbSaveDuration = f.histogram(
      'etcd_snap_db_save_total_duration_seconds',
      'The total latency distributions of v3 snapshot save',
      exponentialBuckets(0.1, 2, 10),
    );

    this.dbTotalSize = f.gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    f.gaugeOf('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () =>
      valueOf(this.dbTotalSize),
    );
    this.dbTotalSizeInUse = f.gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    // etcd_mvcc_db_open_read_transactions is not exported: reads take a LevelDB snapshot
    // or iterator, never a long-lived read transaction that could pile up as bbolt's do.
    const mvcc = (field: keyof MvccStats) => () => this.sources?.mvcc()[field] ?? 0;
    for (const [name, help, field] of [
      ['range_total', 'Total number of ranges seen by this member.', 'ranges'],
      ['put_total', 'Total number of puts seen by this member.', 'puts'],
      ['delete_total', 'Total number of deletes seen by this member.', 'deletes'],
      ['txn_total', 'Total number of txns seen by this member.', 'txns'],
    ] as const) {
      f.counterOf(`etcd_mvcc_${name}`, help, mvcc(field));
      f.counterOf(`etcd_debugging_mvcc_${name}`, help, mvcc(field));
    }
    f.gaugeOf('etcd_debugging_mvcc_keys_total', 'Total number of keys.', mvcc('keys'));
    f.gaugeOf('etcd_debugging_mvcc_total_put_size_in_bytes', 'The total size of put kv pairs seen by this member.', mvcc('putBytes'));
    this.currentRevision = f.gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.');
    this.compactRevision = f.gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.');
    const watch = (field: keyof WatchCounts) => () => this.sources?.watch()[field] ?? 0;
    f.gaugeOf('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.', watch('streams'));
    f.gaugeOf('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', watch('watchers'));
    f.gaugeOf('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.', watch('slowWatchers'));
    f.counterOf('etcd_debugging_mvcc_events_total', 'Total number of events sent by this member.', watch('eventsSent'));
    // etcd_debugging_mvcc_pending_events_total is not exported: a watcher whose receiver is
    // slow is paused and catches up from history later (src/mvcc/watchable-store.ts), so
    // no events ever wait in a buffer to be sent.
    f.counterOf('etcd_debugging_mvcc_db_compaction_keys_total', 'Total number of db keys compacted.', mvcc('compactedDbKeys'));
    // 1 ms to 4 s, 100 ms to 800 s and 0.5 ms to 4 s, as etcd's
    this.dbCompactionPause = f.histogram(
      'etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds',
      'Bucketed histogram of db compaction pause duration.',
      exponentialBuckets(1, 2, 13),
    );
    this.dbCompactionTotal = f.histogram(
      'etcd_debugging_mvcc_db_compaction_total_duration_milliseconds',
      'Bucketed histogram of db compaction total duration.',
      exponentialBuckets(100, 2, 14),
    );
    this.indexCompactionPause = f.histogram(
      'etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds',
      'Bucketed histogram of index compaction pause duration.',
      exponentialBuckets(0.5, 2, 14),
    );
    this.hashDuration = f.histogram(
      'etcd_mvcc_hash_duration_seconds',
      'The latency distribution of storage hash operation.',
      exponentialBuckets(0.01, 2, 15),
    );
    this.hashRevDuration = f.histogram(
      'etcd_mvcc_hash_rev_duration_seconds',
      'The latency distribution of storage hash by revision operation.',
      exponentialBuckets(0.01, 2, 15),
    );

    const lease = (field: keyof LessorStats) => () => this.sources?.lease()[field] ?? 0;
    f.counterOf('etcd_debugging_lease_granted_total', 'The total number of granted leases.', lease('granted'));
    // 1 s to 97 days, as etcd's
    this.leaseTtl = f.histogram('etcd_debugging_lease_ttl_total', 'Bucketed histogram of lease TTLs.', exponentialBuckets(1, 2, 24));
    f.gaugeOf('etcd_debugging_auth_revision', 'The current revision of auth store.', () => this.sources?.authRevision() ?? 0);
    f.counterOf('etcd_debugging_lease_revoked_total', 'The total number of revoked leases.', lease('revoked'));
    f.counterOf('etcd_debugging_lease_renewed_total', 'The number of renewed leases seen by the leader.', lease('renewed'));

    // bumped on every call: plain fields, read at scrape time (a prom-client inc per message cost more than the count)
    f.counterOf('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.', () => this.grpcCalls.sentBytes);
    f.counterOf('etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.', () => this.grpcCalls.receivedBytes);
    this.peerSentBytes = f.counter('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', ['To']);
    this.peerReceivedBytes = f.counter('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', ['From']);
    this.peerSentFailures = f.counter('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', ['To']);
    this.peerReceivedFailures = f.counter('etcd_network_peer_received_failures_total', 'The total number of receive failures from peers.', [
      'From',
    ]);
    this.activePeers = f.gauge('etcd_network_active_peers', 'The current number of active peer connections.', ['Local', 'Remote']);
    this.disconnectedPeers = f.counter('etcd_network_disconnected_peers_total', 'The total number of disconnected peers.', ['Local', 'Remote']);
    // 0.1 ms to 3.3 s, as etcd's
    this.peerRoundTripTime = f.histogram('etcd_network_peer_round_trip_time_seconds', 'Round-Trip-Time histogram between peers', exponentialBuckets(0.0001, 2, 16), [
      'To',
    ]);

    const grpcLabels = ['grpc_method', 'grpc_service', 'grpc_type'] as const;
    const calls = this.grpcCalls;
    const perMethod = (field: 'started' | 'received' | 'sent') =>
      function* (): Iterable<Counted<GrpcLabel>> {
        for (const m of calls.methods.values()) yield { labels: m.labels, n: m[field] };
      };
    f.counterVecOf('grpc_server_started_total', 'Total number of RPCs started on the server.', grpcLabels, perMethod('started'));
    f.counterVecOf(
      'grpc_server_handled_total',
      'Total number of RPCs completed on the server, regardless of success or failure.',
      ['grpc_code', ...grpcLabels],
      function* () {
        for (const m of calls.methods.values()) yield* m.handled.values();
      },
    );
    f.counterVecOf('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', grpcLabels, perMethod('received'));
    f.counterVecOf('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', grpcLabels, perMethod('sent'));

    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    registerOsMetrics(f);
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

  /** The text exposition format 0.0.4. */
  render(): Promise<string> {
    return this.registry.metrics();
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

/** What one method's calls did (go-grpc-prometheus's counters, by grpc_code for handled). */
interface MethodCounts {
  labels: Record<GrpcLabel, string>;
  type: 'unary' | 'stream';
  /** a method whose calls are writes through raft (WRITE_METHODS) */
  write: boolean;
  started: number;
  received: number;
  sent: number;
  handled: Map<number, Counted<GrpcLabel | 'grpc_code'>>;
}

/** The methods whose calls are proposals through raft, waiting for the WAL anyway. */
const WRITE_METHODS = new Set([
  '/etcdserverpb.KV/Put',
  '/etcdserverpb.KV/DeleteRange',
  '/etcdserverpb.KV/Txn',
  '/etcdserverpb.KV/Compact',
  '/etcdserverpb.Lease/LeaseGrant',
  '/etcdserverpb.Lease/LeaseRevoke',
]);

/** gRPC call counts by method, and calls by client API version and call type. */
export class GrpcCallCounts {
  readonly methods = new Map<string, MethodCounts>();
  readonly requests = new Map<string, Counted<'client_api_version' | 'type'>>();
  /** bytes of the messages received from and sent to clients, over all calls (etcd's client_grpc_*_bytes_total) */
  receivedBytes = 0;
  sentBytes = 0;
  /** messages received for methods other than writes (reads, watches, keepalives, ...): the WAL's WalWriteMode reads it */
  receivedNotWrites = 0;

  method(method: MethodDefinition): MethodCounts {
    let c = this.methods.get(method.path);
    if (c === undefined) {
      const slash = method.path.lastIndexOf('/');
      c = {
        labels: {
          grpc_method: method.path.slice(slash + 1),
          grpc_service: method.path.slice(1, slash),
          grpc_type: method.requestStream
            ? method.responseStream ? 'bidi_stream' : 'client_stream'
            : method.responseStream ? 'server_stream' : 'unary',
        },
        type: method.requestStream || method.responseStream ? 'stream' : 'unary',
        write: WRITE_METHODS.has(method.path),
        started: 0,
        received: 0,
        sent: 0,
        handled: new Map(),
      };
      this.methods.set(method.path, c);
    }
    return c;
  }

  request(type: 'unary' | 'stream', version: string): Counted<'client_api_version' | 'type'> {
    const key = `${type} ${version}`;
    let r = this.requests.get(key);
    if (r === undefined) {
      r = { labels: { client_api_version: version, type }, n: 0 };
      this.requests.set(key, r);
    }
    return r;
  }
}

/**
 * Counts calls and messages as go-grpc-prometheus does, their bytes as etcd does, and
 * calls per client API version (the client-api-version header clientv3 sends, "unknown"
 * without one) as etcd's interceptors do: `new GrpcServer({ observe: grpcCallMetrics(metrics) })`.
 * Every call is counted as handled with the status it ended with, those refused before a
 * handler ran (an over-large or undecodable request) included.
 */
export function grpcCallMetrics(metrics: Metrics): (method: MethodDefinition, clientApiVersion: string | undefined) => CallObserver {
  const counts = metrics.grpcCalls;
  return (method, clientApiVersion) => {
    const c = counts.method(method);
    c.started++;
    counts.request(c.type, clientApiVersion ?? 'unknown').n++;
    return new CallCounter(counts, c);
  };
}

/** One call's observer: one object per call (not an object and three closures), on every call's path. */
class CallCounter implements CallObserver {
  constructor(
    private readonly counts: GrpcCallCounts,
    private readonly method: MethodCounts,
  ) {}

  received(bytes: number): void {
    this.method.received++;
    this.counts.receivedBytes += bytes;
    if (!this.method.write) this.counts.receivedNotWrites++;
  }

  sent(bytes: number): void {
    this.method.sent++;
    this.counts.sentBytes += bytes;
  }

  handled(code: number): void {
    const c = this.method;
    let h = c.handled.get(code);
    if (h === undefined) {
      h = { labels: { grpc_code: GRPC_CODE_NAMES[code] ?? 'Unknown', ...c.labels }, n: 0 };
      c.handled.set(code, h);
    }
    h.n++;
  }
}
