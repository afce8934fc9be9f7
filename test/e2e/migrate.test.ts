// In-place migration: real etcd 3.4.23 members (one, then a cluster of three) with data,
// leases and a compaction are stopped, and etcd-ts starts on the same --data-dir with the
// same flags. It reads etcd's bbolt db, its .snap files (the v2 store with membership and
// the cluster version) and its WAL (v2 publish and cluster-version requests included),
// and serves the same member and cluster IDs, revision and hashkv, and the leases. And
// a running cluster migrated one member at a time: each etcd-ts member rejoins the etcd
// members still running over etcd's peer protocol.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type ClusterPlan, clientUrl, eventually, flagsFor, planCluster, startSlot } from './cluster-harness.js';
import { EtcdClient } from './client.js';
import { type Member, cleanup, ctl, startMember, stopMember, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/** A low --snapshot-count: etcd writes .snap files, and the WAL goes on past them. */
const ETCD_FLAGS = ['--snapshot-count', '25'];

function startEtcdSlot(plan: ClusterPlan, i: number): Promise<Member> {
  const s = plan.slots[i]!;
  return startMember({ name: s.name, dataDir: s.dataDir, clientPort: s.clientPort, peerPort: s.peerPort, bare: true, binary: 'etcd', args: [...flagsFor(plan, s), ...ETCD_FLAGS] });
}

interface Seen {
  members: string;
  ids: string;
  hashkv: string;
  leases: string;
}

async function seen(ep: string): Promise<Seen> {
  const status = (JSON.parse(await ctl(ep, ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { header: { cluster_id: number; member_id: number } } }>)[0]!.Status.header;
  const h = (JSON.parse(await ctl(ep, ['endpoint', 'hashkv', '-w', 'json'])) as Array<{ HashKV: { header: { revision: number }; hash: number; compact_revision: number } }>)[0]!.HashKV;
  return {
    members: (await ctl(ep, ['member', 'list'])).split('\n').sort().join('\n'),
    ids: `${BigInt(status.cluster_id).toString(16)}/${BigInt(status.member_id).toString(16)}`,
    hashkv: `${h.hash}@${h.header.revision}/${h.compact_revision}`,
    leases: (await ctl(ep, ['lease', 'list'])).split('\n').sort().join('\n'),
  };
}

async function history(ep: string): Promise<string> {
  // the 60 puts through one gRPC client, not 60 etcdctl runs (a Go process start each): the
  // history, not the client, is what the migration is tested on
  const client = new EtcdClient(ep);
  for (let i = 0; i < 60; i++) await client.put(`m/${i % 17}`, `v${i}`);
  client.close();
  await ctl(ep, ['del', 'm/3']);
  const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep, ['lease', 'grant', '600']))![1]!;
  await ctl(ep, ['put', 'm/leased', 'x', `--lease=${lease}`]);
  await ctl(ep, ['compact', '30']);
  await ctl(ep, ['put', 'm/last', 'etcd']);
  return lease;
}

describe('etcd-ts started on a stopped etcd 3.4.23 member\'s data dir', () => {
  it('one member: same IDs, revision, hashkv and leases; carries on writing, also after a restart', async () => {
    const plan = await planCluster(1, 'mig');
    const etcd = await startEtcdSlot(plan, 0);
    const lease = await history(etcd.clientUrl);
    const before = await seen(etcd.clientUrl);
    await stopMember(etcd);

    let m = await startSlot(plan, plan.slots[0]!);
    expect(await seen(m.clientUrl)).toEqual(before);
    expect(m.output()).toContain("recovered membership and the v2 store from etcd's snapshot");
    const ttl = await ctl(m.clientUrl, ['lease', 'timetolive', lease, '--keys']);
    expect(ttl).toMatch(/granted with TTL\(600s\), remaining\(\d+s\), attached keys\(\[m\/leased\]\)/);
    await ctl(m.clientUrl, ['put', 'm/after', 'etcd-ts']);
    await stopMember(m);
    m = await startSlot(plan, plan.slots[0]!);
    expect(await ctl(m.clientUrl, ['get', 'm/after', '--print-value-only'])).toBe('etcd-ts\n');
    expect(await ctl(m.clientUrl, ['get', 'm/last', '--print-value-only'])).toBe('etcd\n');
    await stopMember(m);
  }, 120_000);

  it('a three-member cluster, all stopped and all started as etcd-ts: same IDs, revision, hashkv; carries on writing', async () => {
    const plan = await planCluster(3, 'mig3');
    const etcds = await Promise.all([0, 1, 2].map((i) => startEtcdSlot(plan, i)));
    await history(clientUrl(plan.slots[0]!));
    const before = await eventually(async () => {
      const all = await Promise.all(plan.slots.map((s) => seen(clientUrl(s))));
      expect(new Set(all.map((v) => v.hashkv)).size).toBe(1);
      return all;
    });
    await Promise.all(etcds.map((e) => stopMember(e)));

    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s)));
    for (let i = 0; i < 3; i++) expect(await seen(clientUrl(plan.slots[i]!))).toEqual(before[i]);
    await ctl(clientUrl(plan.slots[2]!), ['put', 'm/after', 'cluster']);
    for (const s of plan.slots) {
      await eventually(async () => expect(await ctl(clientUrl(s), ['get', 'm/after', '--print-value-only', '--consistency=s'])).toBe('cluster\n'));
    }
    await Promise.all(members.map((m) => stopMember(m)));
  }, 180_000);

  it('a running three-member cluster, one member at a time: each etcd-ts joins the etcd members still running, and all agree', async () => {
    const plan = await planCluster(3, 'mig1');
    const running: Member[] = await Promise.all([0, 1, 2].map((i) => startEtcdSlot(plan, i)));
    await history(clientUrl(plan.slots[0]!));
    const agree = (tag: string) =>
      eventually(async () => {
        const all = await Promise.all(plan.slots.map((s) => seen(clientUrl(s))));
        expect(new Set(all.map((v) => v.hashkv)).size, tag).toBe(1);
        expect(new Set(all.map((v) => v.members)).size, tag).toBe(1);
        return all;
      }, 60_000, 500);
    let before = await agree('etcd');
    for (let i = 0; i < 3; i++) {
      await stopMember(running[i]!);
      // the two members still up keep a quorum and take writes while this one is swapped
      await ctl(clientUrl(plan.slots[(i + 1) % 3]!), ['put', `m/while-${i}`, 'down']);
      running[i] = await startSlot(plan, plan.slots[i]!);
      for (const s of plan.slots) await ctl(clientUrl(s), ['put', `m/${i}/${s.name}`, 'x']);
      const now = await agree(`after member ${i}`);
      // same member and cluster IDs as etcd's, each write seen everywhere
      expect(now.map((v) => v.ids)).toEqual(before.map((v) => v.ids));
      for (const s of plan.slots) {
        expect(await ctl(clientUrl(s), ['get', `m/while-${i}`, '--print-value-only', '--consistency=s'])).toBe('down\n');
      }
      before = now;
    }
    // each of them etcd-ts on the store etcd left
    for (const m of running) expect(m.output()).toContain("imported etcd's bbolt db");
    await Promise.all(running.map((m) => stopMember(m)));
  }, 300_000);
});
