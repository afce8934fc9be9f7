// --auto-compaction-mode/--auto-compaction-retention as operators set them to keep the
// store from growing: the leader compacts on its own, on a one-member cluster and after a
// leader change in a three-member one.

import { afterAll, describe, expect, it } from 'vitest';
import { clientUrl, eventually, leaderIndex, planCluster, startCluster } from './cluster-harness.js';
import { cleanup, ctl, etcdctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

const PERIODIC_1S = ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1s'];

/** Puts `key` a few times, then waits until revision 2 has been compacted away. */
async function expectCompacted(endpoint: string, key: string): Promise<void> {
  for (let i = 0; i < 5; i++) await ctl(endpoint, ['put', key, `v${i}`]);
  await eventually(async () => {
    const r = await etcdctl(endpoint, ['get', key, '--rev=2']);
    expect(r.stderr).toContain('required revision has been compacted');
  }, 30_000, 500);
}

describe('auto compaction', () => {
  it('a one-member cluster compacts periodically', async () => {
    const m = await startMember({ args: PERIODIC_1S });
    await expectCompacted(m.clientUrl, 'one');
    await stopMember(m);
  }, 60_000);

  it('a three-member cluster compacts, and keeps compacting under a new leader', async () => {
    const plan = await planCluster(3, 'ac');
    const members = await startCluster(plan, { args: PERIODIC_1S });
    const first = await leaderIndex(members);
    await expectCompacted(clientUrl(plan.slots[first]!), 'three');
    await stopMember(members[first]!);
    const rest = members.filter((_, i) => i !== first);
    const next = rest[await leaderIndex(rest)]!;
    const rev = Number(/"revision":(\d+)/.exec(await ctl(next.clientUrl, ['get', 'three', '-w', 'json']))![1]);
    for (let i = 0; i < 5; i++) await ctl(next.clientUrl, ['put', 'three', `w${i}`]);
    await eventually(async () => {
      const r = await etcdctl(next.clientUrl, ['get', 'three', `--rev=${rev + 1}`]);
      expect(r.stderr).toContain('required revision has been compacted');
    }, 30_000, 500);
  }, 90_000);
});
