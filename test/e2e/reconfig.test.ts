// What clients see during a membership change, as on etcd 3.4: --strict-reconfig-check's
// refusals, a new member visible as started on every member by the time it answers
// `endpoint health`, a removed member exiting cleanly, lease refreshes through a
// follower (python-etcd3), and credentials ignored while auth is off.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type Member, cleanup, ctl, etcdctl, freePort, startMember, tempDir, killProcesses } from './harness.js';
import { type ClusterPlan, eventually, leaderIndex, planCluster, startCluster, startSlot } from './cluster-harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

const HEALTH_INTERVAL_MS = 5000;

interface ListedMember {
  id: string;
  status: string;
  name: string;
  peerUrls: string;
  clientUrls: string;
}

async function memberList(endpoint: string): Promise<ListedMember[]> {
  const out = await ctl(endpoint, ['member', 'list']);
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [id, status, name, peerUrls, clientUrls] = line.split(', ');
      return { id: id!, status: status!, name: name!, peerUrls: peerUrls!, clientUrls: clientUrls! };
    });
}

/** `member add` through `endpoint`; returns the ETCD_* lines it printed, or etcdctl's error. */
async function memberAdd(endpoint: string, name: string, peerPort: number): Promise<{ env?: Record<string, string>; error?: string }> {
  const r = await etcdctl(endpoint, ['member', 'add', name, `--peer-urls=http://127.0.0.1:${peerPort}`]);
  if (r.code !== 0) return { error: r.stderr.trim() };
  const env: Record<string, string> = {};
  for (const [, k, v] of r.stdout.matchAll(/^(ETCD_[A-Z_]+)="(.*)"$/gm)) env[k!] = v!;
  return { env };
}

async function startAdded(plan: ClusterPlan, env: Record<string, string>, peerPort: number): Promise<Member> {
  const clientPort = await freePort();
  return startMember({
    name: env.ETCD_NAME!,
    bare: true,
    env,
    waitReady: false,
    args: [
      '--data-dir', path.join(tempDir(), env.ETCD_NAME!),
      '--listen-client-urls', `http://127.0.0.1:${clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster-token', plan.token,
    ],
    clientPort,
    peerPort,
  });
}

it('strict reconfig check refuses what etcd refuses; a new member is listed started everywhere once healthy; a removed member exits 0', async () => {
  // m1 runs with --strict-reconfig-check=false, m2 and m3 with etcd's default (on): a
  // change is checked by the member that receives it
  const plan = await planCluster(3, 'rc');
  const members = await Promise.all(
    plan.slots.map((s, i) => startSlot(plan, s, { args: i === 0 ? ['--strict-reconfig-check=false'] : [] })),
  );
  const [lax, strict, third] = members as [Member, Member, Member];
  await leaderIndex(members);
  // every voter must have been connected for etcd's HealthInterval
  await new Promise((r) => setTimeout(r, HEALTH_INTERVAL_MS + 500));

  // two members added, neither started: the second is refused (the first is not connected)
  const fake1 = await memberAdd(strict.clientUrl, 'fake1', await freePort());
  expect(fake1.error).toBeUndefined();
  const fake2Port = await freePort();
  const refused = await memberAdd(strict.clientUrl, 'fake2', fake2Port);
  expect(refused.error).toContain('etcdserver: unhealthy cluster');
  const allowed = await memberAdd(lax.clientUrl, 'fake2', fake2Port);
  expect(allowed.error).toBeUndefined();
  // unstarted members that are down may be removed even under the strict check
  for (const m of (await memberList(strict.clientUrl)).filter((x) => x.status === 'unstarted')) {
    await ctl(strict.clientUrl, ['member', 'remove', m.id]);
  }
  expect((await memberList(strict.clientUrl)).map((m) => m.status)).toEqual(['started', 'started', 'started']);

  // a new member: once it answers `endpoint health`, every member lists it started, by name
  const s4Port = await freePort();
  const added = await memberAdd(strict.clientUrl, 's4', s4Port);
  expect(added.error).toBeUndefined();
  const s4 = await startAdded(plan, added.env!, s4Port);
  await eventually(() => ctl(s4.clientUrl, ['endpoint', 'health']), 30_000, 50);
  for (const m of members) {
    const listed = (await memberList(m.clientUrl)).find((x) => x.peerUrls === `http://127.0.0.1:${s4Port}`);
    expect(listed, m.name).toEqual({ id: expect.any(String), status: 'started', name: 's4', peerUrls: `http://127.0.0.1:${s4Port}`, clientUrls: s4.clientUrl });
  }

  // a member removed from the cluster shuts down as cleanly as etcd's
  const s4Id = (await memberList(strict.clientUrl)).find((x) => x.name === 's4')!.id;
  await eventually(() => ctl(strict.clientUrl, ['member', 'remove', s4Id]));
  expect(await s4.exited).toBe(0);

  // with one member down, removing a started one would leave no quorum of live members
  third.proc.kill('SIGTERM');
  await third.exited;
  const laxId = (await memberList(strict.clientUrl)).find((x) => x.name === lax.name)!.id;
  const strictId = (await memberList(strict.clientUrl)).find((x) => x.name === strict.name)!.id;
  const refusedRemove = await etcdctl(strict.clientUrl, ['member', 'remove', laxId]);
  expect(refusedRemove.code).not.toBe(0);
  expect(refusedRemove.stderr).toContain('etcdserver: unhealthy cluster');
  const allowedRemove = await etcdctl(lax.clientUrl, ['member', 'remove', strictId]);
  expect(allowedRemove.stdout).toMatch(new RegExp(`^Member +${strictId} removed from cluster `));
  expect(await strict.exited).toBe(0);
}, 120_000);

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr })),
  );
}

it('python-etcd3 Lease.refresh() returns the TTL through the leader and through a follower', async () => {
  const plan = await planCluster(3, 'py');
  const members = await startCluster(plan);
  const li = await leaderIndex(members);
  const script = `
import sys, etcd3
for port in sys.argv[1:]:
    c = etcd3.client(host='127.0.0.1', port=int(port))
    lease = c.lease(30)
    print([r.TTL for r in lease.refresh()])
`;
  const ports = [members[li]!, members[(li + 1) % 3]!].map((m) => new URL(m.clientUrl).port);
  const r = await run('/usr/bin/python3', ['-c', script, ...ports]);
  expect(r.code, r.out).toBe(0);
  expect(r.out.trim().split('\n')).toEqual(['[30]', '[30]']);
});

it('etcdctl --user is ignored while auth is off, as on etcd', async () => {
  const m = await startMember({ name: 'noauth' });
  expect(await ctl(m.clientUrl, ['--user', 'x:y', 'put', 'k', 'v'])).toBe('OK\n');
  expect(await ctl(m.clientUrl, ['--user', 'x:y', 'get', 'k', '--print-value-only'])).toBe('v\n');
  // and the auth commands answer as etcd's with auth disabled and no users
  expect(await ctl(m.clientUrl, ['user', 'list'])).toBe('');
  const enable = await etcdctl(m.clientUrl, ['auth', 'enable']);
  expect(enable.stderr).toContain('Error: etcdserver: root user does not exist');
  const get = await etcdctl(m.clientUrl, ['user', 'get', 'x']);
  expect(get.stderr).toContain('Error: etcdserver: user name not found');
});

it('a put after a member add took the quorum away times out with the error etcd 3.4.23 gives (no leader now: "request timed out")', async () => {
  const errors: Record<string, string> = {};
  for (const binary of ['etcd', 'etcd-ts'] as const) {
    const m = await startMember({ binary });
    await ctl(m.clientUrl, ['member', 'add', 'absent', '--peer-urls', `http://127.0.0.1:${await freePort()}`]);
    // two voters, one of them never started: the leader steps down and nothing commits
    const r = await etcdctl(m.clientUrl, ['put', 'k', 'v']);
    expect(r.code).toBe(1);
    errors[binary] = r.stderr.trim().split('\n').pop()!;
    await killProcesses();
  }
  expect(errors['etcd-ts']).toBe(errors.etcd);
  expect(errors.etcd).toBe('Error: etcdserver: request timed out');
}, 60_000);
