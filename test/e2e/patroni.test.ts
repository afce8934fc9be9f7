// Patroni 3.0 (Debian) + PostgreSQL 15 over a three-member cluster (etcd-ts, or real etcd
// 3.4 with E2E_BINARY=etcd: every case passes on both): bootstrap, switchover, failover,
// the etcd leader killed under a running primary, the v2 `etcd:` section, and `etcd3:`
// credentials with auth off (in the first case) and on.

import { afterAll, afterEach, expect, it } from 'vitest';
import { type Member, cleanup, ctl, killProcesses } from './harness.js';
import { type ClusterPlan, clientUrl, eventually, leaderIndex, planCluster, startCluster, startSlot, statusOf } from './cluster-harness.js';
import {
  type DcsConfig,
  type PatroniNode,
  cleanupPatroni,
  dcsTimings,
  killPatroni,
  namespace,
  patroniAccount,
  patroniBase,
  patroniStatus,
  patronictl,
  psql,
  restPost,
  roleCheck,
  startPatroni,
  waitForQuery,
  waitForRoles,
} from './patroni.js';

// each case runs its own etcd cluster and PostgreSQL pair: none outlives its case (Patroni
// loops and postgres replicates while idle)
afterEach(async () => {
  await cleanupPatroni();
  await killProcesses();
});
afterAll(cleanup);

/**
 * Each case bootstraps PostgreSQL twice (on a loaded two-core machine that alone can take a
 * minute or two), and waits out dcsTimings' ttl or retry_timeout several times.
 */
const caseTimeout = 600_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function etcdCluster(args: string[] = []): Promise<{ plan: ClusterPlan; members: Member[]; endpoints: string[] }> {
  patroniAccount(); // fail before starting anything when Patroni or PostgreSQL is missing
  const plan = await planCluster(3, 'p');
  const members = await startCluster(plan, { args });
  return { plan, members, endpoints: plan.slots.map(clientUrl) };
}

/**
 * Two Patroni nodes of cluster `scope` on `dcs`, bootstrapped: one primary, one streaming
 * replica, and a row written on the primary read back on the replica.
 */
async function bootstrapped(scope: string, dcs: DcsConfig): Promise<{ nodes: PatroniNode[]; primary: PatroniNode; replica: PatroniNode }> {
  const base = patroniBase();
  const nodes = [await startPatroni({ scope, name: `${scope}-a`, base, dcs }), await startPatroni({ scope, name: `${scope}-b`, base, dcs })];
  const { primary, replicas } = await waitForRoles(nodes);
  await psql(primary, `CREATE TABLE t (v text); INSERT INTO t VALUES ('written on ${primary.name}')`);
  await waitForQuery(replicas[0]!, 'SELECT v FROM t', `written on ${primary.name}`);
  return { nodes, primary, replica: replicas[0]! };
}

/** Switchover (patronictl), failover (REST), then the primary's machine dies: each time the other node takes over. */
async function switchoverFailoverKill(scope: string, nodes: PatroniNode[], first: { primary: PatroniNode; replica: PatroniNode }): Promise<void> {
  let { primary, replica } = first;
  const timeline = async (n: PatroniNode) => (await patroniStatus(n)).timeline!;
  const t0 = await timeline(primary);

  const sw = await patronictl(primary, ['switchover', '--leader', primary.name, '--candidate', replica.name, '--force', scope]);
  expect(sw.code, sw.out).toBe(0);
  expect((await waitForRoles(nodes)).primary).toBe(replica);
  [primary, replica] = [replica, primary];
  expect(await timeline(primary)).toBe(t0 + 1);
  await psql(primary, `INSERT INTO t VALUES ('after switchover')`);
  await waitForQuery(replica, `SELECT count(*) FROM t WHERE v = 'after switchover'`, '1');

  const fo = await restPost(primary, '/failover', { candidate: replica.name });
  expect(fo.status, fo.text).toBe(200);
  expect((await waitForRoles(nodes)).primary).toBe(replica);
  [primary, replica] = [replica, primary];
  expect(await timeline(primary)).toBe(t0 + 2);

  // the primary's machine dies: Patroni and postgres killed; the leader key expires after ttl
  await killPatroni(primary);
  expect((await waitForRoles([replica], (dcsTimings.ttl + 60) * 1000)).primary).toBe(replica);
  await psql(replica, `INSERT INTO t VALUES ('after failover')`);
  expect(await psql(replica, 'SELECT count(*) FROM t')).toBe('3');
}

// with credentials while auth is off (etcd ignores them; Patroni logs so and goes on
// without a token): one PostgreSQL pair fewer than a case of its own, and the case without
// credentials is the leader kills below
it('etcd3 with username/password while auth is off: bootstrap, switchover, failover, and the primary killed: the replica takes over each time', async () => {
  const { endpoints } = await etcdCluster();
  const first = await bootstrapped('e3', { kind: 'etcd3', endpoints, username: 'patroni', password: 'patroni-pw' });
  expect(first.primary.output()).toContain('Etcd authentication is not enabled');
  expect(await ctl(endpoints[0]!, ['get', '--print-value-only', '/service/e3/leader'])).toBe(`${first.primary.name}\n`);
  await switchoverFailoverKill('e3', first.nodes, first);
}, caseTimeout);

it('etcd (v2, --enable-v2): bootstrap, switchover, failover, and the primary killed', async () => {
  const { endpoints } = await etcdCluster(['--enable-v2']);
  const first = await bootstrapped('e2', { kind: 'etcd', endpoints });
  const leader = await fetch(`${endpoints[1]}/v2/keys/service/e2/leader`).then((r) => r.json() as Promise<{ node: { value: string } }>);
  expect(leader.node.value).toBe(first.primary.name);
  await switchoverFailoverKill('e2', first.nodes, first);
}, caseTimeout);

it('etcd3: kill -9 of the etcd leader at a random moment, 5 rounds: the Patroni primary keeps its role every time', async () => {
  const { plan, members, endpoints } = await etcdCluster();
  const { primary, replica } = await bootstrapped('lk', { kind: 'etcd3', endpoints });
  const before = await patroniStatus(primary);
  for (let round = 1; round <= 5; round++) {
    await sleep(Math.random() * 2 * dcsTimings.loop_wait * 1000); // anywhere in Patroni's next two loops
    const i = await leaderIndex(members);
    const killedAt = Date.now() / 1000;
    members[i]!.proc.kill('SIGKILL');
    await members[i]!.exited;
    members[i] = await startSlot(plan, plan.slots[i]!);
    await eventually(async () => expect((await statusOf(members[i]!.clientUrl)).leader).not.toBe(0));
    // Patroni has run its loop against the DCS again past the point where a failed
    // leader-key update would have demoted it (retry_timeout after the kill)
    await eventually(
      async () => expect((await patroniStatus(primary)).dcs_last_seen).toBeGreaterThan(killedAt + dcsTimings.retry_timeout + dcsTimings.loop_wait),
      60_000,
      500,
    );
    const now = await patroniStatus(primary);
    const log = `Patroni on the primary:\n${primary.output().slice(-8000)}`;
    expect({ round, role: now.role, timeline: now.timeline, started: now.postmaster_start_time }, log).toEqual({
      round,
      role: 'master',
      timeline: before.timeline,
      started: before.postmaster_start_time,
    });
    expect(primary.output(), log).not.toMatch(/demot|failed to update leader lock/i);
    expect(await roleCheck(replica, 'replica')).toBe(200);
  }
  await psql(primary, `INSERT INTO t VALUES ('after 5 leader kills')`);
  await waitForQuery(replica, 'SELECT count(*) FROM t', '2');
}, caseTimeout);

it('etcd3 with username/password while auth is on: a patroni user with readwrite on the namespace is enough', async () => {
  const { endpoints } = await etcdCluster();
  const ep = endpoints[0]!;
  await ctl(ep, ['user', 'add', 'root:root-pw']);
  await ctl(ep, ['user', 'grant-role', 'root', 'root']);
  await ctl(ep, ['role', 'add', 'patroni']);
  // as Patroni's docs suggest: readwrite on its namespace, nothing else
  await ctl(ep, ['role', 'grant-permission', 'patroni', '--prefix=true', 'readwrite', namespace]);
  await ctl(ep, ['user', 'add', 'patroni:patroni-pw']);
  await ctl(ep, ['user', 'grant-role', 'patroni', 'patroni']);
  await ctl(ep, ['auth', 'enable']);
  const { primary } = await bootstrapped('aon', { kind: 'etcd3', endpoints, username: 'patroni', password: 'patroni-pw' });
  expect(primary.output()).not.toContain('Etcd authentication is not enabled');
  expect(await ctl(ep, ['--user', 'root:root-pw', 'get', '--print-value-only', '/service/aon/leader'])).toBe(`${primary.name}\n`);
}, caseTimeout);
