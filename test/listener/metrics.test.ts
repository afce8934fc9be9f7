import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { exponentialBuckets, formatFloat, grpcCallMetrics, Metrics, Registry } from '../../src/server/metrics.js';
import { GrpcServer, serveClient } from '../../src/server/listener/index.js';
import { addRangeService, captureLogger, KVClient, range } from './helpers.js';

describe('formatFloat (Go strconv "g", -1)', () => {
  it('matches what client_golang prints', () => {
    const cases: Array<[number, string]> = [
      [0, '0'], [1, '1'], [0.04, '0.04'], [20000, '20000'], [524288, '524288'], [1048576, '1.048576e+06'],
      [2147483648, '2.147483648e+09'], [1795308009.52, '1.79530800952e+09'], [0.0001, '0.0001'], [0.00001, '1e-05'],
      [-3, '-3'], [1.8446744073709552e19, '1.8446744073709552e+19'], [Infinity, '+Inf'], [-Infinity, '-Inf'], [NaN, 'NaN'],
    ];
    for (const [v, text] of cases) expect(formatFloat(v), String(v)).toBe(text);
  });
});

describe('Registry', () => {
  it('renders counters, gauges and labelled histograms in text format 0.0.4, sorted', () => {
    const r = new Registry();
    const g = r.gauge('b_gauge', 'A gauge.');
    const c = r.counterVec('a_total', 'Counts "things"\nby kind.', ['kind', 'code']);
    const h = r.histogram('c_seconds', 'Latency.', [0.1, 0.2]);
    g.set(2.5);
    c.labels({ kind: 'x"y', code: 'OK' }).inc();
    c.labels({ kind: 'a\\b\nc', code: 'OK' }).inc(2);
    h.observe(0.05);
    h.observe(0.2);
    h.observe(7);
    expect(r.render()).toBe(
      [
        '# HELP a_total Counts "things"\\nby kind.',
        '# TYPE a_total counter',
        'a_total{code="OK",kind="a\\\\b\\nc"} 2',
        'a_total{code="OK",kind="x\\"y"} 1',
        '# HELP b_gauge A gauge.',
        '# TYPE b_gauge gauge',
        'b_gauge 2.5',
        '# HELP c_seconds Latency.',
        '# TYPE c_seconds histogram',
        'c_seconds_bucket{le="0.1"} 1',
        'c_seconds_bucket{le="0.2"} 2',
        'c_seconds_bucket{le="+Inf"} 3',
        'c_seconds_sum 7.25',
        'c_seconds_count 3',
        '',
      ].join('\n'),
    );
  });

  it('omits labelled families with no children and refuses bad names, duplicates and decreasing counters', () => {
    const r = new Registry();
    r.counterVec('x_total', 'X.', ['To']);
    expect(r.render()).toBe('');
    expect(() => r.counter('x_total', 'again')).toThrow(/already registered/);
    expect(() => r.counter('bad-name', 'no')).toThrow(/invalid metric name/);
    expect(() => r.histogramVec('h', 'H.', ['le'], [1])).toThrow(/invalid label/);
    expect(() => r.histogram('h2', 'H.', [2, 1])).toThrow(/buckets must increase/);
    expect(() => r.counter('y_total', 'Y.').inc(-1)).toThrow(RangeError);
  });
});

describe('Metrics', () => {
  it('uses etcd 3.4.23 names, types and help texts', () => {
    const m = new Metrics();
    m.setIdentity({ serverVersion: '3.4.23', clusterVersion: '3.4', memberId: 0x8e9e05c52164694dn });
    m.clientRequests.labels({ type: 'unary', client_api_version: '3.4' }).inc();
    for (const v of [m.peerSentBytes, m.peerSentFailures, m.peerRoundTripTime]) v.labels({ To: 'a' });
    for (const v of [m.peerReceivedBytes, m.peerReceivedFailures]) v.labels({ From: 'a' });
    m.activePeers.labels({ Local: 'a', Remote: 'b' });
    m.disconnectedPeers.labels({ Local: 'a', Remote: 'b' });
    for (const v of [m.grpcStarted, m.grpcMsgReceived, m.grpcMsgSent]) v.labels({ grpc_type: 'unary', grpc_service: 's', grpc_method: 'm' });
    m.grpcHandled.labels({ grpc_type: 'unary', grpc_service: 's', grpc_method: 'm', grpc_code: 'OK' });
    const ours = headerLines(m.render());
    const etcd = headerLines(readFileSync(new URL('./fixtures/etcd-3.4.23-metrics-help.txt', import.meta.url), 'utf8'));
    const common = [...ours.keys()].filter((k) => etcd.has(k));
    // Everything the brief and the issue name is among them.
    for (const name of [
      'etcd_server_has_leader', 'etcd_server_is_leader', 'etcd_server_leader_changes_seen_total', 'etcd_server_proposals_committed_total',
      'etcd_server_proposals_applied_total', 'etcd_server_proposals_pending', 'etcd_server_proposals_failed_total',
      'etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds', 'etcd_mvcc_db_total_size_in_bytes',
      'etcd_mvcc_db_total_size_in_use_in_bytes', 'etcd_debugging_mvcc_keys_total', 'etcd_debugging_mvcc_watcher_total',
      'etcd_server_quota_backend_bytes', 'etcd_server_version', 'grpc_server_started_total', 'grpc_server_handled_total',
      'process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds', 'process_max_fds', 'process_start_time_seconds',
    ]) {
      expect(common, name).toContain(name);
    }
    for (const name of common) expect(ours.get(name), name).toEqual(etcd.get(name));
    // Names etcd only shows on multi-member clusters are ours too.
    expect([...ours.keys()].filter((k) => !etcd.has(k)).sort()).toEqual([
      'etcd_network_active_peers', 'etcd_network_disconnected_peers_total', 'etcd_network_peer_received_bytes_total',
      'etcd_network_peer_received_failures_total', 'etcd_network_peer_round_trip_time_seconds', 'etcd_network_peer_sent_bytes_total',
      'etcd_network_peer_sent_failures_total', 'etcd_server_client_requests_total',
    ]);
  });

  it("has etcd's buckets and identity samples, and reads process stats at render time", () => {
    const m = new Metrics();
    m.setIdentity({ serverVersion: '3.4.23', clusterVersion: '3.4', memberId: 0x8e9e05c52164694dn });
    m.quotaBackendBytes.set(2 * 1024 ** 3);
    m.walFsyncDuration.observe(0.003);
    m.dbTotalSize.set(20480);
    const text = m.render();
    expect(m.walFsyncDuration.buckets).toEqual(exponentialBuckets(0.001, 2, 14));
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 0\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 1\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1\n');
    expect(text).toContain('etcd_server_quota_backend_bytes 2.147483648e+09\n');
    expect(text).toContain('etcd_server_version{server_version="3.4.23"} 1\n');
    expect(text).toContain('etcd_cluster_version{cluster_version="3.4"} 1\n');
    expect(text).toContain('etcd_server_id{server_id="8e9e05c52164694d"} 1\n');
    expect(text).toContain('etcd_debugging_mvcc_db_total_size_in_bytes 20480\n');
    const value = (name: string): number => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))![1]);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(value('process_open_fds')).toBeGreaterThan(2);
    expect(value('process_max_fds')).toBeGreaterThan(value('process_open_fds'));
    expect(value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(Math.abs(value('process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(60);
  });
});

describe('grpcCallMetrics', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('counts started and handled calls and messages with go-grpc-prometheus labels', async () => {
    const m = new Metrics();
    const server = new GrpcServer({ maxRequestBytes: 1024, observe: grpcCallMetrics(m) });
    addRangeService(server);
    const { logger } = captureLogger();
    const l = await serveClient(new URL('http://127.0.0.1:0'), undefined, server, (_q: http.IncomingMessage, r: http.ServerResponse) => r.end(), logger);
    const c = new KVClient(new URL(l.url).host, grpc.credentials.createInsecure());
    cleanups.push(async () => {
      c.close();
      await l.close();
      server.forceShutdown();
    });
    await range(c, 'a');
    await range(c, 'b');
    await expect(range(c, 'error')).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    const text = m.render();
    const labels = 'grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"';
    expect(text).toContain(`grpc_server_started_total{${labels}} 3\n`);
    expect(text).toContain(`grpc_server_handled_total{grpc_code="OK",${labels}} 2\n`);
    expect(text).toContain(`grpc_server_handled_total{grpc_code="FailedPrecondition",${labels}} 1\n`);
    expect(text).toContain(`grpc_server_msg_received_total{${labels}} 3\n`);
    expect(text).toContain(`grpc_server_msg_sent_total{${labels}} 2\n`);
  });
});

function headerLines(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = line.match(/^# (HELP|TYPE) (\S+) (.*)$/);
    if (m) out.set(m[2]!, [...(out.get(m[2]!) ?? []), `${m[1]} ${m[3]}`]);
  }
  return out;
}
