// --host-whitelist and --cors on real members, as etcd 3.4's access controller applies them
// to the client port's HTTP/1.1 side (/health, /version, /metrics, the /v3/ gateway, /v2/):
// a plain-HTTP request naming a host off the whitelist is refused with 421 and etcd's
// CVE-2018-5702 explanation (a page on another site could otherwise reach a member on
// localhost through a DNS name rebound to 127.0.0.1); over TLS any host is taken; CORS
// headers go only to the origins --cors lists. gRPC does not pass through it.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makePki, type TestPki } from '../listener/helpers.js';
import { type Member, cleanup, ctl, freePort, httpRequest, startMember, tempDir } from './harness.js';

const ACCESS = ['--host-whitelist', 'etcd.example,127.0.0.1', '--cors', 'https://ui.example:443', '--enable-v2'];

let plain: Member;
let secure: Member;
let secureUrl: string;
let pki: TestPki;
beforeAll(async () => {
  pki = makePki(tempDir('etcd-ts-access-pki-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  secureUrl = `https://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  [plain, secure] = await Promise.all([
    startMember({ args: ACCESS }),
    startMember({
      bare: true,
      args: [
        '--name', 'secure', '--data-dir', path.join(tempDir(), 'secure.etcd'),
        '--listen-client-urls', secureUrl, '--advertise-client-urls', secureUrl,
        '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `secure=${peerUrl}`,
        '--cert-file', pki.serverCert, '--key-file', pki.serverKey,
        ...ACCESS,
      ],
    }),
  ]);
}, 60_000);
afterAll(cleanup);

it('refuses a plain-HTTP request naming a host off --host-whitelist with 421 and etcd\'s explanation, on every HTTP route', async () => {
  for (const route of ['/version', '/health', '/metrics', '/v2/keys/', '/v3/kv/range']) {
    const post = route.startsWith('/v3/') ? { method: 'POST', body: '{}' } : {};
    const r = await httpRequest(`${plain.clientUrl}${route}`, { ...post, headers: { host: 'rebound.attacker.example:2379' } });
    expect(r.status, route).toBe(421);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.text).toBe(`
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist "rebound.attacker.example"

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).

`);
  }
  expect(plain.output()).toContain('"host":"rebound.attacker.example","msg":"rejecting HTTP request to prevent DNS rebinding attacks"');
  // hosts on the list, with or without a port
  for (const host of ['etcd.example', 'etcd.example:2379', `127.0.0.1:${new URL(plain.clientUrl).port}`]) {
    expect((await httpRequest(`${plain.clientUrl}/version`, { headers: { host } })).status, host).toBe(200);
  }
  // gRPC is not the access controller's: etcdctl's calls go through whatever authority they name
  expect(await ctl(plain.clientUrl, ['put', 'grpc', 'unaffected'])).toBe('OK\n');
});

it('takes any host over TLS', async () => {
  // curl checks the certificate against the URL's 127.0.0.1 and sends the Host it is given
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--cacert', pki.ca, '-H', 'Host: rebound.attacker.example', '-w', ' %{http_code}', `${secureUrl}/version`]);
  expect(stdout).toMatch(/^\{"etcdserver":"[0-9.]+","etcdcluster":"[0-9.]+"\} 200$/);
  expect(secure.output()).not.toContain('rejecting HTTP request');
});

it('sends CORS headers only to an origin --cors lists, and answers every preflight', async () => {
  const listed = await httpRequest(`${plain.clientUrl}/version`, { headers: { origin: 'https://ui.example:443' } });
  expect(listed.status).toBe(200);
  expect(listed.headers.get('access-control-allow-origin')).toBe('https://ui.example:443');
  expect(listed.headers.get('access-control-allow-methods')).toBe('POST, GET, OPTIONS, PUT, DELETE');
  expect(listed.headers.get('access-control-allow-headers')).toBe('accept, content-type, authorization');
  const other = await httpRequest(`${plain.clientUrl}/version`, { headers: { origin: 'https://other.example:443' } });
  expect(other.status).toBe(200);
  expect(other.headers.get('access-control-allow-origin')).toBeNull();
  const preflight = await httpRequest(`${plain.clientUrl}/v3/kv/put`, { method: 'OPTIONS', headers: { origin: 'https://other.example:443' } });
  expect(preflight.status).toBe(200);
  expect(preflight.text).toBe('');
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
});
