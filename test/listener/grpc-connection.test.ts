// Which stream the gRPC server's HTTP/2 session is given for each kind of client: the bare
// socket (net.Socket, or TLSSocket under TLS) once the first request is seen to need no
// mending, the authority shim otherwise. Stock etcdctl (grpc-go, which waits for the server's
// SETTINGS), grpc-js (nghttp2, which sends its first request before acknowledging them) and
// raw clients against the real listener; what each was handed is read from the real injector.

import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AuthorityFixingConnection } from '../../src/server/listener/authority.js';
import { serveGrpcConnection } from '../../src/server/listener/grpc-connection.js';
import { GrpcServer, serveClient, type Listener } from '../../src/server/listener/index.js';
import { loadTls } from '../../src/server/tls.js';
import { addRangeService, captureLogger, frame, KVClient, makePki, range, read, type TestPki } from './helpers.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = 0x4;
const PING = 0x6;

type Handed = 'bare' | 'shim';

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

/** A listener with KV.Range; `handed` lists what the gRPC server got for each connection, in order. */
async function start(secure: boolean): Promise<{ listener: Listener; handed: Handed[] }> {
  const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
  addRangeService(server);
  const handed: Handed[] = [];
  const createInjector = server.createConnectionInjector.bind(server);
  server.createConnectionInjector = () => {
    const injector = createInjector();
    return {
      injectConnection: (socket: Duplex) => {
        const bare = socket instanceof (secure ? tls.TLSSocket : net.Socket);
        handed.push(bare ? 'bare' : socket instanceof AuthorityFixingConnection ? 'shim' : (`${socket.constructor.name}` as Handed));
        return injector.injectConnection(socket);
      },
      destroy: () => injector.destroy(),
    };
  };
  const ctx = secure
    ? await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/nonexistent', ['127.0.0.1'])
    : undefined;
  const listener = await serveClient(new URL(secure ? 'https://127.0.0.1:0' : 'http://127.0.0.1:0'), ctx, server, (_req, res) => res.end(), captureLogger().logger);
  cleanups.push(async () => {
    await listener.close();
    server.forceShutdown();
  });
  return { listener, handed };
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

  it('from stock etcdctl dialled with IP:PORT, or with a URL through clientv3\'s balancer, goes to the gRPC server as the bare socket', async () => {
    const { listener, handed } = await start(secure);
    for (const endpoint of [new URL(listener.url).host, listener.url]) {
      const out = await ctl(endpoint, ['get', 'foo']);
      expect(out.stderr).toBe('');
      expect(out.stdout).toBe('foo\nbar\n');
    }
    // clientv3 cuts the scheme from the endpoints its balancer dials: no authority to mend.
    expect(handed).toEqual(['bare', 'bare']);
  });

  // Under TLS grpc-go sends the certificate's server name as :authority: nothing to mend.
  it(`from stock etcdctl's per-endpoint dial of a URL (endpoint status) goes ${secure ? 'bare' : 'through the shim, which mends its authority'}`, async () => {
    const { listener, handed } = await start(secure);
    const out = await ctl(listener.url, ['endpoint', 'status']);
    // This server has no Maintenance service: the call reached it (nghttp2 would have reset
    // a stream whose authority still had its scheme).
    expect(out.stderr).toContain('unknown service etcdserverpb.Maintenance');
    expect(out.stderr).not.toContain('PROTOCOL_ERROR');
    // etcdctl also dials its balancer connection, which may sit idle past SESSION_WAIT_MS
    // and so go through the shim too.
    expect(handed).toContain(secure ? 'bare' : 'shim');
  });
});

describe('a gRPC connection from grpc-js', () => {
  it('that sends its first request before acknowledging the listener SETTINGS goes bare, and serves many calls', async () => {
    const { listener, handed } = await start(false);
    const client = new KVClient(new URL(listener.url).host, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    for (let i = 0; i < 50; i++) expect((await range(client, `k${i}`)).kvs[0]!.value.toString()).toBe('bar');
    expect(handed).toEqual(['bare']);
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
  it('gets an empty SETTINGS from the listener at once, and its own SETTINGS acknowledged by the session after the wait', async () => {
    const { listener, handed } = await start(false);
    const c = rawClient(Number(new URL(listener.url).port));
    c.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0))]));
    await c.until(1, SETTINGS, 0);
    expect(c.frames).toEqual([[SETTINGS, 0]]);
    expect(handed).toEqual([]);
    // The session's own SETTINGS and the ACK, once the shim has taken the connection over
    // (SESSION_WAIT_MS after the connection came).
    await c.until(1, SETTINGS, 1);
    expect(c.frames.filter(([t]) => t === SETTINGS)).toEqual([[SETTINGS, 0], [SETTINGS, 0], [SETTINGS, 1]]);
    expect(handed).toEqual(['shim']);
  });

  it('that sends a PING goes through the shim at once, where the session answers it', async () => {
    const { listener, handed } = await start(false);
    const c = rawClient(Number(new URL(listener.url).port));
    c.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(PING, 0, 0, Buffer.from('pingpong'))]));
    await c.until(1, PING, 1);
    await c.until(1, SETTINGS, 1);
    expect(handed).toEqual(['shim']);
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
  // The session writes natively; had it been handed the socket while the listener's
  // SETTINGS write was still in flight, Node would abort the process (TLSWrap `!current_write_`).
  it('is handed to the session only after the listener SETTINGS write completed, and serves', async () => {
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    addRangeService(server);
    const injector = server.createConnectionInjector();
    const ctx = await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/nonexistent', ['127.0.0.1']);
    // TLS over a stream, as the listener layers it for a port serving http:// and https://
    const tlsServer = tls.createServer({ ...ctx.server, ALPNProtocols: ['h2'] }, (secure) => {
      secure.on('error', () => undefined);
      serveGrpcConnection(injector, secure, { handshakeTimeoutMs: 10_000 });
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
