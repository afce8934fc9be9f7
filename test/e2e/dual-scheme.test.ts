// `--listen-client-urls http://IP:P,https://IP:P`: one port serving plain and TLS clients,
// as etcd's cmux does it (etcd's e2e TestV2CurlClientBoth). HTTP clients reach the member
// both ways, stock etcdctl over TLS (and, on etcd-ts, in the clear too); both URLs are logged.

import { afterAll, describe, expect, it } from 'vitest';
import { makePki } from '../listener/helpers.js';
import { binary, cleanup, ctl, freePort, httpRequest, startMember, stopMember, tempDir, waitFor } from './harness.js';

afterAll(cleanup);

describe('http:// and https:// on one port', () => {
  it('serves HTTP both in the clear and over TLS, and gRPC over TLS', async () => {
    const pki = makePki(tempDir('listener-pki-'));
    const port = await freePort();
    const plain = `http://127.0.0.1:${port}`;
    const secure = `https://127.0.0.1:${port}`;
    const m = await startMember({
      name: 'both',
      clientPort: port,
      args: ['--listen-client-urls', `${plain},${secure}`, '--advertise-client-urls', `${plain},${secure}`, '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--logger', 'zap'],
      // etcd 3.4 logs no "ready to serve client requests" for such a port; both log these
      waitReady: false,
    });
    await waitFor(m, 'serving client traffic securely');
    await waitFor(m, 'serving client traffic insecurely');
    expect(await ctl(secure, ['--cacert', pki.ca, 'put', 'k', 'tls'])).toBe('OK\n');
    if (binary === 'etcd-ts') {
      // etcd 3.4 serves only /health and v2 in the clear on such a port (gRPC clients time
      // out, the JSON gateway answers 503); etcd-ts serves everything both ways
      expect(await ctl(plain, ['get', 'k', '--print-value-only'])).toBe('tls\n');
      expect(await ctl(plain, ['put', 'k', 'clear'])).toBe('OK\n');
      expect(await ctl(secure, ['--cacert', pki.ca, 'get', 'k', '--print-value-only'])).toBe('clear\n');
      const range = await httpRequest(`${plain}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('k').toString('base64') }) });
      expect(range.status).toBe(200);
    }
    expect((await httpRequest(`${plain}/health`)).text).toContain('"health":"true"');
    expect((await httpRequest(`${secure}/health`, { tls: { ca: pki.ca } })).text).toContain('"health":"true"');
    await stopMember(m);
  }, 60_000);
});
