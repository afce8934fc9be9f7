// readSnapshotState on the data of a .snap file real etcd 3.4.23 wrote: the v2 store as
// v2store's Save marshals it, with the membership (members, a removed member), the
// cluster version and v2 keys (one with a TTL) inside it.

import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { readSnapshotState } from '../../../src/server/import/snapshot-data.js';
import { Snapshotter } from '../../../src/wal/index.js';
import { cleanup, ctl, etcdctlV2, startMember, stopMember } from '../../e2e/harness.js';

afterAll(cleanup);

type Node = { name: string; value?: string; expireTime?: string; children?: Node[] };

function find(root: Node, p: string): Node | undefined {
  let n: Node | undefined = root;
  for (const part of p.split('/').filter((x) => x !== '')) n = n?.children?.find((c) => c.name === part);
  return n;
}

it("reads etcd 3.4's v2 store from its .snap: members, removed members, cluster version, v2 keys with their TTLs", async () => {
  const etcd = await startMember({ binary: 'etcd', args: ['--enable-v2', '--snapshot-count', '5'] });
  const v2 = (args: string[]) => etcdctlV2(['--endpoints', etcd.clientUrl, ...args]);
  // a learner does not change the quorum of this one-member cluster; removed, it is listed as removed
  await ctl(etcd.clientUrl, ['member', 'add', 'gone', '--learner', '--peer-urls=http://127.0.0.1:1']);
  // its ID from the member list (the line with its peer URL), not from add's output
  const listed = await ctl(etcd.clientUrl, ['member', 'list']);
  const gone = listed.split('\n').find((l) => l.includes('http://127.0.0.1:1,'))?.split(',')[0];
  if (gone === undefined) throw new Error(`the learner is not in the member list:\n${listed}`);
  await ctl(etcd.clientUrl, ['member', 'remove', gone]);
  expect((await v2(['set', 'plain', 'p'])).code).toBe(0);
  const before = BigInt(Date.now()) * 1_000_000n;
  expect((await v2(['set', 'dir/ttl', 't', '--ttl', '3600'])).code).toBe(0);
  for (let i = 0; i < 6; i++) expect((await v2(['set', `fill/${i}`, String(i)])).code).toBe(0);
  const self = (await ctl(etcd.clientUrl, ['member', 'list'])).split(',')[0]!;
  await stopMember(etcd);

  const snap = await new Snapshotter(path.join(etcd.dataDir, 'member', 'snap')).load();
  expect(snap).toBeDefined();
  const state = readSnapshotState(snap!.data, 'the .snap');
  expect(state.format).toBe('etcd');
  expect(state.alarms).toBeUndefined();
  expect(state.membership.members).toEqual([
    { id: self, name: 'default', peerURLs: [etcd.peerUrl], clientURLs: [etcd.clientUrl], isLearner: false },
  ]);
  expect(state.membership.removed).toEqual([gone]);
  expect(state.membership.version).toBe('3.4.0');

  const root = state.v2store!.root as Node;
  expect(state.v2store!.index).toBeGreaterThan(0);
  expect(find(root, '/1/plain')).toMatchObject({ value: 'p' });
  expect(find(root, '/1/plain')!.expireTime).toBeUndefined();
  const ttl = find(root, '/1/dir/ttl')!;
  expect(ttl.value).toBe('t');
  const expires = BigInt(ttl.expireTime!);
  expect(expires).toBeGreaterThan(before + 3590n * 1_000_000_000n);
  expect(expires).toBeLessThan(before + 3700n * 1_000_000_000n);
  // the snapshot was taken after the fifth entry or later: its first v2 keys are in it
  expect(find(root, '/1/fill')!.children!.map((c) => c.name)).toContain('0');
}, 60_000);

it('names the file when the data is neither format', () => {
  expect(() => readSnapshotState(Buffer.from('{"x":1}'), '/d/member/snap/1-2.snap')).toThrow(/\/d\/member\/snap\/1-2\.snap: the snapshot's data is neither etcd-ts's nor etcd's v2 store/);
  expect(() => readSnapshotState(Buffer.from('{"Root":{"Path":"/"},"CurrentIndex":3}'), 'x.snap')).toThrow(/^x\.snap: etcd's v2 store in the snapshot: /);
});
