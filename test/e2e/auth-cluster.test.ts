// Auth across three members: enabled through one member and enforced by all, carried to
// a member that was down by a leader snapshot, and kept across restarts. Expectations
// hold on real etcd 3.4.23 too (E2E_BINARY=etcd).

import { afterAll, describe, expect, it } from 'vitest';
import { type Member, binary, cleanup, ctl, etcdctl, stopMember } from './harness.js';
import { bulkPut, eventually, leaderIndex, planCluster, snapshotCatchUp, startCluster, startSlot } from './cluster-harness.js';

afterAll(cleanup);

const CATCH_UP = snapshotCatchUp();
const ARGS = ['--heartbeat-interval', '50', '--election-timeout', '500', '--snapshot-count', '100', '--bcrypt-cost', '4', ...CATCH_UP.args];
const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:alicepw'];

function errorOf(r: { stderr: string }): string {
  return r.stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'))
    .join('\n');
}

async function expectEnforced(endpoint: string): Promise<void> {
  expect(errorOf(await etcdctl(endpoint, ['get', 'app/a']))).toBe('Error: etcdserver: user name is empty');
  expect(await ctl(endpoint, [...ALICE, 'get', 'app/a', '--print-value-only'])).toBe('1\n');
  expect(errorOf(await etcdctl(endpoint, [...ALICE, 'get', 'bulk/00001']))).toBe('Error: etcdserver: permission denied');
  expect(await ctl(endpoint, [...ROOT, 'user', 'list'])).toBe('alice\nroot\n');
}

describe('auth in a three-member cluster', () => {
  it('is enforced by every member, reaches a lagging one by snapshot, and survives restarts', async () => {
    const plan = await planCluster(3, 'a');
    const members: Member[] = await startCluster(plan, { args: ARGS });
    const leader = await leaderIndex(members);
    const first = members[leader]!.clientUrl;
    const down = (leader + 1) % 3;
    await stopMember(members[down]!, 'SIGKILL');

    await ctl(first, ['user', 'add', 'root', '--new-user-password=rootpw']);
    await ctl(first, ['user', 'add', 'alice', '--new-user-password=alicepw']);
    await ctl(first, ['role', 'add', 'app']);
    await ctl(first, ['role', 'grant-permission', 'app', 'readwrite', 'app/', '--prefix']);
    await ctl(first, ['user', 'grant-role', 'alice', 'app']);
    expect(await ctl(first, ['auth', 'enable'])).toBe('Authentication Enabled\n');
    expect(await ctl(first, [...ALICE, 'put', 'app/a', '1'])).toBe('OK\n');
    const other = (leader + 2) % 3;
    await expectEnforced(members[other]!.clientUrl);

    // more than the entries a leader keeps behind its snapshot for slow followers
    await bulkPut(first, CATCH_UP.puts, { name: 'root', password: 'rootpw' });
    const rev = (JSON.parse(await ctl(first, [...ROOT, 'get', CATCH_UP.lastKey, '-w', 'json'])) as { header: { revision: number } }).header.revision;
    await ctl(first, [...ROOT, 'compaction', String(rev)]);
    members[down] = await startSlot(plan, plan.slots[down]!, { args: ARGS });
    await eventually(async () => {
      expect(await ctl(members[down]!.clientUrl, [...ROOT, 'get', CATCH_UP.lastKey, '--consistency=s', '--print-value-only'])).toBe(`${CATCH_UP.lastValue}\n`);
    }, 60_000);
    if (binary === 'etcd-ts') expect(members[down]!.output()).toContain('installed the store from a leader snapshot');
    await expectEnforced(members[down]!.clientUrl);

    await Promise.all(members.map((m) => stopMember(m)));
    const restarted = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { args: ARGS })));
    await leaderIndex(restarted);
    for (const m of restarted) await expectEnforced(m.clientUrl);
    await Promise.all(restarted.map((m) => stopMember(m)));
    // the puts, a snapshot, three restarts: under a minute on a quiet machine, minutes on a loaded one
  }, 300_000);
});
