// A real gateway client: python3-etcd3gw (the Debian package) drives put/get/txn/lease/
// watch/delete through the gateway from a python3 child process. The same script run
// against etcd 3.4.23 printed exactly the object expected below (with its member names).

import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type GatewayMember, startGatewayMember } from './member.js';

/** Debian's python3-etcd3gw installs for the system interpreter only. */
const PYTHON = '/usr/bin/python3';
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'etcd3gw_client.py');

let m: GatewayMember;

beforeAll(async () => {
  m = await startGatewayMember();
}, 60_000);

afterAll(async () => {
  await m?.close();
});

function runClient(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, String(port)], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`etcd3gw client failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

it('python3-etcd3gw works against the gateway as against etcd 3.4.23', async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import etcd3gw'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `python3-etcd3gw is not installed for ${PYTHON} (${(probe.stderr || probe.error?.message || '').trim()}); ` +
        'install it with `apt-get install python3-etcd3gw`',
    );
  }

  const out = JSON.parse(await runClient(m.port)) as Record<string, unknown>;
  expect(out).toEqual({
    put: true,
    get: ['bar'],
    get_metadata_keys: ['create_revision', 'key', 'mod_revision', 'version'],
    get_missing: [],
    create: true,
    create_again: false,
    replace: true,
    replace_stale: false,
    prefix: [
      ['py/foo', 'bar'],
      ['py/new', 'v2'],
    ],
    lease_id_positive: true,
    lease_ttl_in_range: true,
    lease_refresh: 30,
    lease_keys: ['py/leased'],
    lease_revoke: true,
    leased_after_revoke: [],
    watch: [
      ['PUT', 'py/watched', 'w1'],
      ['DELETE', 'py/watched'],
    ],
    delete: true,
    delete_missing: false,
    delete_prefix: true,
    members: ['gw'],
    status_version: '3.4.23',
    empty_key: ['Etcd3Exception', 'etcdserver: key is not provided'],
  });

  // The watch etcd3gw cancelled by shutting its socket was released on the server.
  expect(m.watchCalls.length).toBe(1);
  await vi.waitFor(() => expect(m.watchCalls[0]!.cancelled).toBe(true), { timeout: 20_000, interval: 10 });
}, 90_000);
