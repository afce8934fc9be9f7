import { rmSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { servePeer, type Listener } from '../../src/server/listener/index.js';
import { loadTls } from '../../src/server/tls.js';
import { captureLogger, makePki, read, type TestPki } from './helpers.js';

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

  async function start(url: string, secure: boolean): Promise<{ listener: Listener; lines: Array<Record<string, unknown>> }> {
    const { logger, lines } = captureLogger();
    const tls = secure
      ? await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false }, '/x', [])
      : undefined;
    const listener = await servePeer(new URL(url), tls, echo, logger);
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
});
