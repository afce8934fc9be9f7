import { rmSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { servePeer, type Listener, type ServeOptions } from '../../src/server/listener/index.js';
import { loadTls } from '../../src/server/tls.js';
import { captureLogger, makeLeaf, makePki, read, type TestPki } from './helpers.js';

const echo: http.RequestListener = (req, res) => res.end(`peer ${req.method} ${req.url}`);

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

describe('servePeer', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(url: string, secure: boolean, opts: ServeOptions = {}): Promise<{ listener: Listener; lines: Array<Record<string, unknown>> }> {
    const { logger, lines } = captureLogger();
    const tls = secure
      ? await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false }, '/x', [])
      : undefined;
    const listener = await servePeer(new URL(url), tls, echo, logger, undefined, opts);
    cleanups.push(() => listener.close());
    return { listener, lines };
  }

  it('serves the peer handler over mutual TLS to a member holding a certificate from the CA', async () => {
    const { listener, lines } = await start('https://127.0.0.1:0', true);
    const tls = await loadTls({ certFile: pki.clientCert, keyFile: pki.clientKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false }, '/x', []);
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(`${listener.url}/members`, { ...tls.client, agent: false }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    expect(body).toBe('peer GET /members');
    expect(lines.some((l) => l.msg === 'serving peer traffic' && l.address === new URL(listener.url).host)).toBe(true);
  });

  it('refuses a peer with an untrusted certificate and logs it', async () => {
    const { listener, lines } = await start('https://127.0.0.1:0', true);
    await expect(
      new Promise((resolve, reject) => {
        https
          .get(`${listener.url}/members`, { ca: read(pki.ca), cert: read(pki.rogueCert), key: read(pki.rogueKey), agent: false }, resolve)
          .on('error', reject);
      }),
    ).rejects.toThrow();
    expect(lines.some((l) => l.msg === 'rejected connection' && String(l.error).startsWith('tls: failed to verify client certificate'))).toBe(true);
  });

  it('has no gRPC: HTTP/2 clients are turned away, plain and over TLS', async () => {
    const plain = (await start('http://127.0.0.1:0', false)).listener;
    const secure = (await start('https://127.0.0.1:0', true)).listener;
    for (const [url, opts] of [
      [plain.url, {}],
      [secure.url, { ca: read(pki.ca), cert: read(pki.clientCert), key: read(pki.clientKey) }],
    ] as const) {
      await expect(
        new Promise((resolve, reject) => {
          const session = http2.connect(url, opts);
          session.on('error', reject);
          session.on('close', () => reject(new Error('closed')));
          const req = session.request({ ':path': '/members' });
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        }),
      ).rejects.toThrow();
    }
    // Still serving HTTP/1.1.
    const ok = await new Promise<number>((resolve, reject) => http.get(`${plain.url}/x`, (res) => resolve(res.statusCode ?? 0)).on('error', reject));
    expect(ok).toBe(200);
  });

  describe("a peer certificate must name the address it connects from (etcd's checkSAN)", () => {
    /** The peer handler's answer to a member presenting certificate `name` from 127.0.0.1, or the error that ended the connection. */
    function get(url: string, name: string): Promise<string> {
      return new Promise((resolve) => {
        https
          .get(`${url}/members`, { ca: read(pki.ca), cert: read(`${pki.dir}/${name}.pem`), key: read(`${pki.dir}/${name}-key.pem`), agent: false }, (res) => {
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(b));
          })
          .on('error', (err) => resolve(`error: ${err.message}`));
      });
    }

    beforeAll(() => {
      makeLeaf(pki.dir, 'ca', 'elsewhere', '/CN=m2', 'IP:10.0.0.9,IP:fd00::1');
      makeLeaf(pki.dir, 'ca', 'byname', '/CN=m3', 'DNS:localhost');
      makeLeaf(pki.dir, 'ca', 'ip-or-name', '/CN=m4', 'IP:10.0.0.9,DNS:localhost');
      makeLeaf(pki.dir, 'ca', 'nameless', '/CN=m5', '');
    });

    it('refuses a certificate whose IP addresses miss the connection, in Go x509 words, and logs its names as etcd does', async () => {
      const { listener, lines } = await start('https://127.0.0.1:0', true, { checkClientSan: true });
      expect(await get(listener.url, 'elsewhere')).toMatch(/^error: /);
      const refused = lines.filter((l) => l.msg === 'rejected connection');
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({
        error: 'x509: certificate is valid for 10.0.0.9, fd00::1, not 127.0.0.1',
        'ip-addresses': ['10.0.0.9', 'fd00::1'],
        'dns-names': [],
      });
      expect(refused[0]!['remote-addr']).toMatch(/^127\.0\.0\.1:\d+$/);
      // the listener serves on: a member whose certificate names 127.0.0.1 gets through
      expect(await get(listener.url, 'client')).toBe('peer GET /members');
    });

    it('accepts a certificate naming the address by IP, by a DNS name that resolves to it (the hosts file), or by none at all', async () => {
      const { listener, lines } = await start('https://127.0.0.1:0', true, { checkClientSan: true });
      for (const name of ['client', 'byname', 'ip-or-name', 'nameless']) expect(await get(listener.url, name)).toBe('peer GET /members');
      expect(lines.filter((l) => l.msg === 'rejected connection')).toEqual([]);
    });

    it('lets any certificate the CA signed through without the check (--experimental-peer-skip-client-san-verification)', async () => {
      const { listener } = await start('https://127.0.0.1:0', true);
      expect(await get(listener.url, 'elsewhere')).toBe('peer GET /members');
    });
  });
});
