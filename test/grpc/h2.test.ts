// The gRPC server's own HTTP/2 layer (src/server/grpc/h2): HPACK against RFC 7541's
// examples, and a GrpcServer behind a TCP listener on 127.0.0.1 driven by a raw HTTP/2
// client — hostile input closes the connection with a GOAWAY carrying RFC 9113's code,
// a response stream waits for the client's window and tells its writer when it drains,
// streams past --max-concurrent-streams are refused, and keepalive probes idle clients.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerCall } from '../../src/server/grpc/call.js';
import { type ConnectionOptions, H2Connection, MAX_BYTES_BEFORE_FIRST_REQUEST } from '../../src/server/grpc/h2/connection.js';
import { ErrorCode, Flag, FrameType, Setting, settingsFrame } from '../../src/server/grpc/h2/frames.js';
import { encodeHeaderBlock, HpackDecoder, HpackError } from '../../src/server/grpc/h2/hpack.js';
import { GrpcServer } from '../../src/server/grpc/server.js';
import { serviceDefinition } from '../../src/server/pb.js';
import { frame } from '../listener/helpers.js';
import { RawH2 } from './raw-h2.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const EMPTY_SETTINGS = frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0));

describe('HpackDecoder', () => {
  // RFC 7541 C.4: three requests on one connection, Huffman-coded literals, dynamic table refs.
  const C4 = [
    { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', fields: [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'] },
    {
      block: '8286 84be 5886 a8eb 1064 9cbf',
      fields: [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
    },
    {
      block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      fields: [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
    },
  ];

  it('decodes RFC 7541 C.4 (Huffman literals, dynamic table) in sequence', () => {
    const d = new HpackDecoder();
    for (const { block, fields } of C4) expect(d.decode(hex(block))).toEqual({ fields, tooLarge: false });
  });

  it('keeps the table in step through a list past its limit, keeping none of the fields past it', () => {
    const d = new HpackDecoder();
    // C.4.1 with a limit below its size: too large, yet www.example.com enters the table...
    expect(d.decode(hex(C4[0]!.block), 100)).toEqual({ fields: [':method', 'GET', ':scheme', 'http'], tooLarge: true });
    // ...so that C.4.2, which refers to it, reads as the client meant
    expect(d.decode(hex(C4[1]!.block)).fields).toEqual(C4[1]!.fields);
  });

  it('reads what encodeHeaderBlock writes, without a table', () => {
    const fields: Array<[string, string]> = [[':status', '200'], ['content-type', 'application/grpc'], ['grpc-message', 'x'.repeat(300)], ['te', 'trailers']];
    expect(new HpackDecoder(0).decode(encodeHeaderBlock(fields)).fields).toEqual(fields.flat());
  });

  it('refuses malformed blocks', () => {
    const bad = [
      'be', // dynamic index with an empty table
      '80', // index 0
      '0085 f2b2 4a87', // Huffman literal cut short
      '0081 00 00', // Huffman '0' padded with zeros, not ones
      '3fe2 1f', // table size update to 4097, above the 4096 advertised
      '82 20', // table size update after a field
      '40ff ffff ffff ff', // integer overflow
    ];
    for (const block of bad) expect(() => new HpackDecoder().decode(hex(block)), block).toThrow(HpackError);
  });
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The handlers' view of the Watch streams they served: what each write returned, and the drains. */
interface WatchLog {
  writes: boolean[];
  drains: number;
  cancelled: number;
}

/**
 * A GrpcServer with KV.Range (answers at once) and Watch (writes 1 KiB responses until a
 * write returns false, then one more after each 'drain') on 127.0.0.1.
 */
async function serve(opts: { maxConcurrentStreams?: number; keepaliveMinTimeMs?: number } = {}): Promise<{ url: string; watch: WatchLog }> {
  const server = new GrpcServer({ maxRequestBytes: 1024, ...opts });
  const watch: WatchLog = { writes: [], drains: 0, cancelled: 0 };
  server.addService(serviceDefinition('etcdserverpb.KV'), {
    Range: (_call: ServerCall, cb: (err: unknown, value?: unknown) => void) => cb(null, { count: 1 }),
  });
  server.addService(serviceDefinition('etcdserverpb.Watch'), {
    Watch(call: ServerCall) {
      const blob = { watch_id: 1, cancel_reason: 'x'.repeat(1024) };
      call.on('cancelled', () => watch.cancelled++);
      call.on('data', () => {
        for (let i = 0; i < 10_000; i++) {
          const ok = call.write(blob);
          watch.writes.push(ok);
          if (!ok) break;
        }
      });
      call.on('drain', () => {
        watch.drains++;
        watch.writes.push(call.write(blob));
      });
    },
  });
  const injector = server.createConnectionInjector();
  const tcp = net.createServer((socket) => injector.injectConnection(socket));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.forceShutdown();
    tcp.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(tcp.address() as net.AddressInfo).port}`, watch };
}

/** Bare HTTP/2 connections (streams answered by nobody) on 127.0.0.1, with `opts` over the defaults. */
async function bareServer(opts: Partial<ConnectionOptions>): Promise<string> {
  const tcp = net.createServer((socket) => {
    new H2Connection(socket, { maxConcurrentStreams: 10, handshakeTimeoutMs: 10_000, onStream: () => undefined, ...opts });
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => tcp.close(() => resolve())));
  return `http://127.0.0.1:${(tcp.address() as net.AddressInfo).port}`;
}

/** A request's HEADERS block for `path`. */
const requestBlock = (path: string, extra: Array<[string, string]> = []): Buffer =>
  encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'http://127.0.0.1:2379'], ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra]);
const RANGE = '/etcdserverpb.KV/Range';
const WATCH = '/etcdserverpb.Watch/Watch';
/** A gRPC message holding an empty request. */
const EMPTY_MESSAGE = Buffer.alloc(5);

/** Opens a raw connection and sends the preface, `settings` and `frames`. */
async function open(url: string, frames: Buffer[] = [], settings = EMPTY_SETTINGS): Promise<RawH2> {
  const c = new RawH2(url);
  cleanups.push(() => c.close());
  await c.write(Buffer.concat([PREFACE, settings, ...frames]));
  return c;
}

/** The call on `stream`: HEADERS then an empty request, half-closed. */
const unaryCall = (stream: number, path = RANGE): Buffer[] => [
  frame(FrameType.HEADERS, Flag.END_HEADERS, stream, requestBlock(path)),
  frame(FrameType.DATA, Flag.END_STREAM, stream, EMPTY_MESSAGE),
];

async function refusedWith(c: RawH2, code: number): Promise<void> {
  await c.closed;
  expect(c.closedByServer).toBe(true);
  expect(c.goawayCode()).toBe(code);
}

/** grpc-status of the trailers (or trailers-only response) on `stream`. */
async function statusOn(c: RawH2, stream: number): Promise<string | undefined> {
  const decoder = new HpackDecoder();
  for (let seen = 0; ; ) {
    await c.frame((f) => f.type === FrameType.HEADERS && f.streamId === stream && (f.flags & Flag.END_STREAM) !== 0);
    // decode every block the server sent, in order (it uses no table, but this is how a client reads them)
    for (const f of c.frames.slice(seen)) {
      if (f.type !== FrameType.HEADERS) continue;
      const { fields } = decoder.decode(f.payload);
      const at = fields.indexOf('grpc-status');
      if (f.streamId === stream && at >= 0) return fields[at + 1];
    }
    seen = c.frames.length;
  }
}

describe('the gRPC server\'s HTTP/2 connection', () => {
  it('serves calls whose :authority is a URL, as grpc-go sends it for a URL endpoint', async () => {
    const { url } = await serve();
    const c = await open(url, [...unaryCall(1), ...unaryCall(3)]);
    expect(await statusOn(c, 1)).toBe('0');
    expect(await statusOn(c, 3)).toBe('0');
    expect(c.closedByServer).toBe(false);
  });

  it('refuses a frame above SETTINGS_MAX_FRAME_SIZE after the first request with FRAME_SIZE_ERROR', async () => {
    const { url } = await serve();
    const c = await open(url, [...unaryCall(1), frame(FrameType.DATA, 0, 1, Buffer.alloc(16385))]);
    await refusedWith(c, ErrorCode.FRAME_SIZE_ERROR);
  });

  it('refuses a CONTINUATION flood past 1 MiB of header block with ENHANCE_YOUR_CALM', async () => {
    const { url } = await serve();
    const c = await open(url, [frame(FrameType.HEADERS, 0, 1, requestBlock(RANGE))]);
    const piece = frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16384, 0x82));
    for (let i = 0; i < 100 && (await c.write(piece)); i++);
    await refusedWith(c, ErrorCode.ENHANCE_YOUR_CALM);
  });

  it('resets a stream whose header list is above 64 KiB, and serves the next on the same connection', async () => {
    const { url } = await serve();
    // 40 distinct 2 KiB values: each is added to the table (evicting the last) and counted
    const big = Array.from({ length: 40 }, (_, i): [string, string] => [`x-big-${i}`, 'v'.repeat(2048)]);
    const block = Buffer.concat([requestBlock(RANGE), ...big.map(([n, v]) => Buffer.concat([Buffer.from([0x40, n.length]), Buffer.from(n), Buffer.from([0x7f, v.length - 127 & 0x7f | 0x80, (v.length - 127) >> 7]), Buffer.from(v)]))]);
    const frames: Buffer[] = [];
    for (let pos = 0; pos < block.length; pos += 16384) {
      const last = pos + 16384 >= block.length;
      frames.push(frame(pos === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, 1, block.subarray(pos, pos + 16384)));
    }
    const c = await open(url, [...frames, ...unaryCall(3)]);
    const rst = await c.frame((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(await statusOn(c, 3)).toBe('0');
  });

  it('refuses HEADERS on a stream it has closed, and a stream ID going back, with STREAM_CLOSED', async () => {
    const { url } = await serve();
    const again = await open(url, unaryCall(1));
    expect(await statusOn(again, 1)).toBe('0');
    await again.write(unaryCall(1)[0]!);
    await refusedWith(again, ErrorCode.STREAM_CLOSED);

    const back = await open(url, [...unaryCall(5), ...unaryCall(3)]);
    await refusedWith(back, ErrorCode.STREAM_CLOSED);
  });

  it('refuses HEADERS on an even stream with PROTOCOL_ERROR', async () => {
    const { url } = await serve();
    await refusedWith(await open(url, unaryCall(2)), ErrorCode.PROTOCOL_ERROR);
  });

  it('refuses a first frame other than SETTINGS with PROTOCOL_ERROR', async () => {
    const { url } = await serve();
    const c = new RawH2(url);
    cleanups.push(() => c.close());
    await c.write(Buffer.concat([PREFACE, frame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    await refusedWith(c, ErrorCode.PROTOCOL_ERROR);
  });

  it('refuses a WINDOW_UPDATE that overflows a window with FLOW_CONTROL_ERROR (connection) or RST_STREAM (stream)', async () => {
    const { url } = await serve();
    const max = Buffer.alloc(4);
    max.writeUInt32BE(2 ** 31 - 1);
    const s = await open(url, [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock(WATCH)), frame(FrameType.WINDOW_UPDATE, 0, 1, max)]);
    const rst = await s.frame((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(ErrorCode.FLOW_CONTROL_ERROR);
    await s.write(frame(FrameType.WINDOW_UPDATE, 0, 0, max));
    await refusedWith(s, ErrorCode.FLOW_CONTROL_ERROR);
  });

  it('refuses a rapid reset (HEADERS then RST_STREAM, over and over) with ENHANCE_YOUR_CALM', async () => {
    const { url, watch } = await serve();
    const c = await open(url);
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(ErrorCode.CANCEL);
    const batch: Buffer[] = [];
    for (let id = 1; id < 2 * 1200; id += 2) {
      batch.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, requestBlock(WATCH)), frame(FrameType.RST_STREAM, 0, id, cancel));
    }
    await c.write(Buffer.concat(batch));
    await refusedWith(c, ErrorCode.ENHANCE_YOUR_CALM);
    // every stream it opened was cancelled, none left behind
    expect(watch.cancelled).toBeGreaterThanOrEqual(1000);
    expect(watch.cancelled).toBeLessThan(1200);
  });

  it('refuses a flood of empty DATA frames with ENHANCE_YOUR_CALM', async () => {
    const { url } = await serve();
    const empty = frame(FrameType.DATA, 0, 1, Buffer.alloc(0));
    const c = await open(url, [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock(WATCH)), ...Array.from({ length: 1001 }, () => empty)]);
    await refusedWith(c, ErrorCode.ENHANCE_YOUR_CALM);
  });

  it('refuses a PING flood from a client that does not read its ACKs with ENHANCE_YOUR_CALM', async () => {
    // the GOAWAY is queued behind the ACKs the client never read, and lost with them when the
    // connection is closed: the code is read where the server gives it
    const refusals: number[] = [];
    const url = await bareServer({ onRefused: (err) => refusals.push(err.code) });
    const c = await open(url, unaryCall(1));
    c.reading(false);
    const pings = Buffer.concat(Array.from({ length: 10_000 }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8))));
    // until the server stops reading (or 1.7 M pings, 29 MB of ACKs, far past any buffer)
    for (let i = 0; i < 170 && (await c.write(pings)); i++);
    await c.closed;
    expect(c.closedByServer).toBe(true);
    expect(refusals).toEqual([ErrorCode.ENHANCE_YOUR_CALM]);
  });

  it('cuts a connection whose frames before its first request pass the cap', async () => {
    const { url } = await serve();
    const unknown = frame(0xfa, 0, 0, Buffer.alloc(1000));
    const c = await open(url, Array.from({ length: Math.ceil(MAX_BYTES_BEFORE_FIRST_REQUEST / 1000) + 1 }, () => unknown));
    await refusedWith(c, ErrorCode.ENHANCE_YOUR_CALM);
  });

  it('refuses streams past --max-concurrent-streams with REFUSED_STREAM, and advertises the limit', async () => {
    const { url } = await serve({ maxConcurrentStreams: 2 });
    const c = await open(url, [1, 3, 5].map((id) => frame(FrameType.HEADERS, Flag.END_HEADERS, id, requestBlock(WATCH))));
    const settings = await c.frame((f) => f.type === FrameType.SETTINGS && f.flags === 0);
    const limit = [...Array(settings.payload.length / 6).keys()].map((i) => [settings.payload.readUInt16BE(6 * i), settings.payload.readUInt32BE(6 * i + 2)]);
    expect(limit).toContainEqual([Setting.MAX_CONCURRENT_STREAMS, 2]);
    const rst = await c.frame((f) => f.type === FrameType.RST_STREAM);
    expect({ stream: rst.streamId, code: rst.payload.readUInt32BE(0) }).toEqual({ stream: 5, code: ErrorCode.REFUSED_STREAM });
    // once a stream ends, a new one is served
    const cancel = Buffer.alloc(4);
    await c.write(Buffer.concat([frame(FrameType.RST_STREAM, 0, 1, cancel), ...unaryCall(7)]));
    expect(await statusOn(c, 7)).toBe('0');
  });

  it('writes a response stream until the client\'s window is full, then waits for WINDOW_UPDATE and drains', async () => {
    const { url, watch } = await serve();
    // a slow watcher: 4 KiB of window per stream, the connection's 65535 by default
    const c = await open(url, [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock(WATCH)), frame(FrameType.DATA, 0, 1, EMPTY_MESSAGE)], settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 4096]]));
    await expect.poll(() => watch.writes.includes(false)).toBe(true);
    const dataBytes = (): number => c.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    await expect.poll(dataBytes).toBe(4096);
    // the handler stopped at its first false: what the member holds is what it wrote until then
    expect(watch.writes.length).toBeLessThan(10);
    expect(watch.drains).toBe(0);
    const more = Buffer.alloc(4);
    more.writeUInt32BE(64 * 1024);
    await c.write(frame(FrameType.WINDOW_UPDATE, 0, 1, more));
    await expect.poll(() => watch.drains).toBeGreaterThanOrEqual(1);
    await expect.poll(dataBytes).toBeGreaterThan(4096);
    expect(dataBytes()).toBeLessThanOrEqual(4096 + 64 * 1024);
  });
});

describe('H2Connection keepalive', () => {
  const keepaliveServer = (): Promise<string> => bareServer({ keepaliveTimeMs: 100, keepaliveTimeoutMs: 300 });

  it('probes an idle client with PING and closes the connection when no ACK comes', async () => {
    const url = await keepaliveServer();
    const silent = await open(url);
    const ping = await silent.frame((f) => f.type === FrameType.PING && f.flags === 0);
    expect(ping.payload.length).toBe(8);
    await silent.closed;
    expect(silent.closedByServer).toBe(true);
  });

  it('keeps a client that answers', async () => {
    const url = await keepaliveServer();
    const c = await open(url);
    for (let answered = 0; answered < 4; answered++) {
      const pings = c.frames.filter((f) => f.type === FrameType.PING && f.flags === 0).length;
      const ping = await c.frame((f) => f.type === FrameType.PING && f.flags === 0 && c.frames.filter((g) => g.type === FrameType.PING && g.flags === 0).indexOf(f) === pings);
      await c.write(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
    }
    expect(c.closedByServer).toBe(false);
  });

  const ping = (n: number): Buffer => frame(FrameType.PING, 0, 0, Buffer.alloc(8, n));

  it("answers a client's pings, and tells one that pings again and again with no call open to stop: GOAWAY ENHANCE_YOUR_CALM too_many_pings, as grpc-go does", async () => {
    const c = await open(await bareServer({}));
    // the first ping is due; the next two are strikes; the fourth is one too many
    for (let n = 1; n <= 4; n++) await c.write(ping(n));
    await refusedWith(c, ErrorCode.ENHANCE_YOUR_CALM);
    const goaway = c.frames.find((f) => f.type === FrameType.GOAWAY)!;
    expect(goaway.payload.subarray(8).toString()).toBe('too_many_pings');
    expect(c.frames.filter((f) => f.type === FrameType.PING && f.flags === Flag.ACK)).toHaveLength(4);
  }, 30_000);

  const acks = (c: RawH2): number => c.frames.filter((f) => f.type === FrameType.PING && f.flags === Flag.ACK).length;
  /** a connection with a watch open, its first responses received (its window then full: the server sends nothing more) */
  const watching = async (keepaliveMinTimeMs: number): Promise<RawH2> => {
    const { url } = await serve({ keepaliveMinTimeMs });
    const c = await open(url, [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock(WATCH)), frame(FrameType.DATA, 0, 1, EMPTY_MESSAGE)]);
    await c.frame((f) => f.type === FrameType.DATA && f.streamId === 1);
    return c;
  };

  it('takes pings during a call no more often than keepaliveMinTimeMs (--grpc-keepalive-min-time)', async () => {
    const strict = await watching(60_000);
    // the first ping follows a response; the next three come too soon
    for (let n = 1; n <= 4; n++) await strict.write(ping(n));
    await refusedWith(strict, ErrorCode.ENHANCE_YOUR_CALM);

    const lenient = await watching(1);
    for (let n = 1; n <= 6; n++) {
      await lenient.write(ping(n));
      await expect.poll(() => acks(lenient)).toBe(n);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(lenient.closedByServer).toBe(false);
  }, 30_000);

  it('takes any number of pings when a response went out between them', async () => {
    const { url } = await serve({ keepaliveMinTimeMs: 60_000 });
    const c = await open(url);
    for (let n = 1; n <= 6; n++) {
      const stream = 2 * n + 1;
      await c.write(Buffer.concat([ping(n), ...unaryCall(stream)]));
      expect(await statusOn(c, stream)).toBe('0');
    }
    expect(acks(c)).toBe(6);
    expect(c.closedByServer).toBe(false);
  }, 30_000);

  it('closes a client that sends no SETTINGS in time with SETTINGS_TIMEOUT', async () => {
    const c = new RawH2(await bareServer({ handshakeTimeoutMs: 200 }));
    cleanups.push(() => c.close());
    await c.write(PREFACE);
    await refusedWith(c, ErrorCode.SETTINGS_TIMEOUT);
  });
});
