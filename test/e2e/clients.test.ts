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

it('python-etcd3gw (the JSON gateway on the client port) works unchanged', async () => {
  const probe = await run(systemPython, ['-c', 'import etcd3gw']);
  expect(probe.code, `python3-etcd3gw is missing: apt-get install -y python3-etcd3gw (${probe.out})`).toBe(0);
  const m = await startMember({ name: 'gwclient' });
  const port = new URL(m.clientUrl).port;
  const r = await run(systemPython, [path.join(repoRoot, 'test/gateway/fixtures/etcd3gw_client.py'), port]);
  expect(r.code, r.out).toBe(0);
  const out = JSON.parse(r.out) as Record<string, unknown>;
  expect(out.get).toEqual(['bar']);
  expect(out.create_again).toBe(false);
  expect(out.lease_keys).toEqual(['py/leased']);
  expect(out.watch).toEqual([
    ['PUT', 'py/watched', 'w1'],
    ['DELETE', 'py/watched'],
  ]);
  expect(out.members).toEqual(['gwclient']);
  expect(out.empty_key).toEqual(['Etcd3Exception', 'etcdserver: key is not provided']);
  await stopMember(m);
});
