// The gRPC server's HTTP/2 connections through the real listener: stock etcdctl (grpc-go)
// dialled with IP:PORT and with URL endpoints, whose per-endpoint connections send
// `:authority: http://IP:PORT` (node:http2 refused those, and needed a shim that mended
// them; the server's own HPACK decoding takes any authority, as Go's does), grpc-js, a raw
// client, and TLS layered on a stream.

import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { GrpcServer, serveClient, type Listener } from '../../src/server/listener/index.js';
import { loadTls } from '../../src/server/tls.js';
import { addRangeService, captureLogger, frame, KVClient, makePki, range, read, type TestPki } from './helpers.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = 0x4;
const PING = 0x6;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('etcdctl', args, { timeout: 30_000, env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A listener with KV.Range on 127.0.0.1. */
async function start(secure: boolean): Promise<Listener> {
  const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
  addRangeService(server);
  const ctx = secure
    ? await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/nonexistent', ['127.0.0.1'])
    : undefined;
  const listener = await serveClient(new URL(secure ? 'https://127.0.0.1:0' : 'http://127.0.0.1:0'), ctx, server, (_req, res) => res.end(), captureLogger().logger);
  cleanups.push(async () => {
    await listener.close();
    server.forceShutdown();
  });
  return listener;
}

describe.each([
  ['plain', false],
  ['TLS', true],
])('a gRPC connection (%s)', (_kind, secure) => {
  const tlsArgs = secure ? ['--cacert', ''] : [];
  const ctl = (endpoint: string, args: string[]) => {
    if (secure) tlsArgs[1] = pki.ca;
    return run([`--endpoints=${endpoint}`, ...tlsArgs, '--command-timeout=10s', ...args]);
  };

  it('from stock etcdctl dialled with IP:PORT or with a URL is served', async () => {
    const listener = await start(secure);
    for (const endpoint of [new URL(listener.url).host, listener.url]) {
      const out = await ctl(endpoint, ['get', 'foo']);
      expect(out.stderr).toBe('');
      expect(out.stdout).toBe('foo\nbar\n');
    }
  });

  it('from stock etcdctl\'s per-endpoint dial of a URL (endpoint status, :authority with its scheme) reaches the server', async () => {
    const listener = await start(secure);
    const out = await ctl(listener.url, ['endpoint', 'status']);
    // This server has no Maintenance service: the call reached it.
    expect(out.stderr).toContain('unknown service etcdserverpb.Maintenance');
    expect(out.stderr).not.toContain('PROTOCOL_ERROR');
  });
});

describe('a gRPC connection from grpc-js', () => {
  it('serves many calls, its first request sent before it acknowledged the server SETTINGS', async () => {
    const listener = await start(false);
    const client = new KVClient(new URL(listener.url).host, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    for (let i = 0; i < 50; i++) expect((await range(client, `k${i}`)).kvs[0]!.value.toString()).toBe('bar');
  });
});

/** A raw HTTP/2 client: writes what it is told, collects the frame types and flags it gets. */
function rawClient(port: number): { socket: net.Socket; frames: Array<[number, number]>; until: (n: number, type: number, flags: number) => Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const frames: Array<[number, number]> = [];
  let inbound = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    inbound = Buffer.concat([inbound, d]);
    while (inbound.length >= 9 && inbound.length >= 9 + inbound.readUIntBE(0, 3)) {
      frames.push([inbound[3]!, inbound[4]!]);
      inbound = inbound.subarray(9 + inbound.readUIntBE(0, 3));
    }
    for (const w of waiters.splice(0)) w();
  });
  cleanups.push(() => socket.destroy());
  /** Waits until `n` frames of this type and flags have come. */
  const until = async (n: number, type: number, flags: number): Promise<void> => {
    while (frames.filter(([t, f]) => t === type && f === flags).length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { socket, frames, until };
}

describe('before its first request, a raw HTTP/2 connection', () => {
  it('gets the server SETTINGS, an ACK of its own and an ACK of its PING at once', async () => {
    const listener = await start(false);
    const c = rawClient(Number(new URL(listener.url).port));
    c.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(PING, 0, 0, Buffer.from('pingpong'))]));
    await c.until(1, PING, 1);
    expect(c.frames.filter(([t]) => t === SETTINGS)).toEqual([[SETTINGS, 0], [SETTINGS, 1]]);
  });
});

/**
 * A server-side connection whose writes reach the client at once but report completion
 * late: a busy machine's event loop, made deterministic (fault injection behind the
 * socket's own stream interface).
 */
class LateWriteAcks extends Duplex {
  constructor(private readonly socket: net.Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.socket.write(chunk);
    setTimeout(done, 200);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}

describe('a TLS connection layered on a stream (a port serving http:// and https://)', () => {
  it('serves, its writes completing late', async () => {
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    addRangeService(server);
    const injector = server.createConnectionInjector();
    const ctx = await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/nonexistent', ['127.0.0.1']);
    // TLS over a stream, as the listener layers it for a port serving http:// and https://
    const tlsServer = tls.createServer({ ...ctx.server, ALPNProtocols: ['h2'] }, (secure) => {
      secure.on('error', () => undefined);
      injector.injectConnection(secure, { handshakeTimeoutMs: 10_000 });
    });
    const raw = net.createServer((socket) => tlsServer.emit('connection', new LateWriteAcks(socket)));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      raw.close();
      injector.destroy();
      server.forceShutdown();
    });
    const port = (raw.address() as net.AddressInfo).port;
    const client = new KVClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(read(pki.ca)));
    cleanups.push(() => client.close());
    for (let i = 0; i < 5; i++) expect((await range(client, `k${i}`)).kvs[0]!.value.toString()).toBe('bar');
  });
});
