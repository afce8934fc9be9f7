// The metrics operators alert on move when the member works: after writes through stock
// etcdctl, the WAL fsync and backend commit histograms, the gRPC counters and the client
// byte counts have observations (etcd's dashboards read etcd_disk_backend_commit_duration_seconds to tell
// a slow disk).

import { afterAll, expect, it } from 'vitest';
import { startEtcd } from '../../src/index.js';
import { eventually } from './cluster-harness.js';
import { cleanup, ctl, inProcessConfig, spawnCtl } from './harness.js';

afterAll(cleanup);

function sample(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

it('counts WAL fsyncs, backend commits, handled gRPC calls and client bytes', async () => {
  const etcd = await startEtcd(await inProcessConfig('metrics'));
  try {
    await etcd.ready;
    const url = etcd.clientUrls[0]!;
    for (let i = 0; i < 3; i++) expect(await ctl(url, ['put', `k${i}`, 'v'])).toBe('OK\n');
    // the store commits on its batch interval (100 ms), after the puts are acknowledged
    await eventually(async () => {
      const text = await fetch(`${url}/metrics`).then((r) => r.text());
      expect(sample(text, 'etcd_disk_wal_fsync_duration_seconds_count')).toBeGreaterThanOrEqual(3);
      expect(sample(text, 'etcd_disk_backend_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'etcd_network_client_grpc_received_bytes_total')).toBeGreaterThan(3 * 'k0v'.length);
      expect(sample(text, 'etcd_network_client_grpc_sent_bytes_total')).toBeGreaterThan(0);
      expect(sample(text, 'grpc_server_handled_total\\{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"\\}')).toBe(3);
    }, 10_000);
  } finally {
    await etcd.close();
  }
});

it('counts puts, deletes, ranges, txns and keys as the store applies them, and a watch its client cancels as Canceled', async () => {
  const etcd = await startEtcd(await inProcessConfig('mvcc-metrics'));
  try {
    await etcd.ready;
    const url = etcd.clientUrls[0]!;
    const scrape = () => fetch(`${url}/metrics`).then((r) => r.text());
    await ctl(url, ['put', 'k', 'v']);
    for (let i = 1; i <= 3; i++) {
      await ctl(url, ['put', String(i), 'v']);
      await ctl(url, ['del', String(i)]);
      // a watch from revision 1 gets its event, then etcdctl is stopped: the client cancels
      const w = spawnCtl(url, ['watch', 'k', '--rev', '1']);
      await w.waitOutput('PUT\nk\nv\n');
      await w.kill();
    }
    await ctl(url, ['txn'], 'value("k") = "v"\n\nput k v2\nget k\n\n\n');
    await ctl(url, ['get', 'k']);
    // read right after the requests, as etcd's e2e metrics test does: no sampling delay.
    // The figures are what etcd 3.4.23 reports for the same requests.
    const text = await scrape();
    expect(sample(text, 'etcd_mvcc_put_total')).toBe(5);
    expect(sample(text, 'etcd_debugging_mvcc_put_total')).toBe(5);
    expect(sample(text, 'etcd_mvcc_delete_total')).toBe(3);
    expect(sample(text, 'etcd_mvcc_txn_total')).toBe(1);
    expect(sample(text, 'etcd_mvcc_range_total')).toBe(3);
    expect(sample(text, 'etcd_debugging_mvcc_keys_total')).toBe(1);
    expect(sample(text, 'etcd_debugging_mvcc_total_put_size_in_bytes')).toBe(2 + 2 * 3 + 3);
    await eventually(async () =>
      expect(sample(await scrape(), 'grpc_server_handled_total\\{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"\\}')).toBe(3),
    );
  } finally {
    await etcd.close();
  }
});

it('reports open watch streams and watchers, and drops them when their client goes', async () => {
  const etcd = await startEtcd(await inProcessConfig('watch-metrics'));
  try {
    await etcd.ready;
    const url = etcd.clientUrls[0]!;
    const scrape = () => fetch(`${url}/metrics`).then((r) => r.text());
    // etcdctl watch opens one stream with one watcher; two of them, two of each
    const watches = [spawnCtl(url, ['watch', 'a']), spawnCtl(url, ['watch', 'b', '--prefix'])];
    await ctl(url, ['put', 'a', '1']);
    await ctl(url, ['put', 'b1', '1']);
    await watches[0]!.waitOutput('PUT\na\n1\n');
    await watches[1]!.waitOutput('PUT\nb1\n1\n');
    // gauges are sampled once a second
    await eventually(async () => {
      const text = await scrape();
      expect(sample(text, 'etcd_debugging_mvcc_watch_stream_total')).toBe(2);
      expect(sample(text, 'etcd_debugging_mvcc_watcher_total')).toBe(2);
      expect(sample(text, 'etcd_debugging_mvcc_slow_watcher_total')).toBe(0);
    }, 10_000);
    for (const w of watches) await w.kill();
    await eventually(async () => {
      const text = await scrape();
      expect(sample(text, 'etcd_debugging_mvcc_watch_stream_total')).toBe(0);
      expect(sample(text, 'etcd_debugging_mvcc_watcher_total')).toBe(0);
    }, 10_000);
  } finally {
    await etcd.close();
  }
});
