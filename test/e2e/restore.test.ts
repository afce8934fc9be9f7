// Disaster recovery as etcd's guide does it, from a real etcd 3.4.23 backup: `etcdctl
// snapshot save`, `etcdctl snapshot restore` for every member, then the members start on
// the restored data dirs. etcd-ts members serve what real etcd serves from the same file
// (same hashkv at the same revision, keys, leases, users and roles, member and cluster
// IDs), then take new writes that survive a restart.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type ClusterPlan, clientUrl, eventually, planCluster, startSlot } from './cluster-harness.js';
import { restoreMember, served, type Served } from './backup-harness.js';
import { EtcdClient } from './client.js';
import { cleanup, ctl, startMember, stopMember, tempDir, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/** Real etcd 3.4.23 with a history: puts, overwrites, deletes, a txn, a lease with keys, a compaction, users and roles. */
async function etcdBackup(): Promise<string> {
  const etcd = await startMember({ name: 'source', binary: 'etcd' });
  const ep = etcd.clientUrl;
  // the 40 puts through one gRPC client, not an etcdctl run (a Go process start) each
  const client = new EtcdClient(ep);
  for (let i = 0; i < 30; i++) await client.put(`k/${String(i).padStart(2, '0')}`, `v${i}`);
  for (let i = 0; i < 10; i++) await client.put(`k/${String(i).padStart(2, '0')}`, `again${i}`);
  client.close();
  await ctl(ep, ['del', 'k/2', 'k/25']);
  await ctl(ep, ['txn'], 'create("t/1") = "0"\n\nput t/1 one\nput t/2 two\n\nput t/failed no\n\n');
  const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep, ['lease', 'grant', '900']))![1]!;
  await ctl(ep, ['put', 'leased/a', 'x', `--lease=${lease}`]);
  await ctl(ep, ['put', 'leased/b', 'y', `--lease=${lease}`]);
  await ctl(ep, ['compact', '20']);
  await ctl(ep, ['put', 'after-compaction', 'z']);
  await ctl(ep, ['user', 'add', 'alice:secret']);
  await ctl(ep, ['role', 'add', 'reader']);
  await ctl(ep, ['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix=true']);
  await ctl(ep, ['user', 'grant-role', 'alice', 'reader']);
  const file = path.join(tempDir(), 'backup.db');
  await ctl(ep, ['snapshot', 'save', file]);
  await stopMember(etcd);
  return file;
}

function memberIds(ep: string): Promise<string> {
  return ctl(ep, ['member', 'list']).then((out) => out.split('\n').map((l) => l.split(',').slice(0, 4).join(',')).sort().join('\n'));
}

describe('etcd-ts on data dirs restored from a real etcd 3.4.23 backup', () => {
  let backup: string;
  let reference: Served;
  let referenceMembers: string;

  it('one member: serves what real etcd serves from the same restore, then takes writes that survive a restart', async () => {
    backup = await etcdBackup();
    const plan = await planCluster(1, 'restored');
    // real etcd first, on one restore of the file; then etcd-ts on another with the same flags
    const etcdPlan: ClusterPlan = { ...plan, slots: [{ ...plan.slots[0]!, dataDir: path.join(tempDir(), 'etcd-restored') }] };
    await restoreMember(backup, etcdPlan, 0);
    await restoreMember(backup, plan, 0);
    const etcd = await startMember({ name: plan.slots[0]!.name, binary: 'etcd', dataDir: etcdPlan.slots[0]!.dataDir, clientPort: plan.slots[0]!.clientPort, peerPort: plan.slots[0]!.peerPort });
    reference = await served(etcd.clientUrl);
    referenceMembers = await memberIds(etcd.clientUrl);
    await stopMember(etcd);
    expect(reference.kvs).toHaveLength(30);
    expect(reference.leases).toHaveLength(1);

    let m = await startSlot(plan, plan.slots[0]!);
    expect(await served(m.clientUrl)).toEqual(reference);
    expect(await memberIds(m.clientUrl)).toBe(referenceMembers);
    const imported = m.output().split('\n').find((l) => l.includes("imported etcd's bbolt db"))!;
    expect(JSON.parse(imported)).toMatchObject({ revisions: expect.any(Number), leases: 1, users: 1, roles: 1, revision: reference.hashkv.revision, 'consistent-index': 1 });
    // imported and kept for etcd's tools: it is not older than the restored .snap
    const member = path.join(plan.slots[0]!.dataDir, 'member');
    expect(existsSync(path.join(member, 'snap', 'db'))).toBe(true);
    expect(existsSync(path.join(member, 'leveldb.import'))).toBe(false);

    await ctl(m.clientUrl, ['put', 'k/new', 'after restore']);
    await ctl(m.clientUrl, ['del', 'k/00']);
    const afterWrites = await served(m.clientUrl);
    expect(afterWrites.hashkv.revision).toBe(reference.hashkv.revision + 2);
    await stopMember(m);
    m = await startSlot(plan, plan.slots[0]!);
    expect(await served(m.clientUrl)).toEqual(afterWrites);
    // imported once: the second start opens the store the first one built
    expect(m.output()).not.toContain("importing etcd's bbolt db");
    await stopMember(m);
    // some 60 etcdctl runs and four member starts: under a minute on a quiet machine, minutes on a loaded one
  }, 300_000);

  it('three members restored as the guide does it (--initial-cluster, --initial-cluster-token, --initial-advertise-peer-urls) serve it alike', async () => {
    const plan = await planCluster(3, 'dr');
    for (let i = 0; i < 3; i++) await restoreMember(backup, plan, i);
    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s)));
    for (const s of plan.slots) expect(await served(clientUrl(s))).toEqual(reference);
    const list = await ctl(clientUrl(plan.slots[0]!), ['member', 'list']);
    for (const s of plan.slots) expect(list).toContain(`, started, ${s.name}, http://127.0.0.1:${s.peerPort}, ${clientUrl(s)}, false`);

    await ctl(clientUrl(plan.slots[1]!), ['put', 'k/new', 'replicated']);
    for (const s of plan.slots) {
      await eventually(async () => expect(await ctl(clientUrl(s), ['get', 'k/new', '--print-value-only', '--consistency=s'])).toBe('replicated\n'));
    }
    await Promise.all(members.map((m) => stopMember(m)));
  }, 300_000);
});
