import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { GrpcServer, serveClient, sniffProtocol, HTTP2_PREFACE, type Listener } from '../../src/server/listener/index.js';
import { addRangeService, captureLogger, KVClient, range } from './helpers.js';

const hello: http.RequestListener = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello ${req.url}`);
};

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function host(url: string): string {
  return new URL(url).host;
}

/** Writes bytes, then collects whatever the server answers until it closes the connection. */
function rawExchange(url: string, bytes: Buffer | null): Promise<string> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const socket = net.connect(Number(u.port), u.hostname, () => {
      if (bytes !== null) socket.write(bytes);
    });
    let answer = '';
    socket.on('data', (c) => (answer += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
  });
}

describe('sniffProtocol', () => {
  it('waits on a strict prefix of the HTTP/2 preface and decides on the first difference', () => {
    expect(sniffProtocol(Buffer.alloc(0))).toBe('undecided');
    expect(sniffProtocol(HTTP2_PREFACE.subarray(0, 10))).toBe('undecided');
    expect(sniffProtocol(HTTP2_PREFACE)).toBe('h2');
    expect(sniffProtocol(Buffer.concat([HTTP2_PREFACE, Buffer.from([0, 0, 0, 4])]))).toBe('h2');
    expect(sniffProtocol(Buffer.from('GET /health HTTP/1.1\r\n'))).toBe('http1');
    expect(sniffProtocol(Buffer.from('PRX'))).toBe('http1');
  });
});

describe('serveClient over plain TCP', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(urls: string[], opts = {}): Promise<{ listeners: Listener[]; server: GrpcServer; lines: Array<Record<string, unknown>> }> {
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    addRangeService(server);
    const { logger, lines } = captureLogger();
    const listeners: Listener[] = [];
    for (const u of urls) listeners.push(await serveClient(new URL(u), undefined, server, hello, logger, opts));
    cleanups.push(async () => {
      for (const l of listeners) await l.close();
      server.forceShutdown();
    });
    return { listeners, server, lines };
  }

  function client(url: string): grpc.Client {
    const c = new KVClient(host(url), grpc.credentials.createInsecure());
    cleanups.push(() => c.close());
    return c;
  }

  it('serves gRPC and HTTP/1.1 on the same port and reports the bound port', async () => {
    const { listeners } = await start(['http://127.0.0.1:0']);
    const url = listeners[0]!.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toBe('http://127.0.0.1:0');
    const res = await range(client(url), 'foo');
    expect(res.kvs[0]!.key.toString()).toBe('foo');
    expect(res.kvs[0]!.value.toString()).toBe('bar');
    expect(await httpGet(`${url}/health`)).toEqual({ status: 200, body: 'hello /health' });
  });

  it('shares one GrpcServer between several URLs', async () => {
    const { listeners } = await start(['http://127.0.0.1:0', 'http://localhost:0']);
    const [a, b] = listeners.map((l) => l.url);
    expect(new URL(a!).port).not.toBe(new URL(b!).port);
    expect((await range(client(a!), 'x')).kvs[0]!.key.toString()).toBe('x');
    expect((await range(client(b!), 'y')).kvs[0]!.key.toString()).toBe('y');
    expect((await httpGet(`${b}/version`)).body).toBe('hello /version');
  });

  it('answers garbage with 400 and keeps serving', async () => {
    const { listeners } = await start(['http://127.0.0.1:0']);
    const url = listeners[0]!.url;
    const answer = await rawExchange(url, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0xff]));
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect((await range(client(url), 'after')).kvs[0]!.key.toString()).toBe('after');
  });

  it('survives an HTTP/2 preface followed by garbage frames', async () => {
    const { listeners } = await start(['http://127.0.0.1:0']);
    const url = listeners[0]!.url;
    await rawExchange(url, Buffer.concat([HTTP2_PREFACE, Buffer.alloc(64, 0xff)]));
    expect((await range(client(url), 'after')).kvs[0]!.key.toString()).toBe('after');
    expect((await httpGet(`${url}/x`)).status).toBe(200);
  });

  it('drops a connection that sends nothing, and one that stops inside the preface', async () => {
    const { listeners } = await start(['http://127.0.0.1:0'], { handshakeTimeoutMs: 200 });
    const url = listeners[0]!.url;
    expect(await rawExchange(url, null)).toBe('');
    expect(await rawExchange(url, HTTP2_PREFACE.subarray(0, 5))).toBe('');
    expect((await range(client(url), 'still')).kvs[0]!.key.toString()).toBe('still');
  });

  it('answers a client that never finishes its request header with 408', async () => {
    const { listeners } = await start(['http://127.0.0.1:0'], { handshakeTimeoutMs: 300 });
    const url = listeners[0]!.url;
    const answer = await rawExchange(url, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\n'));
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect((await httpGet(`${url}/ok`)).status).toBe(200);
  });

  it('reports an occupied port with Go-style wording', async () => {
    const { listeners } = await start(['http://127.0.0.1:0']);
    const port = new URL(listeners[0]!.url).port;
    const { logger } = captureLogger();
    const server = new GrpcServer({ maxRequestBytes: 1024 });
    cleanups.push(() => server.forceShutdown());
    await expect(serveClient(new URL(`http://127.0.0.1:${port}`), undefined, server, hello, logger)).rejects.toThrow(
      `listen tcp 127.0.0.1:${port}: bind: address already in use`,
    );
  });

  it('refuses URLs it cannot bind', async () => {
    const { logger } = captureLogger();
    const server = new GrpcServer({ maxRequestBytes: 1024 });
    cleanups.push(() => server.forceShutdown());
    await expect(serveClient(new URL('ftp://foo:1'), undefined, server, hello, logger)).rejects.toThrow(/unsupported scheme "ftp"/);
    await expect(serveClient(new URL('unixs://s:1'), undefined, server, hello, logger)).rejects.toThrow(/is unixs but no TLS certificate/);
    await expect(serveClient(new URL('http://127.0.0.1'), undefined, server, hello, logger)).rejects.toThrow(/has no port/);
    await expect(serveClient(new URL('https://127.0.0.1:0'), undefined, server, hello, logger)).rejects.toThrow(/no TLS certificate/);
  });

  it('close() ends open connections and frees the port', async () => {
    const { listeners } = await start(['http://127.0.0.1:0']);
    const url = listeners[0]!.url;
    const c = client(url);
    await range(c, 'warm');
    const idle = new Promise<void>((resolve) => {
      const s = net.connect(Number(new URL(url).port), '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    await listeners[0]!.close();
    await idle;
    // The port is free again.
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(Number(new URL(url).port), '127.0.0.1', () => resolve());
    });
    await new Promise((r) => again.close(r));
  });

  it('caps received messages at maxRequestBytes + 512 KiB', async () => {
    const server = new GrpcServer({ maxRequestBytes: 1000 });
    addRangeService(server);
    const { logger } = captureLogger();
    const l = await serveClient(new URL('http://127.0.0.1:0'), undefined, server, hello, logger);
    cleanups.push(async () => {
      await l.close();
      server.forceShutdown();
    });
    const c = client(l.url);
    expect((await range(c, 'k'.repeat(1000 + 512 * 1024 - 100))).kvs.length).toBe(1);
    await expect(range(c, 'k'.repeat(1000 + 512 * 1024 + 10))).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });
});
