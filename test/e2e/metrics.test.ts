// The metrics operators alert on move when the member works: after writes through stock
// etcdctl, the WAL fsync and backend commit histograms, the gRPC counters and the client
// byte counts have observations (etcd's dashboards read etcd_disk_backend_commit_duration_seconds to tell
// a slow disk).

import { afterAll, expect, it } from 'vitest';
import { startEtcd } from '../../src/index.js';
import { eventually } from './cluster-harness.js';
import { cleanup, ctl, inProcessConfig } from './harness.js';

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
