// The import of etcd's bbolt db is all or nothing: killed while it streams records into
// the temporary store, or once that store is complete but before it is renamed into
// place, the next start finds no store, imports again from scratch and serves exactly
// what real etcd served.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../e2e/client.js';
import { type ClusterPlan, bulkKey, planCluster, startSlot } from '../../e2e/cluster-harness.js';
import { cleanup, ctl, etcdctl, startMember, stopMember, tempDir } from '../../e2e/harness.js';
import { childScript } from '../../child-script.js';

afterAll(cleanup);

const TXN_OPS = 128;
const KEYS = 72 * TXN_OPS;

const CHILD = fileURLToPath(new URL('./import-crash-child.ts', import.meta.url));

async function importKilledAt(boltPath: string, dbDir: string, at: string): Promise<string | number | null> {
  const child = spawn(process.execPath, [await childScript(CHILD), boltPath, dbDir, at], { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(signal ?? code));
  });
}

async function hashkv(ep: string): Promise<{ hash: number; revision: number }> {
  const h = (JSON.parse(await ctl(ep, ['endpoint', 'hashkv', '-w', 'json'])) as Array<{ HashKV: { header: { revision: number }; hash: number } }>)[0]!.HashKV;
  return { hash: h.hash, revision: h.header.revision };
}

describe('importing a bbolt db, killed part way', () => {
  it('leaves no store behind; the next start imports again and serves the whole backup', async () => {
    // a backup of real etcd with more records than two import batches (4,096 records each):
    // transactions of etcd's most operations (--max-txn-ops 128), each one revision
    const etcd = await startMember({ name: 'big', binary: 'etcd' });
    const client = new EtcdClient(etcd.clientUrl);
    for (let txn = 0; txn < KEYS / TXN_OPS; txn++) {
      const keys = Array.from({ length: TXN_OPS }, (_, i) => txn * TXN_OPS + i);
      const success = keys.map((i) => ({ request_put: { key: Buffer.from(bulkKey(i)), value: Buffer.from(`value-${i}`) } }));
      await client.call(client.kv, 'Txn', { compare: [], success, failure: [] });
    }
    client.close();
    const reference = await hashkv(etcd.clientUrl);
    const backup = path.join(tempDir(), 'big.db');
    await ctl(etcd.clientUrl, ['snapshot', 'save', backup]);
    await stopMember(etcd);

    const plan: ClusterPlan = await planCluster(1, 'crash');
    const s = plan.slots[0]!;
    const r = await etcdctl('127.0.0.1:1', ['snapshot', 'restore', backup, '--name', s.name, '--data-dir', s.dataDir,
      '--initial-cluster', plan.initialCluster, '--initial-cluster-token', plan.token, '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peerPort}`]);
    expect(r.code, r.stderr).toBe(0);
    const member = path.join(s.dataDir, 'member');
    const boltPath = path.join(member, 'snap', 'db');
    const dbDir = path.join(member, 'leveldb');

    for (const at of ['batch:1', 'rename']) {
      expect(await importKilledAt(boltPath, dbDir, at), at).toBe('SIGKILL');
      expect(existsSync(path.join(member, 'leveldb.import')), at).toBe(true);
      expect(existsSync(dbDir), at).toBe(false);
    }

    const m = await startSlot(plan, s);
    expect(m.output()).toContain("importing etcd's bbolt db");
    // the store's first open takes the key index the import built: no second pass over it
    expect(m.output()).toMatch(/"restored-from":"build"/);
    expect(await hashkv(m.clientUrl)).toEqual(reference);
    expect(JSON.parse(await ctl(m.clientUrl, ['get', 'bulk/', '--prefix', '--limit=1', '-w', 'json']))).toMatchObject({ count: KEYS });
    expect(existsSync(path.join(member, 'leveldb.import'))).toBe(false);
    await stopMember(m);
  }, 180_000);
});
