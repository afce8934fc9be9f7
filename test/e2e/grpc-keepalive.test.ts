// Keepalive on a real member's connections, so that a half-open one (the client's host
// gone without a FIN) stops holding its watches and lease keep-alives:
//   - --grpc-keepalive-interval and --grpc-keepalive-timeout: each client connection is
//     probed with an HTTP/2 PING every interval, and one that does not answer within the
//     timeout is closed, as etcd's gRPC server does (grpc-go's keepalive ServerParameters);
//   - --grpc-keepalive-min-time: a client may ping that often while it has a call open;
//     one that pings more often, with no response between, is sent GOAWAY
//     ENHANCE_YOUR_CALM "too_many_pings" (grpc-go's enforcement policy);
//   - TCP keepalive on every accepted connection, as etcd's listeners set it (30 s on the
//     client port, Go's 15 s elsewhere), seen in the kernel's socket table (`ss`).
// Raw sockets stand for the clients.

import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ErrorCode } from '../../src/server/grpc/h2/frames.js';
import { encodeHeaderBlock } from '../../src/server/grpc/h2/hpack.js';
import { RawH2 } from '../grpc/raw-h2.js';
import { frame } from '../listener/helpers.js';
import { type Member, cleanup, ctl, startMember } from './harness.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = 0x4;
const PING = 0x6;
const HEADERS = 0x1;
const GOAWAY = 0x7;
const ACK = 0x1;
const END_HEADERS = 0x4;

let member: Member;
beforeAll(async () => {
  member = await startMember({ args: ['--grpc-keepalive-interval', '200ms', '--grpc-keepalive-timeout', '500ms'] });
}, 60_000);
afterAll(cleanup);

async function connect(): Promise<RawH2> {
  const c = new RawH2(member.clientUrl);
  await c.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0))]));
  return c;
}

const isProbe = (f: { type: number; flags: number }): boolean => f.type === PING && (f.flags & ACK) === 0;

it('probes a client with PING every --grpc-keepalive-interval and closes it when no answer comes within --grpc-keepalive-timeout', async () => {
  const silent = await connect();
  const probe = await silent.frame(isProbe);
  expect(probe.payload).toHaveLength(8);
  await silent.closed;
  expect(silent.closedByServer).toBe(true);
  // the member serves on
  expect(await ctl(member.clientUrl, ['put', 'after', 'probe'])).toBe('OK\n');
}, 30_000);

it('keeps a client that answers every probe', async () => {
  const c = await connect();
  try {
    for (let answered = 0; answered < 5; answered++) {
      const probe = await c.frame((f) => isProbe(f) && c.frames.filter(isProbe).indexOf(f) === answered);
      await c.write(frame(PING, ACK, 0, probe.payload));
    }
    expect(c.closedByServer).toBe(false);
  } finally {
    c.close();
  }
}, 30_000);

it('turns TCP keepalive on for connections accepted on the client and peer ports, with the periods etcd sets', async () => {
  // seconds left on the member's keepalive timer: within its period, and above the other one's
  for (const [url, [above, atMost]] of [[member.clientUrl, [15, 30]], [member.peerUrl, [0, 15]]] as const) {
    const port = Number(new URL(url).port);
    const socket = net.connect(port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const local = socket.localPort!;
      // the member's side of this connection
      const timer = async () => {
        const { stdout } = await promisify(execFile)('ss', ['-tnoH', 'state', 'established', `( sport = :${port} and dport = :${local} )`]);
        return /timer:\(keepalive,(\d+)sec/.exec(stdout)?.[1];
      };
      await expect.poll(timer).toBeDefined();
      const left = Number(await timer());
      expect(left).toBeGreaterThan(above);
      expect(left).toBeLessThanOrEqual(atMost);
    } finally {
      socket.destroy();
    }
  }
}, 30_000);

it('takes pings during a call as often as --grpc-keepalive-min-time allows, and sends a client that pings more often GOAWAY too_many_pings', async () => {
  const lenient = await startMember({ args: ['--grpc-keepalive-min-time', '100ms'] });
  const WATCH_HEADERS = encodeHeaderBlock([
    [':method', 'POST'], [':scheme', 'http'], [':path', '/etcdserverpb.Watch/Watch'], [':authority', '127.0.0.1'],
    ['content-type', 'application/grpc'], ['te', 'trailers'],
  ]);
  const pinging = async (url: string, gapMs: number): Promise<RawH2> => {
    const c = new RawH2(url);
    // a watch call stays open, and the member sends nothing on it until asked to watch
    await c.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, END_HEADERS, 1, WATCH_HEADERS)]));
    for (let n = 1; n <= 4 && !c.closedByServer; n++) {
      await c.write(frame(PING, 0, 0, Buffer.alloc(8, n)));
      await c.frame((f) => f.type === PING && (f.flags & ACK) !== 0 && f.payload[0] === n);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    return c;
  };
  // 300 ms apart: within what the flag allows
  const calm = await pinging(lenient.clientUrl, 300);
  expect(calm.closedByServer).toBe(false);
  calm.close();
  // back to back, on a member at etcd's 5 s
  const eager = await pinging(member.clientUrl, 0);
  await eager.closed;
  const goaway = eager.frames.find((f) => f.type === GOAWAY);
  expect(goaway?.payload.readUInt32BE(4)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  expect(goaway?.payload.subarray(8).toString()).toBe('too_many_pings');
}, 60_000);
