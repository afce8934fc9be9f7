// The member's gRPC server (src/server/grpc) on its own, fed by a plain TCP listener and
// driven by grpc-js clients and a raw HTTP/2 client: unary and streaming calls, the
// statuses clients see for what the server refuses, deadlines and cancellation.

import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerCall } from '../../src/server/grpc/call.js';
import { GrpcServer } from '../../src/server/grpc/server.js';
import { serviceDefinition } from '../../src/server/pb.js';

const loaded = grpc.loadPackageDefinition(
  protoLoader.loadSync('etcdserverpb/rpc.proto', { includeDirs: ['proto'], keepCase: true, longs: String, defaults: true }),
) as unknown as { etcdserverpb: Record<'KV' | 'Watch' | 'Maintenance' | 'Lease', grpc.ServiceClientConstructor> };
const { KV, Watch, Maintenance, Lease } = loaded.etcdserverpb;

type Callback = (err: unknown, value?: unknown) => void;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A GrpcServer behind a TCP listener on 127.0.0.1; returns its address. */
async function serve(setup: (s: GrpcServer) => void, maxRequestBytes = 1024): Promise<string> {
  const server = new GrpcServer({ maxRequestBytes });
  setup(server);
  const injector = server.createConnectionInjector();
  const tcp = net.createServer((socket) => injector.injectConnection(socket));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        tcp.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(tcp.address() as net.AddressInfo).port}`;
}

function client<T extends grpc.Client>(ctor: grpc.ServiceClientConstructor, address: string, options: grpc.ChannelOptions = {}): T {
  const c = new ctor(address, grpc.credentials.createInsecure(), options) as T;
  cleanups.push(() => c.close());
  return c;
}

function unary(c: grpc.Client, method: string, req: object, opts: { metadata?: grpc.Metadata; deadline?: number } = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    (c as unknown as Record<string, Function>)[method](req, opts.metadata ?? new grpc.Metadata(), { deadline: opts.deadline ?? Date.now() + 5000 }, (err: Error | null, res: unknown) =>
      err ? reject(err) : resolve(res),
    );
  });
}

const rangeReply = (key: Buffer) => ({ header: { revision: 7 }, kvs: [{ key, value: Buffer.from('bar') }], count: 1 });

describe('GrpcServer', () => {
  it('answers a unary call, with the metadata and peer address the handler sees', async () => {
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.KV'), {
        Range(call: ServerCall, cb: Callback) {
          const req = call.request as { key: Buffer };
          const bin = call.metadata.get('x-trace-bin')[0] as Buffer;
          cb(null, {
            ...rangeReply(req.key),
            count: call.metadata.get('hasleader')[0] === 'true' ? 2 : 1,
            kvs: [
              { key: req.key, value: Buffer.from(call.getPeer()) },
              { key: Buffer.from('bin'), value: bin },
            ],
          });
        },
      }),
    );
    const c = client(KV, address);
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    md.set('x-trace-bin', Buffer.from([0, 1, 0xfe, 0xff]));
    const r = await unary(c, 'Range', { key: Buffer.from('foo') }, { metadata: md });
    expect(r.count).toBe('2');
    expect(r.kvs[0].key.toString()).toBe('foo');
    expect(r.kvs[0].value.toString()).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.kvs[1].value).toEqual(Buffer.from([0, 1, 0xfe, 0xff]));
    expect(r.header.revision).toBe('7');
  });

  it('refuses unknown services and methods with grpc-go\'s words', async () => {
    const address = await serve((s) => s.addService(serviceDefinition('etcdserverpb.KV'), { Range: (_c: ServerCall, cb: Callback) => cb(null, {}) }));
    // Put is in the KV definition but has no handler; Maintenance is not served at all
    await expect(unary(client(KV, address), 'Put', { key: Buffer.from('k') })).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: 'unknown method Put for service etcdserverpb.KV',
    });
    await expect(unary(client(Maintenance, address), 'Status', {})).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: 'unknown service etcdserverpb.Maintenance',
    });
  });

  it('refuses an over-large request before reading it, and serves the next call', async () => {
    let calls = 0;
    const address = await serve(
      (s) =>
        s.addService(serviceDefinition('etcdserverpb.KV'), {
          Range(call: ServerCall, cb: Callback) {
            calls++;
            cb(null, rangeReply((call.request as { key: Buffer }).key));
          },
        }),
      1000,
    );
    const c = client(KV, address);
    const limit = 1000 + 512 * 1024;
    const key = Buffer.alloc(limit + 10, 0x61);
    await expect(unary(c, 'Range', { key })).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `grpc: received message larger than max (${key.length + 4} vs. ${limit})`,
    });
    expect(calls).toBe(0);
    await expect(unary(c, 'Range', { key: Buffer.from('ok') })).resolves.toMatchObject({ count: '1' });
  });

  it('turns thrown and returned errors into statuses, non-ASCII text intact', async () => {
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.KV'), {
        Range(call: ServerCall, cb: Callback) {
          const key = (call.request as { key: Buffer }).key.toString();
          if (key === 'throw') throw new Error('handler broke: ünïcode % sign');
          cb({ code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: not leader' });
        },
      }),
    );
    const c = client(KV, address);
    await expect(unary(c, 'Range', { key: Buffer.from('throw') })).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: 'handler broke: ünïcode % sign',
    });
    await expect(unary(c, 'Range', { key: Buffer.from('x') })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: not leader',
    });
  });

  it('reads gzip-compressed requests', async () => {
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.KV'), {
        Range: (call: ServerCall, cb: Callback) => cb(null, rangeReply((call.request as { key: Buffer }).key)),
      }),
    );
    const c = client(KV, address, { 'grpc.default_compression_algorithm': 2 });
    const key = Buffer.alloc(600, 0x62);
    const r = await unary(c, 'Range', { key });
    expect(r.kvs[0].key.equals(key)).toBe(true);
  });

  it('streams a large response under flow control, in order, then ends OK', async () => {
    const piece = 64 * 1024;
    const pieces = 300; // ~19 MB: far past every HTTP/2 window
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.Maintenance'), {
        Snapshot(call: ServerCall) {
          let i = 0;
          const pump = (): void => {
            while (i < pieces) {
              const blob = Buffer.alloc(piece, i % 256);
              i++;
              if (!call.write({ remaining_bytes: (pieces - i) * piece, blob })) {
                call.once('drain', pump);
                return;
              }
            }
            call.end();
          };
          pump();
        },
      }),
    );
    const c = client(Maintenance, address);
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = (c as unknown as Record<string, Function>).Snapshot({}) as grpc.ClientReadableStream<{ blob: Buffer }>;
      stream.on('data', (m) => got.push(m.blob.length === piece && m.blob.every((b) => b === m.blob[0]) ? m.blob[0]! : -1));
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    expect(got).toEqual(Array.from({ length: pieces }, (_, i) => i % 256));
  });

  it('carries a bidi stream both ways; emit("error") ends it with that status', async () => {
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.Lease'), {
        LeaseKeepAlive(call: ServerCall) {
          call.on('data', (req: { ID: { toString(): string } }) => {
            const id = Number(req.ID.toString());
            if (id === 0) call.emit('error', { code: grpc.status.NOT_FOUND, details: 'etcdserver: requested lease not found' });
            else call.write({ ID: id, TTL: id * 10 });
          });
          call.on('end', () => call.end());
        },
      }),
    );
    const c = client(Lease, address);
    const stream = (c as unknown as Record<string, Function>).LeaseKeepAlive() as grpc.ClientDuplexStream<object, { ID: string; TTL: string }>;
    const replies: string[] = [];
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', (r) => replies.push(`${r.ID}:${r.TTL}`));
    stream.write({ ID: 1 });
    stream.write({ ID: 2 });
    await expect.poll(() => replies).toEqual(['1:10', '2:20']);
    stream.write({ ID: 0 });
    expect(await ended).toMatchObject({ code: grpc.status.NOT_FOUND, details: 'etcdserver: requested lease not found' });
  });

  it('tells a stream handler when the client cancels, and when the deadline passes', async () => {
    const cancelled: string[] = [];
    const address = await serve((s) =>
      s.addService(serviceDefinition('etcdserverpb.Watch'), {
        Watch(call: ServerCall) {
          call.on('data', (req: { create_request?: { key: Buffer } }) => {
            const key = req.create_request?.key.toString() ?? '?';
            call.write({ watch_id: 1, created: true });
            call.once('cancelled', () => cancelled.push(key));
          });
        },
      }),
    );
    const c = client(Watch, address);
    const open = (key: string, deadline?: number) => {
      const stream = (c as unknown as Record<string, Function>).Watch(new grpc.Metadata(), deadline ? { deadline } : {}) as grpc.ClientDuplexStream<object, object>;
      const created = new Promise((resolve) => stream.once('data', resolve));
      const failed = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
      stream.write({ create_request: { key: Buffer.from(key) } });
      return { stream, created, failed };
    };
    const a = open('cancel-me');
    await a.created;
    a.stream.cancel();
    expect((await a.failed).code).toBe(grpc.status.CANCELLED);
    await expect.poll(() => cancelled).toEqual(['cancel-me']);

    const b = open('deadline', Date.now() + 300);
    await b.created;
    expect((await b.failed).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => cancelled).toEqual(['cancel-me', 'deadline']);
  });

  it('answers a request that is not gRPC with HTTP 415', async () => {
    const address = await serve(() => undefined);
    const session = http2.connect(`http://${address}`);
    cleanups.push(() => session.close());
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/json' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end('{}');
    });
    expect(status).toBe(415);
  });
});
