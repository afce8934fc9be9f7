// etcd's "remotes" (rafthttp/remote.go): a member that was down while a member was added
// does not know the new member when it comes back. If the new member leads by then, the
// restarted member hears its leader only as an unknown sender, and must answer an unknown
// target: etcd steps the leader's pipeline messages and answers through a remote reached
// at the sender's X-PeerURLs, so the member catches up and learns the new member from the
// log. The same scenario runs on real etcd 3.4.23 and on etcd-ts.

import { afterAll, describe, expect, it } from 'vitest';
import { eventually, flagsFor, leaderIndex, peerUrl, planCluster } from './cluster-harness.js';
import { type Member, cleanup, ctl, etcdctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

type Kind = 'etcd' | 'etcd-ts';

describe.each(['etcd', 'etcd-ts'] as const)('%s: a member restarted behind a cluster led by a member added while it was down', (kind: Kind) => {
  it('hears the new leader as a remote, catches up and learns the new member from the log', async () => {
    const plan = await planCluster(4, kind === 'etcd' ? 're' : 'rt');
    const three = { ...plan, slots: plan.slots.slice(0, 3), initialCluster: plan.initialCluster.split(',').slice(0, 3).join(',') };
    const run = (i: number, args: string[]): Promise<Member> => {
      const s = plan.slots[i]!;
      return startMember({ name: s.name, dataDir: s.dataDir, clientPort: s.clientPort, peerPort: s.peerPort, bare: true, args, binary: kind });
    };
    // etcd's strict reconfiguration check refuses `member add` while a member is down
    const args = [0, 1, 2].map((i) => [...flagsFor(three, three.slots[i]!, 'new'), '--strict-reconfig-check=false']);
    const ms = await Promise.all([0, 1, 2].map((i) => run(i, args[i]!)));
    await ctl(ms[0]!.clientUrl, ['put', 'before', '1']);

    // the member that will come back behind
    const leader = await leaderIndex(ms);
    const late = leader === 2 ? 1 : 2;
    await stopMember(ms[late]!);
    const up = ms.filter((_, i) => i !== late);

    // a fourth member joins while it is down, and takes the lead
    const slot = plan.slots[3]!;
    const added = await eventually(() => ctl(up[0]!.clientUrl, ['member', 'add', slot.name, `--peer-urls=${peerUrl(plan, slot)}`]), 30_000, 1000);
    const id = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
    const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added)![1]!;
    const fourth = await run(3, flagsFor(plan, slot, 'existing', initialCluster));
    const now = [...up, fourth];
    await eventually(async () => {
      const l = now[await leaderIndex(now)]!;
      if (l === fourth) return;
      await etcdctl(l.clientUrl, ['move-leader', id]);
      throw new Error('the added member does not lead yet');
    }, 60_000, 1000);
    await ctl(fourth.clientUrl, ['put', 'while-down', '2']);

    // back: it catches up from the leader it did not know, and knows all four members
    ms[late] = await run(late, args[late]!);
    await eventually(async () => expect(await ctl(ms[late]!.clientUrl, ['get', 'while-down', '--print-value-only', '--consistency=s'])).toBe('2\n'), 60_000, 500);
    expect((await ctl(ms[late]!.clientUrl, ['member', 'list'])).trim().split('\n')).toHaveLength(4);
    expect(await ctl(ms[late]!.clientUrl, ['put', 'after', '3'])).toBe('OK\n');
    expect(await ctl(fourth.clientUrl, ['get', 'after', '--print-value-only'])).toBe('3\n');
  }, 300_000);
});
