// Bootstrapping through etcd's discovery service (--discovery), as etcd's clustering guide
// shows it: the members are given no --initial-cluster, only a URL of a directory in a
// discovery etcd's v2 keys API whose `_config/size` says how many they are. The discovery
// etcd is a one-member etcd-ts or etcd 3.4.23 with --enable-v2; the members are etcd-ts,
// and etcd beside etcd-ts in one cluster.

import { afterAll, expect, it } from 'vitest';
import { type ClusterPlan, type Slot, clientUrl, peerUrl, planCluster } from './cluster-harness.js';
import { type Member, cleanup, ctl, startMember, stopMember, waitFor } from './harness.js';

afterAll(cleanup);

interface DiscoveryService {
  member: Member;
  /** the --discovery URL of a cluster directory */
  url(token: string): string;
  /** creates the directory: `_config/size`, as an operator does with curl */
  create(token: string, size: number): Promise<void>;
  /** the keys registered in the directory (member IDs in hex), in the order they were created */
  registered(token: string): Promise<string[]>;
}

/** Starts the discovery service, or starts it again where `again` ran (same ports, same data). */
async function discoveryService(binary: 'etcd' | 'etcd-ts', again?: Member): Promise<DiscoveryService> {
  const where = again === undefined ? {} : { dataDir: again.dataDir, clientPort: Number(new URL(again.clientUrl).port), peerPort: Number(new URL(again.peerUrl).port) };
  const member = await startMember({ name: 'discovery', binary, args: ['--enable-v2'], ...where });
  const url = (token: string) => `${member.clientUrl}/v2/keys/discovery/${token}`;
  return {
    member,
    url,
    async create(token, size) {
      const res = await fetch(`${url(token)}/_config/size`, { method: 'PUT', body: new URLSearchParams({ value: String(size) }) });
      expect(res.status).toBe(201);
    },
    async registered(token) {
      const dir = (await (await fetch(url(token))).json()) as { node: { nodes?: Array<{ key: string; createdIndex: number }> } };
      return (dir.node.nodes ?? [])
        .filter((n) => !n.key.endsWith('/_config'))
        .sort((a, b) => a.createdIndex - b.createdIndex)
        .map((n) => n.key.slice(n.key.lastIndexOf('/') + 1));
    },
  };
}

/** Slot s's flags for a member that finds its cluster through `discovery`: no --initial-cluster. */
function discoveryFlags(plan: ClusterPlan, s: Slot, discovery: string): string[] {
  return [
    '--name', s.name,
    '--data-dir', s.dataDir,
    '--listen-client-urls', clientUrl(s),
    '--advertise-client-urls', clientUrl(s),
    '--listen-peer-urls', peerUrl(plan, s),
    '--initial-advertise-peer-urls', peerUrl(plan, s),
    '--discovery', discovery,
  ];
}

function startDiscovering(plan: ClusterPlan, s: Slot, discovery: string, opts: { binary?: 'etcd' | 'etcd-ts'; waitReady?: boolean; args?: string[] } = {}): Promise<Member> {
  return startMember({
    name: s.name,
    dataDir: s.dataDir,
    clientPort: s.clientPort,
    peerPort: s.peerPort,
    bare: true,
    args: [...discoveryFlags(plan, s, discovery), ...(opts.args ?? [])],
    binary: opts.binary ?? 'etcd-ts',
    waitReady: opts.waitReady,
  });
}

/** `member list` as id -> name. */
async function memberList(endpoint: string): Promise<Map<string, string>> {
  const lines = (await ctl(endpoint, ['member', 'list'])).trim().split('\n');
  return new Map(lines.map((l) => l.split(', ')).map(([id, , name]) => [id!, name!]));
}

it('three etcd-ts members bootstrap through an etcd-ts discovery service; a fourth finds the cluster full; a restart ignores the token', async () => {
  const disco = await discoveryService('etcd-ts');
  await disco.create('three', 3);
  const plan = await planCluster(4, 'dv');
  const [a, b, c, late] = plan.slots as [Slot, Slot, Slot, Slot];
  const members = await Promise.all([a, b, c].map((s) => startDiscovering(plan, s, disco.url('three'))));

  const list = await memberList(clientUrl(a));
  expect([...list.values()].sort()).toEqual(['dv1', 'dv2', 'dv3']);
  // each member registered under its own ID, the one the cluster knows it by
  expect((await disco.registered('three')).sort()).toEqual([...list.keys()].sort());
  await ctl(clientUrl(a), ['put', 'found', 'each-other']);
  expect(await ctl(clientUrl(c), ['get', 'found', '--print-value-only'])).toBe('each-other\n');
  await waitFor(members[0]!, 'found all needed peers from discovery server');

  // a fourth member comes after the cluster was assembled: etcd's refusal, etcd's hints, exit 1
  const fourth = await startDiscovering(plan, late, disco.url('three'), { waitReady: false });
  expect(await fourth.exited).toBe(1);
  expect(fourth.output()).toContain('failed to join discovery cluster (discovery: cluster is full)');
  expect(fourth.output()).toContain('do not reuse discovery token; generate a new one to bootstrap a cluster');
  expect((await memberList(clientUrl(a))).size).toBe(3);

  // a member restarted with the same flags finds its data dir and ignores the discovery URL
  await stopMember(members[1]!);
  const again = await startDiscovering(plan, b, disco.url('three'));
  expect(again.output()).toContain('discovery token is ignored since cluster already initialized; valid logs are found');
  expect(await ctl(clientUrl(b), ['get', 'found', '--print-value-only'])).toBe('each-other\n');
}, 120_000);

it('etcd 3.4.23 as the discovery service, and etcd beside etcd-ts in a cluster it assembles: the same member and cluster IDs', async () => {
  const disco = await discoveryService('etcd');
  await disco.create('mixed', 3);
  const plan = await planCluster(3, 'dm');
  const [a, b, c] = plan.slots as [Slot, Slot, Slot];
  await Promise.all([
    startDiscovering(plan, a, disco.url('mixed')),
    startDiscovering(plan, b, disco.url('mixed')),
    startDiscovering(plan, c, disco.url('mixed'), { binary: 'etcd' }),
  ]);
  const fromEtcd = await memberList(clientUrl(c));
  expect(fromEtcd).toEqual(await memberList(clientUrl(a)));
  expect([...fromEtcd.values()].sort()).toEqual(['dm1', 'dm2', 'dm3']);
  await ctl(clientUrl(c), ['put', 'k', 'from-etcd']);
  expect(await ctl(clientUrl(b), ['get', 'k', '--print-value-only'])).toBe('from-etcd\n');
}, 120_000);

it('refuses what etcd refuses: a directory without a size, a name registered twice, the same member registered twice', async () => {
  const disco = await discoveryService('etcd-ts');
  const plan = await planCluster(4, 'dr');
  const [a, b, c, d] = plan.slots as [Slot, Slot, Slot, Slot];

  const noSize = await startDiscovering(plan, a, disco.url('nosize'), { waitReady: false });
  expect(await noSize.exited).toBe(1);
  expect(noSize.output()).toContain('failed to join discovery cluster (discovery: size key not found)');

  // two members under one name: both register, neither can build a cluster of two names
  await disco.create('names', 2);
  const twins = await Promise.all([b, c].map((s) => startDiscovering(plan, { ...s, name: 'twin' }, disco.url('names'), { waitReady: false })));
  for (const t of twins) {
    expect(await t.exited).toBe(1);
    expect(t.output()).toContain('failed to join discovery cluster (discovery: found duplicate name)');
    expect(t.output()).toContain('member with duplicated name has already been registered');
  }

  // a member that registered, then lost its data dir before the cluster was assembled
  await disco.create('again', 2);
  const first = await startDiscovering(plan, d, disco.url('again'), { waitReady: false });
  await waitFor(first, 'found peers from discovery server; waiting for more');
  await stopMember(first, 'SIGKILL');
  const second = await startDiscovering(plan, { ...d, dataDir: `${d.dataDir}-fresh` }, disco.url('again'), { waitReady: false });
  expect(await second.exited).toBe(1);
  expect(second.output()).toContain('failed to join discovery cluster (discovery: found duplicate id)');
  expect(second.output()).toContain('member has been registered with discovery service');
}, 120_000);

it('waits for a discovery service that is down, retrying with a backoff', async () => {
  const first = await discoveryService('etcd-ts');
  await first.create('later', 1);
  await stopMember(first.member);
  const plan = await planCluster(1, 'dw');
  const member = await startDiscovering(plan, plan.slots[0]!, first.url('later'), { waitReady: false });
  await waitFor(member, 'retry connecting to discovery service');
  await discoveryService('etcd-ts', first.member);
  await waitFor(member, 'ready to serve client requests');
  expect([...(await memberList(clientUrl(plan.slots[0]!))).values()]).toEqual(['dw1']);
}, 120_000);

it('a member waiting for the others rides out a restart of the discovery service', async () => {
  const first = await discoveryService('etcd-ts');
  await first.create('restarted', 2);
  const plan = await planCluster(2, 'dx');
  const [a, b] = plan.slots as [Slot, Slot];
  const early = await startDiscovering(plan, a, first.url('restarted'), { waitReady: false });
  await waitFor(early, 'found peers from discovery server; waiting for more');
  // its watch breaks off; it retries, reads the directory again, and watches on
  await stopMember(first.member);
  await waitFor(early, 'retry connecting to discovery service');
  await discoveryService('etcd-ts', first.member);
  const late = await startDiscovering(plan, b, first.url('restarted'));
  await waitFor(early, 'ready to serve client requests');
  expect([...(await memberList(late.clientUrl)).values()].sort()).toEqual(['dx1', 'dx2']);
}, 120_000);
