// Keepalive on a real member's connections, so that a half-open one (the client's host
// gone without a FIN) stops holding its watches and lease keep-alives:
//   - --grpc-keepalive-interval and --grpc-keepalive-timeout: each client connection is
//     probed with an HTTP/2 PING every interval, and one that does not answer within the
//     timeout is closed, as etcd's gRPC server does (grpc-go's keepalive ServerParameters);
//   - TCP keepalive on every accepted connection, as etcd's listeners set it (30 s on the
//     client port, Go's 15 s elsewhere), seen in the kernel's socket table (`ss`).
// Raw sockets stand for the clients.

import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RawH2 } from '../grpc/raw-h2.js';
import { frame } from '../listener/helpers.js';
import { type Member, cleanup, ctl, startMember } from './harness.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = 0x4;
const PING = 0x6;
const ACK = 0x1;

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
