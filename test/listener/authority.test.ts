// The authority shim: stock etcdctl's per-endpoint commands (they send `:authority:
// http://IP:PORT`) against the real listener, plain and TLS; one grpc-js connection with many
// calls; a real nghttp2 encoder and decoder on both sides of the rewriter; hand-built frames.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  AuthorityFixingConnection,
  AuthorityRewriteError,
  AuthorityRewriter,
  encodeHeaderBlock,
  HpackDecoder,
  stripAuthorityScheme,
  type HeaderField,
} from '../../src/server/listener/authority.js';
import { ConnectionError, ErrorCode } from '../../src/server/listener/h2.js';
import { GrpcServer, serveClient, type Listener } from '../../src/server/listener/index.js';
import { loadTls } from '../../src/server/tls.js';
import { captureLogger, frame, makePki, type TestPki } from './helpers.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');


interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(bytes: Buffer): ParsedFrame[] {
  expect(bytes.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
  const frames: ParsedFrame[] = [];
  let pos = PREFACE.length;
  while (pos < bytes.length) {
    const length = bytes.readUIntBE(pos, 3);
    frames.push({ type: bytes[pos + 3]!, flags: bytes[pos + 4]!, streamId: bytes.readUInt32BE(pos + 5) & 0x7fffffff, payload: bytes.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  expect(pos).toBe(bytes.length);
  return frames;
}

/** The header blocks of `frames`, each as HEADERS/CONTINUATION payloads joined, padding and priority removed. */
function headerBlocks(frames: ParsedFrame[]): Array<{ streamId: number; block: Buffer; endStream: boolean }> {
  const blocks: Array<{ streamId: number; block: Buffer; endStream: boolean }> = [];
  let open: { streamId: number; parts: Buffer[]; endStream: boolean } | undefined;
  for (const f of frames) {
    if (f.type === 1) {
      let p = f.payload;
      if (f.flags & 0x8) p = p.subarray(1, p.length - p[0]!);
      if (f.flags & 0x20) p = p.subarray(5);
      open = { streamId: f.streamId, parts: [p], endStream: (f.flags & 1) !== 0 };
    } else if (f.type === 9) {
      open!.parts.push(f.payload);
    } else {
      continue;
    }
    if (f.flags & 0x4) {
      blocks.push({ streamId: open!.streamId, block: Buffer.concat(open!.parts), endStream: open!.endStream });
      open = undefined;
    }
  }
  return blocks;
}

function rewriteAll(rewriter: AuthorityRewriter, chunks: Buffer[]): Buffer {
  return Buffer.concat(chunks.flatMap((c) => rewriter.transform(c)));
}

/** An HPACK integer (RFC 7541 §5.1) after the bits `first` sets in its first byte. */
function hpackInt(first: number, prefixBits: number, value: number): Buffer {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return Buffer.from([first | value]);
  const out = [first | mask];
  for (value -= mask; value >= 0x80; value = Math.floor(value / 0x80)) out.push((value % 0x80) | 0x80);
  out.push(value);
  return Buffer.from(out);
}

const plain = (pairs: Array<[string, string]>): HeaderField[] => pairs.map(([name, value]) => ({ name, value, sensitive: false }));

// RFC 7541 C.4: three requests on one connection, Huffman-coded literals, dynamic table refs.
const RFC_C4 = [
  {
    block: hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'),
    fields: plain([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]),
  },
  {
    block: hex('8286 84be 5886 a8eb 1064 9cbf'),
    fields: plain([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]),
  },
  {
    block: hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
    fields: plain([[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']]),
  },
];

describe('stripAuthorityScheme', () => {
  it('cuts the scheme and any path, leaves plain authorities alone', () => {
    expect(stripAuthorityScheme('http://127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(stripAuthorityScheme('https://[::1]:2379/')).toBe('[::1]:2379');
    expect(stripAuthorityScheme('127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(stripAuthorityScheme('localhost')).toBe('localhost');
    expect(stripAuthorityScheme('')).toBe('');
  });
});

describe('HpackDecoder', () => {
  it('decodes RFC 7541 C.4 (Huffman literals, dynamic table) in sequence', () => {
    const d = new HpackDecoder();
    for (const { block, fields } of RFC_C4) expect(d.decode(block)).toEqual(fields);
  });

  it('keeps never-indexed fields sensitive, and encodeHeaderBlock round-trips without the table', () => {
    const fields: HeaderField[] = [
      { name: ':method', value: 'POST', sensitive: false },
      { name: ':authority', value: '127.0.0.1:2379', sensitive: false },
      { name: 'authorization', value: 'secret-token', sensitive: true },
      { name: 'x-custom', value: 'v'.repeat(300), sensitive: false },
      { name: 'te', value: 'trailers', sensitive: false },
    ];
    const encoded = encodeHeaderBlock(fields);
    expect(new HpackDecoder().decode(encoded)).toEqual(fields);
    // A decoder with no room for a table reads it just as well: nothing was indexed.
    expect(new HpackDecoder(0).decode(encoded)).toEqual(fields);
    // The sensitive field went out as "literal never indexed" with authorization's static index.
    expect(encoded.includes(Buffer.from([0x1f, 0x08]))).toBe(true);
  });

  it('refuses malformed blocks', () => {
    const bad = [
      hex('be'), // dynamic index with an empty table
      hex('80'), // index 0
      hex('0085 f2b2 4a87'), // Huffman literal cut short
      hex('0081 00 00'), // Huffman '0' padded with zeros, not ones
      hex('3fe2 1f'), // table size update to 4097, above the 4096 advertised
      hex('82 20'), // table size update after a field
      hex('40ff ffff ffff ff'), // integer overflow
    ];
    for (const block of bad) expect(() => new HpackDecoder().decode(block), block.toString('hex')).toThrow(AuthorityRewriteError);
  });
});

describe('AuthorityRewriter on hand-built frames', () => {
  const settings = frame(4, 0, 0, hex('000300000064'));
  const windowUpdate = frame(8, 0, 0, hex('00ff0000'));
  /** A first request whose authority has a scheme, encoded without the table: the rewriter mends every block after it. */
  const mendedFirst = frame(1, 0x4 | 0x1, 1, encodeHeaderBlock(plain([[':method', 'POST'], [':path', '/x'], [':authority', 'http://127.0.0.1:2379']])));

  /** After a first request to mend: HEADERS (PADDED+PRIORITY) + 2 CONTINUATION frames carrying C.4.1, then DATA; C.4.2 and C.4.3 plain. */
  function clientBytes(): Buffer {
    const b1 = RFC_C4[0]!.block;
    const priorityAndPad = Buffer.concat([Buffer.from([3]), hex('80000003 10'), b1.subarray(0, 4), Buffer.alloc(3)]);
    return Buffer.concat([
      PREFACE,
      settings,
      mendedFirst,
      frame(1, 0x8 | 0x20, 3, priorityAndPad),
      frame(9, 0, 3, b1.subarray(4, 9)),
      frame(9, 0x4, 3, b1.subarray(9)),
      frame(0, 0x1, 3, Buffer.from('hello')),
      windowUpdate,
      frame(1, 0x4 | 0x1, 5, RFC_C4[1]!.block),
      frame(1, 0x4, 7, RFC_C4[2]!.block),
      frame(0, 0x8 | 0x1, 7, Buffer.concat([Buffer.from([2]), Buffer.from('data'), Buffer.alloc(2)])),
    ]);
  }

  it('once the first request needed mending, re-encodes every block without the dynamic table and passes other frames through', () => {
    const input = clientBytes();
    const out = rewriteAll(new AuthorityRewriter(), [input]);
    const frames = parseFrames(out);
    expect(frames.map((f) => [f.type, f.streamId, f.flags])).toEqual([
      [4, 0, 0],
      [1, 1, 0x5],
      [1, 3, 0x4 | 0x20],
      [0, 3, 0x1],
      [8, 0, 0],
      [1, 5, 0x4 | 0x1],
      [1, 7, 0x4],
      [0, 7, 0x9],
    ]);
    // Priority kept, padding dropped; non-header frames are byte for byte what came in.
    expect(frames[2]!.payload.subarray(0, 5)).toEqual(hex('80000003 10'));
    expect(frames[3]!.payload.toString()).toBe('hello');
    expect(frames[7]!.payload).toEqual(Buffer.concat([Buffer.from([2]), Buffer.from('data'), Buffer.alloc(2)]));
    const blocks = headerBlocks(frames);
    expect(blocks.map((b) => b.streamId)).toEqual([1, 3, 5, 7]);
    expect(new HpackDecoder().decode(blocks[0]!.block).find((f) => f.name === ':authority')!.value).toBe('127.0.0.1:2379');
    // Each block decodes on its own, with a fresh decoder: none refers to the client's table.
    blocks.slice(1).forEach((b, i) => expect(new HpackDecoder().decode(b.block)).toEqual(RFC_C4[i]!.fields));
  });

  it('passes a connection whose first request needs no mending on byte for byte, and then stops parsing it', () => {
    // C.4 as the client sent it: its later blocks lean on the HPACK table the first one filled.
    const input = Buffer.concat([
      PREFACE,
      settings,
      frame(1, 0x4 | 0x1, 1, RFC_C4[0]!.block),
      frame(1, 0x4 | 0x1, 3, RFC_C4[1]!.block),
      frame(1, 0x4 | 0x1, 5, RFC_C4[2]!.block),
    ]);
    for (let cut = 1; cut < input.length; cut += 7) {
      expect(rewriteAll(new AuthorityRewriter(), [input.subarray(0, cut), input.subarray(cut)]).equals(input), `cut at ${cut}`).toBe(true);
    }
    const r = new AuthorityRewriter();
    r.transform(input);
    // Not even frames any more: whatever comes is handed on as the same buffer, for Node to judge.
    const junk = Buffer.alloc(100_000, 0xff);
    expect(r.transform(junk)).toEqual([junk]);
  });

  it('gives the same bytes however the input is cut', () => {
    const input = clientBytes();
    const whole = rewriteAll(new AuthorityRewriter(), [input]);
    const byteByByte = rewriteAll(new AuthorityRewriter(), [...input].map((b) => Buffer.from([b])));
    expect(byteByByte.equals(whole)).toBe(true);
    for (let cut = 1; cut < input.length; cut++) {
      const two = rewriteAll(new AuthorityRewriter(), [input.subarray(0, cut), input.subarray(cut)]);
      expect(two.equals(whole), `cut at ${cut}`).toBe(true);
    }
  });

  it('rewrites an authority with a scheme', () => {
    const block = encodeHeaderBlock(plain([[':method', 'POST'], [':scheme', 'http'], [':path', '/etcdserverpb.Maintenance/Status'], [':authority', 'http://127.0.0.1:2379']]));
    const out = rewriteAll(new AuthorityRewriter(), [Buffer.concat([PREFACE, settings, frame(1, 0x4, 1, block)])]);
    const [b] = headerBlocks(parseFrames(out));
    expect(new HpackDecoder().decode(b!.block).find((f) => f.name === ':authority')!.value).toBe('127.0.0.1:2379');
  });

  it('forwards a chunk of whole DATA frames as the same buffer', () => {
    const r = new AuthorityRewriter();
    r.transform(Buffer.concat([PREFACE, settings, mendedFirst]));
    const chunk = Buffer.concat([frame(0, 0, 1, Buffer.alloc(1000, 1)), frame(0, 1, 1, Buffer.alloc(10, 2))]);
    const out = r.transform(chunk);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(chunk);
  });

  it('splits a re-encoded block above 16384 bytes into HEADERS and CONTINUATION frames', () => {
    const big = 'x'.repeat(4000);
    const authority = encodeHeaderBlock(plain([[':authority', 'http://a:1']]));
    // The client indexes a 4 KB field once, then sends it ten times as one byte each.
    const first = Buffer.concat([hex('82 86 84'), authority, hex('40 05'), Buffer.from('x-big'), hpackInt(0x00, 7, big.length), Buffer.from(big)]);
    const second = Buffer.concat([hex('82 86 84'), authority, Buffer.alloc(10, 0xbe)]);
    const chunks: Buffer[] = [PREFACE, settings];
    for (let off = 0; off < first.length; off += 1000) {
      const last = off + 1000 >= first.length;
      chunks.push(frame(off === 0 ? 1 : 9, last ? 0x4 : 0, 1, first.subarray(off, off + 1000)));
    }
    chunks.push(frame(1, 0x4 | 0x1, 3, second));
    const frames = parseFrames(rewriteAll(new AuthorityRewriter(), chunks)).slice(1);
    expect(frames.map((f) => [f.type, f.streamId])).toEqual([[1, 1], [1, 3], [9, 3], [9, 3]]);
    expect(frames.every((f) => f.payload.length <= 16384)).toBe(true);
    expect(frames.map((f) => f.flags)).toEqual([0x4, 0x1, 0, 0x4]);
    const [, b2] = headerBlocks(frames);
    const fields = new HpackDecoder().decode(b2!.block);
    expect(fields.filter((f) => f.name === 'x-big' && f.value === big)).toHaveLength(10);
    expect(fields.find((f) => f.name === ':authority')!.value).toBe('a:1');
  });

  it('refuses frames it cannot follow, before the first request and after one it mends', () => {
    const cases: Array<[string, Buffer[], number]> = [
      ['CONTINUATION without HEADERS', [frame(9, 0x4, 11, hex('82'))], ErrorCode.PROTOCOL_ERROR],
      ['DATA inside a header block', [frame(1, 0, 11, hex('82')), frame(0, 0, 11, Buffer.from('x'))], ErrorCode.PROTOCOL_ERROR],
      ['CONTINUATION of another stream', [frame(1, 0, 11, hex('82')), frame(9, 0x4, 13, hex('86'))], ErrorCode.PROTOCOL_ERROR],
      ['padding longer than the frame', [frame(1, 0x8 | 0x4, 11, hex('0582'))], ErrorCode.PROTOCOL_ERROR],
      ['HEADERS above the frame size', [frame(1, 0x4, 11, Buffer.alloc(16385, 0x82))], ErrorCode.FRAME_SIZE_ERROR],
      ['HEADERS on stream 0', [frame(1, 0x4, 0, hex('82'))], ErrorCode.PROTOCOL_ERROR],
      ['bad HPACK', [frame(1, 0x4, 11, hex('be'))], ErrorCode.COMPRESSION_ERROR],
    ];
    for (const opening of [[PREFACE, settings], [PREFACE, settings, mendedFirst]]) {
      for (const [what, frames, code] of cases) {
        let thrown: unknown;
        try {
          rewriteAll(new AuthorityRewriter(), [...opening, ...frames]);
        } catch (err) {
          thrown = err;
        }
        expect(thrown, what).toBeInstanceOf(ConnectionError);
        expect((thrown as ConnectionError).code, what).toBe(code);
      }
    }
  });

  it('with cutSettingsAck, cuts the first SETTINGS ACK wherever it comes and however the input is cut, and nothing else', () => {
    const ack = frame(4, 0x1, 0, Buffer.alloc(0));
    const first = frame(1, 0x4 | 0x1, 1, RFC_C4[0]!.block);
    const later = [frame(1, 0x4 | 0x1, 3, RFC_C4[1]!.block), frame(0, 0x1, 3, Buffer.from('body'))];
    const openings = [
      // grpc-go: the ACK of the listener's SETTINGS, then its first request.
      [PREFACE, settings, windowUpdate, ack, first, ...later],
      // nghttp2 clients (grpc-js): the first request before the ACK.
      [PREFACE, settings, first, ack, ...later],
      [PREFACE, settings, first, ...later, ack],
    ];
    for (const frames of openings) {
      const input = Buffer.concat(frames);
      const expected = Buffer.concat(frames.filter((f) => f !== ack));
      for (let cut = 1; cut < input.length; cut++) {
        const r = new AuthorityRewriter({ cutSettingsAck: true });
        const out = rewriteAll(r, [input.subarray(0, cut), input.subarray(cut)]);
        expect(out.equals(expected), `cut at ${cut}`).toBe(true);
        expect(r.passingAll).toBe(true);
      }
      // Until the ACK is cut, the rewriter keeps following frames.
      const r = new AuthorityRewriter({ cutSettingsAck: true });
      r.transform(Buffer.concat(frames.slice(0, frames.indexOf(ack))));
      expect(r.passingAll).toBe(false);
    }
    // Only the first ACK is the listener's: a second one is the client's answer to the session.
    const r = new AuthorityRewriter({ cutSettingsAck: true });
    const twice = Buffer.concat([PREFACE, settings, ack, first, ack]);
    expect(rewriteAll(r, [twice]).equals(Buffer.concat([PREFACE, settings, first, ack]))).toBe(true);
    // After a first request to mend, the ACK is cut from the rewritten stream just as well.
    const mended = new AuthorityRewriter({ cutSettingsAck: true });
    const frames = parseFrames(rewriteAll(mended, [Buffer.concat([PREFACE, settings, mendedFirst, ack, windowUpdate])]));
    expect(frames.map((f) => [f.type, f.flags])).toEqual([[4, 0], [1, 0x5], [8, 0]]);
    expect(mended.rewriting).toBe(true);
  });

  it('leaves a stream that does not open with the preface to nghttp2', () => {
    const junk = Buffer.from('GET / HTTP/1.1\r\n\r\n');
    expect(new AuthorityRewriter().transform(junk)).toEqual([junk]);
  });
});

describe('AuthorityRewriter between two nghttp2 ends', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('carries a Node client through a Node server: Huffman, table evictions, sensitive and 40 KB headers', async () => {
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(JSON.stringify(headers));
    });
    const recorded: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('data', (b: Buffer) => recorded.push(b));
      h2.emit('connection', new AuthorityFixingConnection(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())), () => client.destroy(), () => h2.close());

    const request = (headers: http2.OutgoingHttpHeaders): Promise<Record<string, string>> =>
      new Promise((resolve, reject) => {
        const req = client.request(headers);
        let body = '';
        req.on('data', (d: Buffer) => (body += d));
        req.on('end', () => resolve(JSON.parse(body)));
        req.on('error', reject);
        req.end();
      });

    const authority = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 60; i++) {
      // Values change every call and are big enough to push old entries out of the 4 KiB table.
      const headers: http2.OutgoingHttpHeaders = {
        ':authority': authority,
        ':path': `/etcdserverpb.KV/Range`,
        ':method': 'POST',
        'content-type': 'application/grpc',
        'user-agent': 'grpc-go/1.26.0',
        'x-seq': String(i),
        'x-fill': `${i}-`.padEnd(300 + (i % 7) * 100, String.fromCharCode(97 + (i % 26))),
        authorization: `token-${i % 3}`,
        [http2.sensitiveHeaders]: ['authorization'],
      };
      if (i === 30) headers['x-huge'] = 'h'.repeat(40_000);
      const got = await request(headers);
      expect(got[':authority']).toBe(`127.0.0.1:${port}`);
      expect(got['x-seq']).toBe(String(i));
      expect(got['x-fill']).toBe(headers['x-fill']);
      expect(got.authorization).toBe(`token-${i % 3}`);
      expect(got['user-agent']).toBe('grpc-go/1.26.0');
      if (i === 30) expect(got['x-huge']).toHaveLength(40_000);
    }

    // The same bytes offline: the client's blocks, decoded in order with one decoder, match the
    // rewritten blocks each decoded alone (authority aside), so none leans on the client's table.
    const input = Buffer.concat(recorded);
    const inBlocks = headerBlocks(parseFrames(input));
    const outBlocks = headerBlocks(parseFrames(rewriteAll(new AuthorityRewriter(), [input])));
    expect(outBlocks).toHaveLength(60);
    expect(inBlocks).toHaveLength(60);
    const follower = new HpackDecoder();
    inBlocks.forEach((b, i) => {
      const expected = follower.decode(b.block).map((f) => (f.name === ':authority' ? { ...f, value: `127.0.0.1:${port}` } : f));
      expect(new HpackDecoder().decode(outBlocks[i]!.block)).toEqual(expected);
      expect(outBlocks[i]!.endStream).toBe(b.endStream);
    });
    // nghttp2 did use its table and Huffman coding, so both paths were exercised.
    expect(input.includes('grpc-go/1.26.0')).toBe(false);
    expect(inBlocks.reduce((n, b) => n + b.block.length, 0)).toBeLessThan(outBlocks.reduce((n, b) => n + b.block.length, 0));
  });
});

// --- Through serveClient, with a Maintenance.Status handler, and stock etcdctl. ---

const definition = protoLoader.loadSync('etcdserverpb/rpc.proto', { includeDirs: ['proto'], keepCase: true, longs: String, defaults: true });
const MaintenanceClient = (grpc.loadPackageDefinition(definition) as unknown as { etcdserverpb: { Maintenance: grpc.ServiceClientConstructor } }).etcdserverpb
  .Maintenance;

interface StatusReply {
  version: string;
  errors: string[];
}

/** Status answers with the caller's peer address and its x-call metadata in `errors`. */
function addStatusService(server: GrpcServer): void {
  server.addService(MaintenanceClient.service, {
    Status(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      callback(null, {
        header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '1', raft_term: '2' },
        version: '3.4.23',
        dbSize: '20480',
        leader: '10276657743932975437',
        raftIndex: '4',
        raftTerm: '2',
        errors: [call.getPeer(), String(call.metadata.get('x-call')[0] ?? '')],
      });
    },
    Defragment(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      callback(null, { header: { revision: '1' } });
    },
    Snapshot(call: grpc.ServerWritableStream<unknown, unknown>) {
      const blob = SNAPSHOT;
      for (let off = 0; off < blob.length; off += 64 * 1024) {
        const piece = blob.subarray(off, off + 64 * 1024);
        call.write({ header: { revision: '1' }, remaining_bytes: String(blob.length - off - piece.length), blob: piece });
      }
      call.end();
    },
  });
}

/** What Snapshot streams: a 3 MiB "db" no two 64 KiB pieces of which are alike, and its sha256, as etcd sends it. */
const SNAPSHOT_DB = Buffer.alloc(3 * 1024 * 1024);
for (let i = 0; i < SNAPSHOT_DB.length; i += 4) SNAPSHOT_DB.writeUInt32LE(i, i);
const SNAPSHOT = Buffer.concat([SNAPSHOT_DB, createHash('sha256').update(SNAPSHOT_DB).digest()]);

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('etcdctl', args, { timeout: 30_000, env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('serveClient with the shim', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(url: string, secure: boolean): Promise<{ listener: Listener; lines: Array<Record<string, unknown>> }> {
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    addStatusService(server);
    const { logger, lines } = captureLogger();
    const ctx = secure
      ? await loadTls({ certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: false, autoTls: false }, '/nonexistent', ['127.0.0.1'])
      : undefined;
    const listener = await serveClient(new URL(url), ctx, server, (_req, res) => res.end(), logger);
    cleanups.push(async () => {
      await listener.close();
      server.forceShutdown();
    });
    return { listener, lines };
  }

  it('stock etcdctl endpoint status with an http:// endpoint', async () => {
    const { listener } = await start('http://127.0.0.1:0', false);
    const out = await run([`--endpoints=${listener.url}`, '--command-timeout=10s', 'endpoint', 'status', '-w', 'json']);
    expect(out.stderr).not.toContain('PROTOCOL_ERROR');
    expect(out.code).toBe(0);
    const [status] = JSON.parse(out.stdout) as Array<{ Endpoint: string; Status: { version: string; leader: number } }>;
    expect(status!.Endpoint).toBe(listener.url);
    expect(status!.Status.version).toBe('3.4.23');
  });

  it('stock etcdctl defrag and snapshot save (3 MiB streamed back) with an http:// endpoint', async () => {
    const { listener } = await start('http://127.0.0.1:0', false);
    const defrag = await run([`--endpoints=${listener.url}`, '--command-timeout=10s', 'defrag']);
    expect(defrag.stdout).toContain(`Finished defragmenting etcd member[${listener.url}]`);
    expect(defrag.code).toBe(0);
    const file = path.join(pki.dir, 'snap.db');
    const save = await run([`--endpoints=${listener.url}`, '--command-timeout=10s', 'snapshot', 'save', file]);
    expect(save.stderr + save.stdout).toContain(`Snapshot saved at ${file}`);
    expect(save.code).toBe(0);
    expect(readFileSync(file).equals(SNAPSHOT)).toBe(true);
  });

  it('stock etcdctl endpoint status with an https:// endpoint', async () => {
    const { listener } = await start('https://127.0.0.1:0', true);
    const out = await run([`--endpoints=${listener.url}`, '--cacert', pki.ca, '--command-timeout=10s', 'endpoint', 'status', '-w', 'json']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect((JSON.parse(out.stdout) as Array<{ Status: { version: string } }>)[0]!.Status.version).toBe('3.4.23');
  });

  it('serves many calls on one grpc-js connection whose authority has a scheme, naming the peer', async () => {
    const { listener } = await start('http://127.0.0.1:0', false);
    const target = listener.url.replace('http://', '');
    const client = new MaintenanceClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': listener.url });
    cleanups.push(() => client.close());
    const status = (i: number): Promise<StatusReply> =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set('x-call', `${i}`);
        md.set('x-fill', `${i}`.padEnd(200 + (i % 5) * 150, 'f'));
        (client as unknown as Record<string, Function>).Status({}, md, (err: Error | null, res: StatusReply) => (err ? reject(err) : resolve(res)));
      });
    const peers = new Set<string>();
    for (let i = 0; i < 150; i++) {
      const res = await status(i);
      expect(res.errors[1]).toBe(String(i));
      peers.add(res.errors[0]!);
    }
    // One connection throughout, and grpc-js sees the client's real address.
    expect(peers.size).toBe(1);
    expect([...peers][0]).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('cuts a connection whose frames cannot be followed, and keeps serving', async () => {
    const { listener, lines } = await start('http://127.0.0.1:0', false);
    const port = Number(new URL(listener.url).port);
    const sock = net.connect(port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => {});
    sock.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(9, 0x4, 1, hex('82'))]));
    sock.resume();
    await closed;
    expect(lines.some((l) => l.msg === 'closing gRPC connection' && String(l.error).includes('CONTINUATION'))).toBe(true);
    const out = await run([`--endpoints=${listener.url}`, '--command-timeout=10s', 'endpoint', 'status', '-w', 'json']);
    expect(out.code).toBe(0);
  });
});
