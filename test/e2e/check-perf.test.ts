// `etcdctl check perf --load=s`: 60 s of paced puts from 50 clients, then it deletes what
// it wrote. Whether each verdict is PASS depends on the machine's load, so the verdicts
// are measured in bench/server/check-perf.ts beside real etcd; this test checks that the
// command runs to its end against etcd-ts and leaves no keys behind.

import { afterAll, expect, it } from 'vitest';
import { cleanup, ctl, etcdctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

it('runs etcdctl check perf --load=s to its verdicts and cleans up after it', async () => {
  const m = await startMember({ name: 'perf' });
  const r = await etcdctl(m.clientUrl, ['check', 'perf', '--load=s'], undefined, 120_000);
  const out = r.stdout + r.stderr;
  // every request succeeded; the three verdicts, in etcdctl's words for either outcome
  expect(out).not.toMatch(/FAIL: (too many errors|ERROR)/);
  expect(out).toMatch(/PASS: Throughput is \d+ writes\/s|FAIL: Throughput too low: \d+ writes\/s/);
  expect(out).toMatch(/PASS: Slowest request took [\d.]+s|Slowest request took too long: [\d.]+s/);
  expect(out).toMatch(/PASS: Stddev is [\d.]+s|Stddev too high: [\d.]+s/);
  // check perf writes under /etcdctl-check-perf/ and removes the prefix when done
  expect(await ctl(m.clientUrl, ['get', '/etcdctl-check-perf/', '--prefix', '--keys-only'])).toBe('');
  await stopMember(m);
}, 150_000);
