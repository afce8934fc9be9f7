import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { grpcCallMetrics, Metrics } from '../../src/server/metrics.js';
import { GrpcServer, serveClient } from '../../src/server/listener/index.js';
import { addRangeService, captureLogger, KVClient, range } from './helpers.js';
import { type Family, parseExposition } from './exposition.js';

/** Families real etcd has and etcd-ts does not export, and why. */
const NOT_EXPORTED: Record<string, RegExp> = {
  "Go's runtime and HTTP handler: etcd-ts exports Node's (nodejs_*) instead": /^(go_|promhttp_|etcd_server_go_version$)/,
  'the v2 store counts nothing yet': /^etcd_debugging_store_/,
  "bbolt's commit phases, which LevelDB does not have": /^etcd_debugging_disk_backend_commit_(rebalance|spill|write)_duration_seconds$/,
  'never happens in etcd-ts (see src/server/metrics.ts)': /^etcd_(mvcc_db_open_read_transactions|debugging_mvcc_pending_events_total|server_read_indexes_failed_total)$/,
  "the grpc-proxy's, on its own /metrics": /^etcd_grpc_proxy_/,
};
/** Families etcd-ts exports that the fixture lacks, and why. */
const OURS_ONLY: Record<string, RegExp> = {
  "Node's runtime, in place of Go's (prom-client's collectors)": /^(nodejs_|process_(cpu_user_seconds_total|cpu_system_seconds_total|heap_bytes)$)/,
  'etcd shows them only once something failed or a snapshot was sent': /^etcd_network_(disconnected_peers_total|peer_(sent|received)_failures_total|snapshot_receive_success)$/,
};
const reasonFor = (table: Record<string, RegExp>, name: string) => Object.entries(table).find(([, re]) => re.test(name))?.[0];

/** A Metrics with one child of every labelled family, as a member that has served and has peers. */
function populated(): Metrics {
  const m = new Metrics();
  m.setIdentity({ serverVersion: '3.4.23', clusterVersion: '3.4', memberId: 0x8e9e05c52164694dn });
  for (const v of [m.peerSentBytes, m.peerSentFailures]) v.labels({ To: 'a' }).inc();
  m.peerRoundTripTime.labels({ To: 'a' }).observe(0.001);
  for (const v of [m.peerReceivedBytes, m.peerReceivedFailures, m.snapshotReceiveSuccess]) v.labels({ From: 'a' }).inc();
  m.activePeers.labels({ Local: 'a', Remote: 'b' }).set(1);
  m.disconnectedPeers.labels({ Local: 'a', Remote: 'b' }).inc();
  const call = grpcCallMetrics(m)({ path: '/etcdserverpb.KV/Range', requestStream: false, responseStream: false } as never, '3.4');
  call.received(10);
  call.sent(10);
  call.handled(0);
  return m;
}

describe('Metrics', () => {
  it("uses etcd 3.4.23's names, types, help texts, label names (in etcd's order) and histogram buckets", async () => {
    const ours = parseExposition(await populated().render());
    const etcd = parseExposition(readFileSync(new URL('./fixtures/etcd-3.4.23-metrics.txt', import.meta.url), 'utf8'));
    const shape = (f: Family) => ({ help: f.help, type: f.type, labels: f.labelNames, buckets: f.buckets });
    for (const [name, f] of ours) {
      const theirs = etcd.get(name);
      if (theirs === undefined) expect(reasonFor(OURS_ONLY, name), `${name} is not etcd's`).toBeDefined();
      else expect(shape(f), name).toEqual(shape(theirs));
    }
    for (const name of etcd.keys()) {
      if (!ours.has(name)) expect(reasonFor(NOT_EXPORTED, name), `etcd's ${name} is missing`).toBeDefined();
    }
    // the ones operators alert on are among those compared
    for (const name of [
      'etcd_server_has_leader', 'etcd_server_leader_changes_seen_total', 'etcd_server_proposals_failed_total', 'etcd_disk_wal_fsync_duration_seconds',
      'etcd_disk_backend_commit_duration_seconds', 'etcd_mvcc_db_total_size_in_bytes', 'etcd_network_peer_sent_bytes_total',
      'grpc_server_handled_total', 'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds',
    ]) {
      expect(etcd.has(name) && ours.has(name), name).toBe(true);
    }
  });

  it('shows the identity samples, values set and the process as it is now', async () => {
    const m = new Metrics();
    m.setIdentity({ serverVersion: '3.4.23', clusterVersion: '3.4', memberId: 0x8e9e05c52164694dn });
    m.quotaBackendBytes.set(2 * 1024 ** 3);
    m.walFsyncDuration.observe(0.003);
    m.dbTotalSize.set(20480);
    const text = await m.render();
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 0\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 1\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1\n');
    expect(text).toContain('etcd_server_quota_backend_bytes 2147483648\n');
    expect(text).toContain('etcd_server_version{server_version="3.4.23"} 1\n');
    expect(text).toContain('etcd_cluster_version{cluster_version="3.4"} 1\n');
    expect(text).toContain('etcd_server_id{server_id="8e9e05c52164694d"} 1\n');
    expect(text).toContain('etcd_debugging_mvcc_db_total_size_in_bytes 20480\n');
    const value = (name: string): number => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))![1]);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(value('process_open_fds')).toBeGreaterThan(2);
    expect(value('os_fd_used')).toBeGreaterThan(2);
    expect(value('process_max_fds')).toBe(value('os_fd_limit'));
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

  it('counts started and handled calls and messages with go-grpc-prometheus labels, and calls per client API version', async () => {
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
    const asClientV3 = new grpc.Metadata();
    asClientV3.set('client-api-version', '3.4');
    await range(c, 'c', asClientV3);
    const text = await m.render();
    const labels = 'grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"';
    expect(text).toContain(`grpc_server_started_total{${labels}} 4\n`);
    expect(text).toContain(`grpc_server_handled_total{grpc_code="OK",${labels}} 3\n`);
    expect(text).toContain(`grpc_server_handled_total{grpc_code="FailedPrecondition",${labels}} 1\n`);
    expect(text).toContain(`grpc_server_msg_received_total{${labels}} 4\n`);
    expect(text).toContain(`grpc_server_msg_sent_total{${labels}} 3\n`);
    expect(text).toContain('etcd_server_client_requests_total{client_api_version="unknown",type="unary"} 3\n');
    expect(text).toContain('etcd_server_client_requests_total{client_api_version="3.4",type="unary"} 1\n');
  });
});

describe('GrpcCallCounts.receivedNotWrites', () => {
  it('counts the messages of every method but the writes through raft (what WalWriteMode watches)', () => {
    const m = new Metrics();
    const observe = grpcCallMetrics(m);
    const message = (path: string, stream = false) => observe({ path, requestStream: stream, responseStream: stream } as never, '3.4').received(8);
    for (const write of ['/etcdserverpb.KV/Put', '/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Txn', '/etcdserverpb.KV/Compact', '/etcdserverpb.Lease/LeaseGrant', '/etcdserverpb.Lease/LeaseRevoke']) {
      message(write);
    }
    expect(m.grpcCalls.receivedNotWrites).toBe(0);
    message('/etcdserverpb.KV/Range');
    message('/etcdserverpb.Watch/Watch', true);
    message('/etcdserverpb.Lease/LeaseKeepAlive', true);
    message('/etcdserverpb.Maintenance/Status');
    expect(m.grpcCalls.receivedNotWrites).toBe(4);
  });
});
