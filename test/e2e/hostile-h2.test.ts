// Hostile HTTP/2 clients on a real member's client port, plain and TLS, through raw sockets:
// before its first request a connection gets SETTINGS and PING answered, is refused with a
// GOAWAY for broken frames, and is cut once it has sent more than the listener allows or has
// not sent its SETTINGS in time; 16 connections flooding the port do not keep etcdctl's puts
// from completing. What real etcd 3.4.23 does with the same inputs is recorded in
// src/server/listener/first-request.ts.

import path from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/server/grpc/h2/frames.js';
import { type TestPki, frame, makePki, read } from '../listener/helpers.js';
import { RawH2 } from '../grpc/raw-h2.js';
import { type Member, cleanup, ctl, freePort, startMember, tempDir } from './harness.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = 0x4;
const PING = 0x6;
const UNKNOWN_TYPE = 0xfa;


let pki: TestPki;
let plain: Member;
let secure: Member;
let secureUrl: string;

beforeAll(async () => {
  pki = makePki();
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  secureUrl = `https://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  [plain, secure] = await Promise.all([
    startMember(),
    startMember({
      bare: true,
      args: [
        '--name', 'secure',
        '--data-dir', path.join(tempDir(), 'secure.etcd'),
        '--listen-client-urls', secureUrl,
        '--advertise-client-urls', secureUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `secure=${peerUrl}`,
        '--cert-file', pki.serverCert,
        '--key-file', pki.serverKey,
      ],
    }),
  ]);
}, 60_000);

afterAll(async () => {
  await cleanup();
  rmSync(pki.dir, { recursive: true, force: true });
});

const settingsFrame = frame(SETTINGS, 0, 0, Buffer.alloc(0));

describe.each([
  ['plain', () => ({ url: plain.clientUrl, ca: undefined })],
  ['TLS', () => ({ url: secureUrl, ca: read(pki.ca) })],
])('before its first request, a raw HTTP/2 connection (%s)', (_kind, target) => {
  const open = (): RawH2 => {
    const { url, ca } = target();
    return new RawH2(url, ca);
  };

  it('gets the server SETTINGS, an ACK of its own, and an ACK of its PING', async () => {
    const c = open();
    await c.write(Buffer.concat([PREFACE, settingsFrame]));
    await c.frame((f) => f.type === SETTINGS && (f.flags & 1) === 0);
    await c.frame((f) => f.type === SETTINGS && (f.flags & 1) === 1);
    await c.write(frame(PING, 0, 0, Buffer.from('pingpong')));
    const ack = await c.frame((f) => f.type === PING);
    expect(ack.flags & 1).toBe(1);
    expect(ack.payload.toString()).toBe('pingpong');
    expect(c.closedByServer).toBe(false);
    c.close();
  });

  it('is refused with GOAWAY PROTOCOL_ERROR for DATA on stream 0', async () => {
    const c = open();
    await c.write(Buffer.concat([PREFACE, settingsFrame, frame(0x0, 0, 0, Buffer.from('abc'))]));
    await c.closed;
    expect(c.closedByServer).toBe(true);
    expect(c.goawayCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('is refused with GOAWAY FRAME_SIZE_ERROR for a frame above 16384 bytes', async () => {
    const c = open();
    await c.write(Buffer.concat([PREFACE, settingsFrame, frame(UNKNOWN_TYPE, 0, 0, Buffer.alloc(16385))]));
    await c.closed;
    expect(c.closedByServer).toBe(true);
    expect(c.goawayCode()).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it('is refused with GOAWAY FLOW_CONTROL_ERROR for a WINDOW_UPDATE that overflows the connection window', async () => {
    const c = open();
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(2 ** 31 - 1);
    await c.write(Buffer.concat([PREFACE, settingsFrame, frame(0x8, 0, 0, increment)]));
    await c.closed;
    expect(c.closedByServer).toBe(true);
    expect(c.goawayCode()).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });

  it('is cut when its frames of unknown type pass the cap', async () => {
    const c = open();
    await c.write(Buffer.concat([PREFACE, settingsFrame]));
    // Frames Node would ignore one by one, without end, as long as the connection lasts.
    const flood = frame(UNKNOWN_TYPE, 0, 0, Buffer.alloc(16000, 0x5a));
    for (let i = 0; i < 4096 && (await c.write(flood)); i++);
    await c.closed;
    expect(c.closedByServer).toBe(true);
    // What the client got to write is the cap plus what the two kernels buffered before the
    // member stopped reading, far below the 64 MB it would have sent to an open connection.
    expect(c.written).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('a connection that sends only the preface', () => {
  it('is closed once the handshake timeout (10 s) has passed, plain and TLS', async () => {
    const conns = [new RawH2(plain.clientUrl), new RawH2(secureUrl, read(pki.ca))];
    for (const c of conns) await c.write(PREFACE);
    await Promise.all(conns.map((c) => c.closed));
    for (const c of conns) {
      expect(c.closedByServer).toBe(true);
      expect(c.goawayCode()).toBe(ErrorCode.SETTINGS_TIMEOUT);
    }
  }, 30_000);
});

describe('16 connections flooding the client port', () => {
  it('do not keep etcdctl puts from completing, and each is cut after a bounded number of bytes', async () => {
    let flooding = true;
    const cut: RawH2[] = [];
    /** One flooder: connects, sends frames of unknown type (the last one left incomplete) until cut, again and again. */
    const flooder = async (): Promise<void> => {
      // Two whole frames, written as one and a half, then the rest: every other write ends inside a frame.
      const two = Buffer.concat([frame(UNKNOWN_TYPE, 0, 0, Buffer.alloc(16000, 0x5a)), frame(UNKNOWN_TYPE, 0, 0, Buffer.alloc(16000, 0x5a))]);
      const writes = [two.subarray(0, 24000), two.subarray(24000)];
      while (flooding) {
        const c = new RawH2(plain.clientUrl);
        await c.write(Buffer.concat([PREFACE, settingsFrame]));
        let open = true;
        for (let i = 0; i < 4096 && open; i++) open = await c.write(writes[i % 2]!);
        // A connection still open here took 64 MB without being cut: close it, the check below
        // fails. (One the member cut may not have reported its 'close' yet: it is not closed here.)
        if (open) c.close();
        await c.closed;
        cut.push(c);
      }
    };
    const flooders = Array.from({ length: 16 }, () => flooder());
    try {
      for (let i = 0; i < 20; i++) expect(await ctl(plain.clientUrl, ['put', `flood-${i}`, `v${i}`])).toBe('OK\n');
    } finally {
      // on every way out: flooders left running would connect again and again until the worker dies
      flooding = false;
      await Promise.all(flooders);
    }

    expect(cut.length).toBeGreaterThanOrEqual(16);
    for (const c of cut) {
      expect(c.closedByServer).toBe(true);
      expect(c.written).toBeLessThan(16 * 1024 * 1024);
    }
    expect(await ctl(plain.clientUrl, ['get', 'flood-19', '--print-value-only'])).toBe('v19\n');
  }, 120_000);
});
