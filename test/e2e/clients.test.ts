// Client libraries other than etcdctl, unchanged: python-etcd3 (gRPC, Debian's
// python3-etcd3, run by the system python that package installs into).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { makePki } from '../listener/helpers.js';
import { cleanup, ctl, freePort, repoRoot, startMember, stopMember, tempDir } from './harness.js';

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

it('python-etcd3 with user= and password=: refused with auth off as etcd refuses it, enforced with auth on', async () => {
  const pki = makePki(tempDir('listener-pki-'));
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const m = await startMember({
    name: 'pyauth',
    clientPort: port,
    args: ['--listen-client-urls', url, '--advertise-client-urls', url, '--cert-file', pki.serverCert, '--key-file', pki.serverKey],
  });
  const tlsCtl = (args: string[]) => ctl(url, ['--cacert', pki.ca, ...args]);
  const script = path.join(repoRoot, 'test/e2e/clients/python_etcd3_auth.py');
  const off = await run(systemPython, [script, String(port), 'off', pki.ca]);
  expect(off.code, off.out).toBe(0);
  expect(off.out.trim().split('\n')).toEqual(['auth off: FAILED_PRECONDITION etcdserver: authentication is not enabled', 'auth off: without credentials v']);
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['user', 'grant-role', 'root', 'root'],
    ['role', 'add', 'py-rw'],
    ['role', 'grant-permission', 'py-rw', '--prefix=true', 'readwrite', '/py/'],
    ['user', 'add', 'py:pw'],
    ['user', 'grant-role', 'py', 'py-rw'],
    ['auth', 'enable'],
  ]) {
    await tlsCtl(args);
  }
  const on = await run(systemPython, [script, String(port), 'on', pki.ca]);
  expect(on.code, on.out).toBe(0);
  expect(on.out.trim().split('\n')).toEqual([
    'auth on: own prefix v',
    'auth on: outside prefix PERMISSION_DENIED etcdserver: permission denied',
    'auth on: wrong password INVALID_ARGUMENT etcdserver: authentication failed, invalid user ID or password',
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
