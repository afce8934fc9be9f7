// The gateway's bridge to gRPC handlers, with stand-in handlers whose behaviour the test
// controls: metadata from headers, Unimplemented, stream errors before and after
// messages (shapes as etcd 3.4.23 sent them for a learner's refused streams), the request
// pump of bidi streams, back-pressure and cancellation of server streams, body limits.

import http from 'node:http';
import type net from 'node:net';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CallMetadata } from '../../src/server/grpc/call.js';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createGateway } from '../../src/server/gateway/index.js';
import { createHttpHandler } from '../../src/server/http/index.js';
import { Metrics } from '../../src/server/metrics.js';
import { StreamingRequest, b64, request } from './member.js';

type Callback = (err: unknown, value?: unknown) => void;
interface StreamCall {
  request?: unknown;
  metadata: CallMetadata;
  cancelled: boolean;
  write(v: object): boolean;
  end(): void;
  emit(event: string, ...args: unknown[]): boolean;
  on(event: string, fn: (...args: unknown[]) => void): unknown;
  once(event: string, fn: (...args: unknown[]) => void): unknown;
}

/** What the stand-in handlers do; each test sets what it needs. */
const behave: {
  watch?: (call: StreamCall) => void;
  snapshot?: (call: StreamCall) => void;
  keepAlive?: (call: StreamCall) => void;
} = {};

const services: Record<string, UntypedServiceImplementation> = {
  'etcdserverpb.KV': {
    // Answers with the request's metadata in the value, so headers can be checked.
    Range: (call: { request: { key: Buffer }; metadata: CallMetadata }, cb: Callback) => {
      const md = Object.fromEntries(['token', 'hasleader', 'bad!key'].map((k) => [k, call.metadata.get(k)]));
      cb(null, { kvs: [{ key: call.request.key, value: Buffer.from(JSON.stringify(md)) }], count: 1 });
    },
  },
  'etcdserverpb.Watch': {
    Watch: (call: StreamCall) => behave.watch!(call),
  },
  'etcdserverpb.Maintenance': {
    Snapshot: (call: StreamCall) => behave.snapshot!(call),
  },
  'etcdserverpb.Lease': {
    LeaseKeepAlive: (call: StreamCall) => behave.keepAlive!(call),
  },
};

let server: http.Server;
let url: string;

beforeAll(async () => {
  const routes = createGateway(services, { logger: pino({ level: 'silent' }), maxRequestBytes: 1024 });
  server = http.createServer(
    createHttpHandler({
      health: async () => ({ ok: true, reason: '' }),
      version: () => ({ etcdserver: '3.4.23', etcdcluster: '3.4.0' }),
      metrics: new Metrics(),
      extra: routes,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  delete behave.watch;
  delete behave.snapshot;
  delete behave.keepAlive;
});

/** An echo keepalive that answers each request later (as the lessor does), ending on 'end'. */
function delayedEcho(call: StreamCall): void {
  call.on('data', (req) => {
    const { ID } = req as { ID: { toString(): string } };
    setImmediate(() => call.write({ ID, TTL: 5 }));
  });
  call.on('end', () => call.end());
}

it('passes Authorization as the token and Grpc-Metadata-* headers as metadata', async () => {
  const r = await request(url, '/v3/kv/range', JSON.stringify({ key: b64('k') }), {
    headers: { Authorization: 'tok.123', 'Grpc-Metadata-Hasleader': 'true', 'Grpc-Metadata-Bad!Key': 'x' },
  });
  expect(r.status).toBe(200);
  const kv = (JSON.parse(r.body) as { kvs: Array<{ value: string }> }).kvs[0]!;
  expect(JSON.parse(Buffer.from(kv.value, 'base64').toString())).toEqual({ token: ['tok.123'], hasleader: ['true'], 'bad!key': [] });
});

it('an RPC missing from a served service is Unimplemented with grpc-go\'s words', async () => {
  const r = await request(url, '/v3/kv/put', JSON.stringify({ key: b64('k') }));
  expect(r.status).toBe(501);
  expect(JSON.parse(r.body)).toMatchObject({ code: 12, error: 'unknown method Put for service etcdserverpb.KV' });
});

it('a stream failing before any message: its HTTP status and one error object', async () => {
  behave.keepAlive = (call) => {
    call.on('data', () => call.emit('error', { code: 14, details: 'etcdserver: rpc not supported for learner' }));
  };
  const r = await request(url, '/v3/lease/keepalive', '{"ID":1}');
  expect(r.status).toBe(503);
  expect(r.headers['transfer-encoding']).toBe('chunked');
  expect(r.headers['grpc-metadata-content-type']).toBeUndefined();
  expect(r.body).toBe(
    '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: rpc not supported for learner","http_status":"Service Unavailable"}}',
  );
});

it('a stream failing after messages: 200, the results, then the error object without a newline', async () => {
  behave.keepAlive = (call) => {
    call.on('data', () => {
      call.write({ ID: 1, TTL: 5 });
      call.emit('error', { code: 14, details: 'etcdserver: no leader' });
    });
  };
  const r = await request(url, '/v3/lease/keepalive', '{"ID":1}');
  expect(r.status).toBe(200);
  expect(r.body).toBe(
    '{"result":{"ID":"1","TTL":"5"}}\n' +
      '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}',
  );
});

it('a bidi stream ends only after every request received was answered', async () => {
  behave.keepAlive = delayedEcho;
  const r = await request(url, '/v3/lease/keepalive', '{"ID":1} {"ID":2}\n{"ID":3}');
  expect(r.body.split('\n')).toEqual([
    '{"result":{"ID":"1","TTL":"5"}}',
    '{"result":{"ID":"2","TTL":"5"}}',
    '{"result":{"ID":"3","TTL":"5"}}',
    '',
  ]);
});

it('a later request that does not decode ends the input; the first one fails the call', async () => {
  behave.keepAlive = delayedEcho;
  const r = await request(url, '/v3/lease/keepalive', '{"ID":"1"}xx{"ID":2}');
  expect(r.body).toBe('{"result":{"ID":"1","TTL":"5"}}\n');
  const bad = await request(url, '/v3/lease/keepalive', '{"ID":"x"}');
  expect(bad.status).toBe(500);
  expect(JSON.parse(bad.body)).toEqual({
    error: "invalid character 'x' looking for beginning of value",
    message: "invalid character 'x' looking for beginning of value",
    code: 2,
  });
});

it('stream requests: one over the gRPC limit fails the stream, a body over the body limit is refused', async () => {
  behave.watch = (call) => call.on('data', () => call.write({ created: true }));
  // maxRequestBytes is 1024 here, so gRPC's limit is 1024 + 512 KiB.
  const key = Buffer.alloc(600 * 1024, 1).toString('base64');
  const r = await request(url, '/v3/watch', `{"create_request":{"key":"${key}"}}`);
  expect(r.status).toBe(429);
  const encoded = 600 * 1024 + 4 + 4; // the key's tag and 3-byte length, then create_request's
  expect(JSON.parse(r.body)).toEqual({
    error: {
      grpc_code: 8,
      http_code: 429,
      message: `grpc: received message larger than max (${encoded} vs. ${1024 + 512 * 1024})`,
      http_status: 'Too Many Requests',
    },
  });

  const limit = 2 * (1024 + 512 * 1024);
  const huge = await request(url, '/v3/watch', `{"create_request":{"key":"${'A'.repeat(limit)}"}}`);
  expect(huge.status).toBe(429);
  expect(JSON.parse(huge.body)).toMatchObject({ code: 8, error: `gateway: request body larger than ${limit} bytes` });
});

it('a server stream waits for room, and a client going away releases it', async () => {
  let sent = 0;
  let finished: () => void;
  const done = new Promise<void>((r) => (finished = r));
  let cancelled = false;
  behave.snapshot = (call) => {
    call.on('cancelled', () => (cancelled = true));
    void (async () => {
      const blob = Buffer.alloc(256 * 1024, 1);
      while (!cancelled) {
        sent++;
        if (!call.write({ remaining_bytes: 1, blob })) await new Promise((r) => call.once('drain', r));
      }
      finished();
    })();
  };
  const s = new StreamingRequest(url, '/v3/maintenance/snapshot');
  s.endBody('{}');
  expect((await s.status).status).toBe(200);
  const first = await s.result();
  expect(first['remaining_bytes']).toBe('1');
  // The client reads nothing more: the handler soon waits for room instead of buffering.
  while (sent < 3) await new Promise((r) => setTimeout(r, 5));
  s.close();
  await done;
  expect(cancelled).toBe(true);
});

it('a unary body past the body limit is refused without reading the rest', async () => {
  const limit = 2 * (1024 + 512 * 1024);
  const r = await request(url, '/v3/kv/range', `{"key":"${'A'.repeat(limit)}"}`);
  expect(r.status).toBe(429);
  expect(r.headers['connection']).toBe('close');
  expect(JSON.parse(r.body)).toMatchObject({ code: 8, error: `gateway: request body larger than ${limit} bytes` });
});
