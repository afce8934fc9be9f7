// Client libraries other than etcdctl, unchanged: python-etcd3 (gRPC, Debian's
// python3-etcd3, run by the system python that package installs into).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { cleanup, repoRoot, startMember, stopMember } from './harness.js';

afterAll(cleanup);

const systemPython = '/usr/bin/python3';

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    ),
  );
}

it('python-etcd3 (gRPC) works unchanged: kv, prefix, lease, txn, watch, members, status, lock', async () => {
  const probe = await run(systemPython, ['-c', 'import etcd3']);
  expect(probe.code, `python3-etcd3 is missing: apt-get install -y python3-etcd3 (${probe.out})`).toBe(0);
  expect(existsSync(systemPython)).toBe(true);
  const m = await startMember({ name: 'py' });
  const port = new URL(m.clientUrl).port;
  const r = await run(systemPython, [path.join(repoRoot, 'test/e2e/clients/python_etcd3.py'), port]);
  expect(r.code, r.out).toBe(0);
  expect(r.out.trim().split('\n')).toEqual([
    'get hello 1',
    "prefix ['/py/a']",
    "lease True ['/py/leased']",
    'revoked None',
    'txn True txn',
    "watch ['PutEvent', 'DeleteEvent']",
    "members ['py']",
    'status 3 py',
    'locked True',
    'deleted 2',
  ]);
  await stopMember(m);
});
