// The membership and cluster-version records etcd-ts would put in a snapshot, byte for
// byte against the records real etcd 3.4.23 wrote to its bbolt database for the same
// members (a voting member, a removed learner, a learner added but never started).

import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BoltFile } from '../../src/bbolt/index.js';
import { clusterVersionRecord, ETCD_BUCKETS, memberRecord, removedMemberRecord } from '../../src/server/backup/etcd-buckets.js';
import { cleanup, ctl, startMember, stopMember } from '../e2e/harness.js';

afterAll(cleanup);

async function records(f: BoltFile, bucket: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const [k, v] of f.entries(bucket)) out.push([k.toString(), v.toString()]);
  return out;
}

it('members, members_removed and cluster records equal those real etcd wrote', async () => {
  const m = await startMember({ binary: 'etcd' });
  // The ID is a uint64: read its digits, JSON.parse would round it.
  const added = await ctl(m.clientUrl, ['member', 'add', 'l1', '--learner', '--peer-urls', 'http://127.0.0.1:1', '-w', 'json']);
  const learner1 = BigInt(/"member":\{"ID":(\d+)/.exec(added)![1]!);
  await ctl(m.clientUrl, ['member', 'remove', learner1.toString(16)]);
  await ctl(m.clientUrl, ['member', 'add', 'l2', '--learner', '--peer-urls', 'http://127.0.0.1:2,http://127.0.0.1:3']);
  await stopMember(m);

  const f = await BoltFile.open(path.join(m.dataDir, 'member/snap/db'));
  try {
    expect(f.bucketNames().map(String)).toEqual([...ETCD_BUCKETS]);
    const members = await records(f, 'members');
    expect(members).toHaveLength(2);
    for (const [key, json] of members) {
      const j = JSON.parse(json.replace(/"id":(\d+)/, '"id":"$1"')) as { id: string; name?: string; peerURLs: string[]; clientURLs?: string[]; isLearner?: boolean };
      const ours = memberRecord({ id: BigInt(j.id), name: j.name ?? '', peerUrls: j.peerURLs, clientUrls: j.clientURLs ?? [], isLearner: j.isLearner === true });
      expect([ours[0].toString(), ours[1].toString()]).toEqual([key, json]);
    }
    expect(members.some(([, json]) => json.includes('"isLearner":true'))).toBe(true);
    const removed = await records(f, 'members_removed');
    const ours = removedMemberRecord(learner1);
    expect(removed).toEqual([[ours[0].toString(), ours[1].toString()]]);
    const [ck, cv] = clusterVersionRecord('3.4.23');
    expect(await records(f, 'cluster')).toEqual([[ck.toString(), cv.toString()]]);
  } finally {
    await f.close();
  }
});
