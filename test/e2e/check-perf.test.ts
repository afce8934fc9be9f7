// `etcdctl check perf --load=s`: 60 s of paced puts from 50 clients; PASS needs the
// throughput, the slowest request under 0.5 s and a low deviation.

import { afterAll, expect, it } from 'vitest';
import { cleanup, etcdctl, startMember } from './harness.js';

afterAll(cleanup);

it('passes etcdctl check perf --load=s', async () => {
  const m = await startMember({ name: 'perf' });
  const r = await etcdctl(m.clientUrl, ['check', 'perf', '--load=s'], undefined, 120_000);
  expect(r.stdout + r.stderr).toContain('PASS: Throughput is');
  expect(r.stdout + r.stderr).toContain('PASS: Slowest request took');
  expect(r.stdout + r.stderr).toContain('PASS: Stddev is');
  expect(r.stdout).toContain('PASS');
  expect(r.code).toBe(0);
}, 150_000);
