// The v2 API across a mixed cluster: an etcd 3.4.23 member and an etcd-ts member of one
// cluster (either kind first, the other added with `member add` and `existing`) answer a
// v2 client with the same store index and the same node, wherever it asks. The index
// counts the membership's writes to the v2 store's "/0" too, and a client's waitIndex
// taken from one member is used on another.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { planCluster } from './cluster-harness.js';
import { cleanup, httpRequest, killProcesses } from './harness.js';
import { type Kind, addMember, start } from './rolling-migration.js';

afterAll(cleanup);
afterEach(killProcesses);

const withV2 = (): string[] => ['--enable-v2'];

describe('v2 in a mixed cluster', () => {
  for (const [first, second] of [['etcd', 'etcd-ts'], ['etcd-ts', 'etcd']] as Array<[Kind, Kind]>) {
    it(`${first} first, then an ${second} member added: both answer with the same index and node`, async () => {
      const plan = await planCluster(2, 'mv2');
      const one = { ...plan, slots: plan.slots.slice(0, 1), initialCluster: plan.initialCluster.split(',')[0]! };
      const a = await start(one, 0, first, withV2);
      const b = await addMember(plan, 1, second, a, withV2);
      const put = await httpRequest(`${a.member.clientUrl}/v2/keys/shared`, { method: 'PUT', form: { value: 'v' } });
      expect(put.status).toBe(201);
      const answers = await Promise.all(
        [a, b].map(async (r) => {
          const got = await httpRequest(`${r.member.clientUrl}/v2/keys/shared?quorum=true`);
          return { index: got.headers.get('x-etcd-index'), body: got.json };
        }),
      );
      expect(answers[1]).toEqual(answers[0]);
      expect(answers[0]!.body.node.modifiedIndex).toBe(put.json.node.modifiedIndex);
    }, 120_000);
  }
});
