// --grpc-keepalive-interval and --grpc-keepalive-timeout on a real member: each client
// connection is probed with an HTTP/2 PING every interval, and one that does not answer
// within the timeout is closed, as etcd's gRPC server does (grpc-go's keepalive
// ServerParameters). A half-open connection (the client's host gone without a FIN) then
// stops holding its watches and lease keep-alives. Raw sockets stand for the clients.

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
