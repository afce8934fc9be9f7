import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { GrpcServer, serveClient, type Listener } from '../../src/server/listener/index.js';
import { loadTls, TlsConfigError, type TlsContext } from '../../src/server/tls.js';
import { addRangeService, captureLogger, KVClient, makeLeaf, makePki, range, read, revokeClientCert, type TestPki } from './helpers.js';

const health: http.RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"health":"true"}');
};

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runEnv({}, cmd, args);
}

function runEnv(env: Record<string, string>, cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

describe('serveClient over TLS', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(urls: string[], ctx: TlsContext): Promise<{ listeners: Listener[]; lines: Array<Record<string, unknown>> }> {
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    addRangeService(server);
    const { logger, lines } = captureLogger();
    const listeners: Listener[] = [];
    for (const u of urls) listeners.push(await serveClient(new URL(u), ctx, server, health, logger));
    cleanups.push(async () => {
      for (const l of listeners) await l.close();
      server.forceShutdown();
    });
    return { listeners, lines };
  }

  function mtlsContext(): Promise<TlsContext> {
    return loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false },
      '/nonexistent',
      ['127.0.0.1'],
    );
  }

  function tlsClient(url: string, cert: string, key: string): grpc.Client {
    const creds = grpc.credentials.createSsl(read(pki.ca), read(key), read(cert));
    const c = new KVClient(new URL(url).host, creds);
    cleanups.push(() => c.close());
    return c;
  }

  it('serves gRPC to a client with a trusted certificate and HTTP to curl on the same port', async () => {
    const { listeners } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const url = listeners[0]!.url;
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await range(tlsClient(url, pki.clientCert, pki.clientKey), 'foo');
    expect(res.kvs[0]!.value.toString()).toBe('bar');
    const curl = await run('curl', ['-sS', '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, `${url}/health`]);
    expect(curl).toMatchObject({ code: 0, stdout: '{"health":"true"}' });
  });

  it('refuses and logs a client whose certificate the CA did not sign, and one with none', async () => {
    const { listeners, lines } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const url = listeners[0]!.url;
    await expect(range(tlsClient(url, pki.rogueCert, pki.rogueKey), 'foo')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const curl = await run('curl', ['-sS', '--cacert', pki.ca, `${url}/health`]);
    expect(curl.code).not.toBe(0);
    expect(curl.stdout).toBe('');
    const rejected = lines.filter((l) => l.msg === 'rejected connection');
    for (const l of rejected) expect(l['remote-addr']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(rejected.some((l) => String(l.error).startsWith('tls: failed to verify client certificate'))).toBe(true);
    expect(rejected.some((l) => l.error === "tls: client didn't provide a certificate")).toBe(true);
    // Still serving trusted clients.
    expect((await range(tlsClient(url, pki.clientCert, pki.clientKey), 'ok')).kvs.length).toBe(1);
  });

  it('survives garbage and silence on the TLS port', async () => {
    const { listeners, lines } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const url = listeners[0]!.url;
    const port = Number(new URL(url).port);
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff garbage')));
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    expect(lines.some((l) => l.msg === 'rejected connection' && /^127\.0\.0\.1:\d+$/.test(String(l['remote-addr'])))).toBe(true);
    expect((await range(tlsClient(url, pki.clientCert, pki.clientKey), 'after')).kvs.length).toBe(1);
  });

  it('refuses a client certificate revoked by --client-crl-file (DER, as openssl writes it) and accepts the others, also once the CRL has expired (as etcd)', async () => {
    const crl = revokeClientCert(pki, 1);
    await new Promise((r) => setTimeout(r, 2000)); // past the CRL's next update
    const ctx = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, crlFile: crl },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const { listeners, lines } = await start(['https://127.0.0.1:0'], ctx);
    const url = listeners[0]!.url;
    await expect(range(tlsClient(url, pki.clientCert, pki.clientKey), 'foo')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(lines.some((l) => l.msg === 'rejected connection' && /revoked/i.test(String(l.error)))).toBe(true);
    expect((await range(tlsClient(url, pki.otherClientCert, pki.otherClientKey), 'ok')).kvs.length).toBe(1);
  });

  it('accepts only the --peer-cert-allowed-cn Common Name, and logs the refusal with the remote address', async () => {
    const ctx = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, allowedCn: 'root' },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const { listeners, lines } = await start(['https://127.0.0.1:0'], ctx);
    const url = listeners[0]!.url;
    expect((await range(tlsClient(url, pki.clientCert, pki.clientKey), 'ok')).kvs.length).toBe(1);
    await expect(range(tlsClient(url, pki.otherClientCert, pki.otherClientKey), 'foo')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const refused = lines.filter((l) => l.msg === 'rejected connection' && String(l.error).startsWith('client certificate authentication failed'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!['remote-addr']).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  /** How a Node TLS client that sends a request once its handshake is done sees the connection end. */
  function tlsOutcome(url: string, cert: string, key: string, opts: tls.ConnectionOptions = {}): Promise<{ code?: string; answer: string }> {
    const u = new URL(url);
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: Number(u.port), ca: read(pki.ca), cert: read(cert), key: read(key), ALPNProtocols: ['http/1.1'], ...opts }, () =>
        s.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let answer = '';
      let code: string | undefined;
      s.on('data', (d) => (answer += d));
      s.on('error', (err: NodeJS.ErrnoException) => (code = err.code));
      s.on('close', () => resolve({ code, answer }));
    });
  }

  it('refuses a certificate with the wrong CN, or untrusted, with alert 42 (bad certificate) under every TLS 1.3 suite, as Go does in its handshake; CRL refusals just close, as in etcd', async () => {
    const crl = revokeClientCert(pki); // "client" (CN root)
    makeLeaf(pki.dir, 'ca', 'root2', '/CN=root');
    const ctx = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, allowedCn: 'root', crlFile: crl },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const { listeners, lines } = await start(['https://127.0.0.1:0'], ctx);
    const url = listeners[0]!.url;
    for (const ciphers of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
      expect(await tlsOutcome(url, pki.otherClientCert, pki.otherClientKey, { ciphers })).toEqual({ code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', answer: '' });
    }
    expect(await tlsOutcome(url, pki.rogueCert, pki.rogueKey)).toEqual({ code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', answer: '' });
    // the right CN, but revoked
    const revoked = await tlsOutcome(url, pki.clientCert, pki.clientKey);
    expect(revoked.answer).toBe('');
    expect(revoked.code ?? 'closed').not.toMatch(/ALERT/);
    // the log lines are as they were
    const rejected = lines.filter((l) => l.msg === 'rejected connection');
    for (const l of rejected) expect(l['remote-addr']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(rejected.map((l) => l.error)).toEqual([
      ...Array(3).fill('client certificate authentication failed: CN "other" is not "root"'),
      'tls: failed to verify client certificate: UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      expect.stringMatching(/^transport: certificate serial [0-9a-f]+ revoked$/),
    ]);
    // the allowed CN is served, through the same stream
    expect(await tlsOutcome(url, path.join(pki.dir, 'root2.pem'), path.join(pki.dir, 'root2-key.pem'))).toMatchObject({ answer: expect.stringMatching(/^HTTP\/1\.1 200 OK[^]*\{"health":"true"\}/) });
  });

  it('stock etcdctl (Go) refused by --client-cert-allowed-hostname reads "remote error: tls: bad certificate", as from etcd', async () => {
    const ctx = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, allowedHostname: 'example.com' },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const url = (await start(['https://127.0.0.1:0'], ctx)).listeners[0]!.url;
    // the v2 client prints the TLS error it got (the v3 one only "context deadline exceeded")
    const out = await runEnv({ ETCDCTL_API: '2' }, 'etcdctl', ['--endpoints', url, '--ca-file', pki.ca, '--cert-file', pki.clientCert, '--key-file', pki.clientKey, 'get', 'foo']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('error #0: remote error: tls: bad certificate');
  });

  it("logs an alert a client sends during the handshake in Go's words", async () => {
    const { listeners, lines } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const u = new URL(listeners[0]!.url);
    // openssl trusts only another CA here and, told to, aborts the handshake with alert 48 (unknown_ca)
    const rogueCa = path.join(pki.dir, 'rogue-ca.pem');
    await new Promise((resolve) => {
      const c = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${u.port}`, '-verify_return_error', '-CAfile', rogueCa, '-cert', pki.clientCert, '-key', pki.clientKey], { timeout: 30_000 }, resolve);
      c.stdin!.end();
    });
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'rejected connection', error: 'remote error: tls: unknown certificate authority' }));
  });

  it('accepts only certificates valid for --client-cert-allowed-hostname; CN and hostname together are refused as in etcd', async () => {
    const allowed = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, allowedHostname: 'localhost' },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const other = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false, allowedHostname: 'example.com' },
      '/nonexistent',
      ['127.0.0.1'],
    );
    const a = (await start(['https://127.0.0.1:0'], allowed)).listeners[0]!.url;
    const b = (await start(['https://127.0.0.1:0'], other)).listeners[0]!.url;
    expect((await range(tlsClient(a, pki.clientCert, pki.clientKey), 'ok')).kvs.length).toBe(1);
    await expect(range(tlsClient(b, pki.clientCert, pki.clientKey), 'foo')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(
      loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: true, autoTls: false, allowedCn: 'x', allowedHostname: 'y' }, '/x', []),
    ).rejects.toThrow('AllowedCN and AllowedHostname are mutually exclusive (cn="x", hostname="y")');
  });

  it('stock etcdctl reaches the Range handler with --cacert/--cert/--key', async () => {
    const { listeners } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const url = listeners[0]!.url;
    const out = await run('etcdctl', [`--endpoints=${url}`, '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey,
      '--command-timeout=10s', 'get', 'foo']);
    expect(out).toMatchObject({ code: 0, stdout: 'foo\nbar\n' });
  });

  it('mixes https and http URLs on one GrpcServer', async () => {
    const { listeners, lines } = await start(['https://127.0.0.1:0', 'http://127.0.0.1:0'], await mtlsContext());
    const [secure, plain] = listeners.map((l) => l.url);
    expect(lines.some((l) => l.msg === 'scheme is HTTP while key and cert files are present; ignoring key and cert files')).toBe(true);
    expect((await range(tlsClient(secure!, pki.clientCert, pki.clientKey), 'a')).kvs[0]!.key.toString()).toBe('a');
    const c = new KVClient(new URL(plain!).host, grpc.credentials.createInsecure());
    cleanups.push(() => c.close());
    expect((await range(c, 'b')).kvs[0]!.key.toString()).toBe('b');
  });

  it('sniffs a TLS client that negotiates no ALPN protocol', async () => {
    const { listeners } = await start(['https://127.0.0.1:0'], await mtlsContext());
    const u = new URL(listeners[0]!.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: Number(u.port), ca: read(pki.ca), cert: read(pki.clientCert), key: read(pki.clientKey) }, () => {
        expect(s.alpnProtocol).toBe(false);
        s.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      s.on('data', (c) => (data += c));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toContain('{"health":"true"}');
  });
});

describe('loadTls', () => {
  it('requires client certificates when a trusted CA is given, as etcd 3.4 does', async () => {
    const ctx = await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca, clientCertAuth: false, autoTls: false }, '/x', []);
    expect(ctx.server).toMatchObject({ requestCert: true, rejectUnauthorized: true });
    expect(ctx.clientCertAuth).toBe(true);
    const open = await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/x', []);
    expect(open.server).toMatchObject({ requestCert: false, rejectUnauthorized: false });
  });

  it('names the file it cannot read', async () => {
    await expect(loadTls({ certFile: '/nope/cert.pem', keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/x', [])).rejects.toThrow(
      /cannot read certificate file "\/nope\/cert.pem"/,
    );
    await expect(loadTls({ certFile: '', keyFile: '', clientCertAuth: false, autoTls: false }, '/x', [])).rejects.toBeInstanceOf(TlsConfigError);
  });

  it('limits TLS 1.2 to --cipher-suites (Go names) and keeps TLS 1.3, as Go does', async () => {
    await expect(
      loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false, cipherSuites: ['TLS_FOO'] }, '/x', []),
    ).rejects.toThrow('unexpected TLS cipher suite "TLS_FOO"');
    const ctx = await loadTls(
      { certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false, cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'] },
      '/x',
      [],
    );
    const server = new GrpcServer({ maxRequestBytes: 1024 });
    const { logger } = captureLogger();
    const l = await serveClient(new URL('https://127.0.0.1:0'), ctx, server, health, logger);
    try {
      const port = Number(new URL(l.url).port);
      const handshake = (opts: tls.ConnectionOptions): Promise<string> =>
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port, ca: read(pki.ca), ALPNProtocols: ['http/1.1'], ...opts }, () => {
            const suite = s.getCipher().standardName;
            s.destroy();
            resolve(suite);
          });
          s.on('error', reject);
        });
      expect(await handshake({ maxVersion: 'TLSv1.2' })).toBe('TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
      await expect(handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).rejects.toThrow();
      expect(await handshake({ minVersion: 'TLSv1.3' })).toMatch(/^TLS_(AES|CHACHA20)/);
    } finally {
      await l.close();
      server.forceShutdown();
    }
  });

  describe('auto TLS', () => {
    let dir: string;
    const cleanups: Array<() => unknown> = [];
    beforeAll(() => {
      dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'listener-autotls-')), 'fixtures', 'client');
    });
    afterAll(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
      rmSync(path.dirname(path.dirname(dir)), { recursive: true, force: true });
    });

    it('self-signs a certificate for the listen hosts, keeps it across restarts, and serves with it', async () => {
      const info = { certFile: '', keyFile: '', clientCertAuth: true, autoTls: true };
      const ctx = await loadTls(info, dir, ['127.0.0.1', 'localhost']);
      expect(ctx.selfSigned).toBe(true);
      expect(ctx.clientCertAuth).toBe(false);
      expect(ctx.client.rejectUnauthorized).toBe(false);
      expect(ctx.certFile).toBe(path.join(dir, 'cert.pem'));
      const text = await run('openssl', ['x509', '-in', ctx.certFile, '-noout', '-text']);
      expect(text.stdout).toContain('IP Address:127.0.0.1');
      expect(text.stdout).toContain('DNS:localhost');
      expect(text.stdout).toMatch(/Subject: O ?= ?etcd/);
      expect(text.stdout).toContain('CA:FALSE');
      const first = readFileSync(ctx.certFile);
      expect((await loadTls(info, dir, ['127.0.0.1'])).certFile).toBe(ctx.certFile);
      expect(readFileSync(ctx.certFile).equals(first)).toBe(true);

      const server = new GrpcServer({ maxRequestBytes: 1024 * 1024 });
      addRangeService(server);
      const { logger } = captureLogger();
      const l = await serveClient(new URL('https://127.0.0.1:0'), ctx, server, health, logger);
      const c = new KVClient(new URL(l.url).host, grpc.credentials.createSsl(first));
      cleanups.push(async () => {
        c.close();
        await l.close();
        server.forceShutdown();
      });
      expect((await range(c, 'auto')).kvs[0]!.key.toString()).toBe('auto');
      // No client certificate is asked for: auto TLS cannot verify one.
      expect(await run('curl', ['-sS', '--cacert', ctx.certFile, `${l.url}/health`])).toMatchObject({ code: 0, stdout: '{"health":"true"}' });
    });
  });
});
