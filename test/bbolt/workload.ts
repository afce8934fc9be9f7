// One deterministic history of writes (puts, deletes, a txn, leases with fixed IDs,
// large values, a compaction) applied through the gRPC API, so real etcd and etcd-ts
// given the same workload end at the same revision with the same keys.

import { seededRandom } from '../../src/pkg/rng.js';
import { EtcdClient } from '../e2e/client.js';

export interface Workload {
  /** small keys written in batches of txns */
  keys: number;
  /** values of 10–100 KiB, so bbolt needs overflow pages */
  bigValues: number;
}

export const LEASE_IDS = ['7001', '7002'] as const;

export async function applyWorkload(endpoint: string, w: Workload): Promise<void> {
  const c = new EtcdClient(endpoint);
  const rand = seededRandom(17);
  const put = (key: string, value: Buffer | string, lease?: string) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: lease ?? '0' } });
  try {
    for (const id of LEASE_IDS) await c.call(c.lease, 'LeaseGrant', { ID: id, TTL: '3600' });
    // Each txn is one revision with many sub-revisions: keys fill pages quickly.
    for (let i = 0; i < w.keys; i += 100) {
      const ops = [];
      for (let j = i; j < Math.min(i + 100, w.keys); j++) ops.push(put(`k/${String(j).padStart(6, '0')}`, `v${j}-${'x'.repeat(Math.floor(rand() * 64))}`));
      await c.call(c.kv, 'Txn', { success: ops });
    }
    for (let i = 0; i < w.bigValues; i++) {
      const size = 10 * 1024 + Math.floor(rand() * 90 * 1024);
      await c.put(`big/${i}`, String.fromCharCode(97 + (i % 26)).repeat(size));
    }
    await c.call(c.kv, 'Put', { key: Buffer.from('leased/a'), value: Buffer.from('1'), lease: LEASE_IDS[0] });
    await c.call(c.kv, 'Put', { key: Buffer.from('leased/b'), value: Buffer.from('2'), lease: LEASE_IDS[1] });
    await c.call(c.kv, 'DeleteRange', { key: Buffer.from('k/000001') });
    await c.call(c.kv, 'DeleteRange', { key: Buffer.from('k/0001'), range_end: Buffer.from('k/0002') });
    await c.call(c.kv, 'Txn', {
      compare: [{ key: Buffer.from('k/000000'), target: 'VERSION', result: 'EQUAL', version: '1' }],
      success: [put('k/000000', 'changed'), { request_delete_range: { key: Buffer.from('k/000002') } }],
    });
    const { header } = await c.call<{ header: { revision: string } }>(c.kv, 'Put', { key: Buffer.from('k/000003'), value: Buffer.from('again') });
    await c.call(c.kv, 'Compact', { revision: String(Number(header.revision) - 2), physical: true });
    await c.put('after-compact', 'yes');
  } finally {
    c.close();
  }
}
