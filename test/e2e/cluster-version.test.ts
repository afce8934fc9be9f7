// The cluster version, as etcd decides it: the leader sets the lowest version of the
// members through raft, every member logs "enabled capabilities for version 3.4" when it
// applies it (etcd's own e2e suite waits for that line before it talks to a member), and
// /version reports it as "etcdcluster". Runs against real etcd too (E2E_BINARY=etcd).

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type ClusterPlan, eventually, planCluster, startSlot } from './cluster-harness.js';
import { type Member, cleanup, ctl, startMember, stopMember, waitFor, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

async function versionOf(url: string): Promise<{ etcdserver: string; etcdcluster: string }> {
  const res = await fetch(`${url}/version`);
  return (await res.json()) as { etcdserver: string; etcdcluster: string };
}

/** The member's log lines that mention the cluster version, in order, without timestamps. */
function versionLines(m: Member): string[] {
  return m
    .output()
    .split('\n')
    .map((l) => /(set the initial cluster version to [\d.]+|updated the cluster version from [\d.]+ to [\d.]+|enabled capabilities for version [\d.]+)/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

describe('cluster version', () => {
  it('is decided by a single member, logged with etcd lines, served on /version and recovered on restart', async () => {
    const m = await startMember({ name: 'cv', args: ['--snapshot-count', '5'] });
    await waitFor(m, 'enabled capabilities for version 3.4');
    expect(versionLines(m)).toEqual(['set the initial cluster version to 3.4', 'enabled capabilities for version 3.4']);
    expect(await versionOf(m.clientUrl)).toEqual({ etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    expect(await versionOf(m.peerUrl)).toEqual({ etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    const metrics = await (await fetch(`${m.clientUrl}/metrics`)).text();
    await eventually(async () => expect(await (await fetch(`${m.clientUrl}/metrics`)).text()).toContain('etcd_cluster_version{cluster_version="3.4"} 1'));
    expect(metrics).toContain('etcd_server_version{server_version="3.4.23"} 1');

    // Past --snapshot-count entries the version lives in a snapshot, not only in the WAL.
    for (let i = 0; i < 12; i++) await ctl(m.clientUrl, ['put', `k${i}`, 'v']);
    await stopMember(m);
    const again = await startMember({ name: 'cv', dataDir: m.dataDir, clientPort: Number(new URL(m.clientUrl).port), peerPort: Number(new URL(m.peerUrl).port) });
    await waitFor(again, 'enabled capabilities for version 3.4');
    expect(versionLines(again)).toContain('enabled capabilities for version 3.4');
    expect(await versionOf(again.clientUrl)).toEqual({ etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    await stopMember(again);
  });

  it('is the minimum (3.0) while a member cannot be asked, and rises to 3.4 on every member once all run 3.4', async () => {
    const plan: ClusterPlan = await planCluster(3, 'cv');
    const [s1, s2, s3] = plan.slots as [ClusterPlan['slots'][0], ClusterPlan['slots'][0], ClusterPlan['slots'][0]];
    // Two of three make a quorum: they elect a leader and serve, the third is not up yet.
    const first = await Promise.all([startSlot(plan, s1), startSlot(plan, s2)]);
    for (const m of first) await waitFor(m, 'enabled capabilities for version 3.0');
    expect((await versionOf(first[0].clientUrl)).etcdcluster).toBe('3.0.0');

    const third = await startSlot(plan, s3);
    const all = [...first, third];
    for (const m of all) await waitFor(m, 'enabled capabilities for version 3.4', 30_000);
    for (const m of first) {
      expect(versionLines(m)).toEqual([
        'set the initial cluster version to 3.0',
        'enabled capabilities for version 3.0',
        'updated the cluster version from 3.0 to 3.4',
        'enabled capabilities for version 3.4',
      ]);
    }
    for (const m of all) expect((await versionOf(m.clientUrl)).etcdcluster).toBe('3.4.0');
    await Promise.all(all.map((m) => stopMember(m)));
  });
});
