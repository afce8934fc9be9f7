// --quota-backend-bytes: past the quota the NOSPACE alarm is raised, writes are refused
// with etcd's error while reads, deletes and compaction still work, and after freeing
// space and disarming the alarm writes are accepted again.

import { afterAll, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { cleanup, ctl, etcdctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

it('raises NOSPACE past the quota and recovers after compaction, defrag and disarm', async () => {
  const m = await startMember({ name: 'q', args: ['--quota-backend-bytes', String(256 * 1024)] });
  const ep = m.clientUrl;
  const client = new EtcdClient(ep);
  const value = 'x'.repeat(4096);
  let refused: Error | undefined;
  for (let i = 0; i < 2000 && refused === undefined; i++) {
    try {
      await client.put(`fill/${i}`, value);
    } catch (err) {
      refused = err as Error;
    }
  }
  client.close();
  expect(refused?.message).toContain('etcdserver: mvcc: database space exceeded');
  expect(await ctl(ep, ['alarm', 'list'])).toMatch(/^memberID:\d+ alarm:NOSPACE \n$/);
  const put = await etcdctl(ep, ['put', 'more', 'data']);
  expect(put.stderr).toContain('etcdserver: mvcc: database space exceeded');
  // reads and deletes still work
  expect(await ctl(ep, ['get', 'fill/0', '--keys-only'])).toBe('fill/0\n\n');
  expect(await ctl(ep, ['del', 'fill/', '--prefix'])).toMatch(/^\d+\n$/);
  const rev = (JSON.parse(await ctl(ep, ['get', 'fill/0', '-w', 'json'])) as { header: { revision: number } }).header.revision;
  expect(await ctl(ep, ['compaction', String(rev), '--physical'])).toBe(`compacted revision ${rev}\n`);
  await ctl(ep, ['defrag']);
  expect(await ctl(ep, ['alarm', 'disarm'])).toMatch(/alarm:NOSPACE/);
  expect(await ctl(ep, ['alarm', 'list'])).toBe('');
  expect(await ctl(ep, ['put', 'more', 'data'])).toBe('OK\n');
  await stopMember(m);
});
