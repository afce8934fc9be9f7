// Authentication by client certificate, as etcd 3.4 does it with --client-cert-auth: a
// call that carries no token runs as the Common Name of its verified certificate; a token
// (--user) still wins. Certificates from an openssl CA made for the test.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../listener/helpers.js';
import { cleanup, etcdctl, freePort, startMember, stopMember } from './harness.js';

let pki: TestPki;
beforeAll(() => {
  pki = makePki(); // client.pem has CN "root", other.pem CN "other"
});
afterAll(async () => {
  await cleanup();
  rmSync(pki.dir, { recursive: true, force: true });
});

describe('--client-cert-auth with auth on', () => {
  it('runs a call without a token as its certificate Common Name', async () => {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const m = await startMember({
      name: 'cn',
      clientPort: port,
      args: [
        '--listen-client-urls', url, '--advertise-client-urls', url,
        '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth',
        '--bcrypt-cost', '4',
      ],
    });
    const as = (cert: 'client' | 'other', args: string[]) =>
      etcdctl(url, ['--cacert', pki.ca, '--cert', cert === 'client' ? pki.clientCert : pki.otherClientCert, '--key', cert === 'client' ? pki.clientKey : pki.otherClientKey, ...args]);
    expect((await as('client', ['user', 'add', 'root', '--new-user-password=rootpw'])).code).toBe(0);
    expect((await as('client', ['user', 'add', 'other', '--new-user-password=otherpw'])).code).toBe(0);
    expect((await as('client', ['auth', 'enable'])).stdout).toBe('Authentication Enabled\n');
    // no --user: the certificate's CN "root" is the root user
    expect((await as('client', ['put', 'cn/k', 'v'])).stdout).toBe('OK\n');
    expect((await as('client', ['user', 'list'])).stdout).toBe('other\nroot\n');
    // CN "other" is a user without roles: refused
    const refused = await as('other', ['get', 'cn/k']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('etcdserver: permission denied');
    // a token wins over the certificate
    expect((await as('other', ['--user', 'root:rootpw', 'get', 'cn/k', '--print-value-only'])).stdout).toBe('v\n');
    await stopMember(m);
  });
});
