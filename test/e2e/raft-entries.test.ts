// Requests that become raft entries as they do in etcd 3.4, so the RAFT INDEX operators
// read in `endpoint status` moves alike on both servers: /health proposes a v2 QGET (a
// member whose writes cannot commit is unhealthy, not only one without a leader), and an
// alarm GET (`etcdctl alarm list`, and the list `alarm disarm` starts with) goes through
// raft like the other alarm actions.

import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, ctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

async function raftIndex(ep: string): Promise<number> {
  const s = JSON.parse(await ctl(ep, ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { raftIndex: number } }>;
  return s[0]!.Status.raftIndex;
}

describe('what goes through raft', () => {
  it('/health, alarm list and alarm disarm each add one entry, as on etcd 3.4.23', async () => {
    const steps: Record<string, number[]> = {};
    for (const binary of ['etcd', 'etcd-ts'] as const) {
      const m = await startMember({ binary });
      try {
        const seen = [await raftIndex(m.clientUrl)];
        expect((await fetch(`${m.clientUrl}/health`)).status).toBe(200);
        seen.push(await raftIndex(m.clientUrl));
        expect(await ctl(m.clientUrl, ['alarm', 'list'])).toBe('');
        seen.push(await raftIndex(m.clientUrl));
        expect(await ctl(m.clientUrl, ['alarm', 'disarm'])).toBe('');
        seen.push(await raftIndex(m.clientUrl));
        await ctl(m.clientUrl, ['put', 'k', 'v']);
        seen.push(await raftIndex(m.clientUrl));
        steps[binary] = seen.slice(1).map((index, i) => index - seen[i]!);
      } finally {
        await stopMember(m);
      }
    }
    expect(steps['etcd-ts']).toEqual(steps.etcd);
    expect(steps.etcd).toEqual([1, 1, 1, 1]);
  });
});
