import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Network, PeerProxy } from '../../verify/peer-proxy.js';

// An upstream "member" that echoes everything back, behind the proxy of member 0.
async function echoServer(): Promise<net.Server> {
  const s = net.createServer((sock) => sock.pipe(sock));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return s;
}

/** A peer connection from member `fromHex`, as etcd's rafthttp opens one. */
async function dial(port: number, fromHex: string): Promise<{ sock: net.Socket; received: () => string; closed: Promise<void> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  let data = '';
  sock.on('data', (d) => (data += d.toString()));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', () => undefined);
  sock.write(`GET /raft/stream/message/${fromHex} HTTP/1.1\r\nHost: x\r\nX-Server-From: ${fromHex}\r\n\r\n`);
  return { sock, received: () => data, closed };
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('peer proxy', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });

  async function setup(): Promise<{ network: Network; port: number }> {
    const echo = await echoServer();
    const network = new Network(1);
    network.setMemberId(0, '10');
    network.setMemberId(1, '11');
    network.setMemberId(2, '12');
    const proxy = new PeerProxy(0, (echo.address() as net.AddressInfo).port, network);
    new PeerProxy(1, 1, network); // members 1 and 2 exist (their proxies are not used here)
    new PeerProxy(2, 1, network);
    const port = await proxy.listen();
    cleanup.push(() => proxy.close(), () => new Promise<void>((r) => echo.close(() => r())));
    return { network, port };
  }

  it('forwards a healthy link, identifying the sender from its first request', async () => {
    const { port } = await setup();
    const c = await dial(port, 'b');
    cleanup.push(() => void c.sock.destroy());
    c.sock.write('hello');
    await until(() => c.received().endsWith('hello'));
    expect(c.received()).toContain('X-Server-From: b');
  });

  it('blackholes only the partitioned link, then resets it on heal', async () => {
    const { network, port } = await setup();
    const fromB = await dial(port, 'b');
    const fromC = await dial(port, 'c');
    cleanup.push(() => void fromB.sock.destroy(), () => void fromC.sock.destroy());
    await until(() => fromB.received().length > 0 && fromC.received().length > 0);
    network.setFault(0, 1, { kind: 'blackhole' });
    fromB.sock.write('lost');
    fromC.sock.write('kept');
    await until(() => fromC.received().endsWith('kept'));
    await sleep(100);
    expect(fromB.received()).not.toContain('lost');
    network.healAll();
    await fromB.closed; // the corrupted stream is reset so etcd redials
    fromC.sock.write('still');
    await until(() => fromC.received().endsWith('still'));
  });

  it('isolates a member completely, including unidentified connections', async () => {
    const { network, port } = await setup();
    network.setFault(0, 1, { kind: 'blackhole' });
    network.setFault(0, 2, { kind: 'blackhole' });
    const sock = net.connect(port, '127.0.0.1');
    cleanup.push(() => void sock.destroy());
    let data = '';
    sock.on('data', (d) => (data += d.toString()));
    sock.write('GET /version HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100);
    expect(data).toBe('');
  });

  it('keeps order under delay and resets connections under drop', async () => {
    const { network, port } = await setup();
    const c = await dial(port, 'c');
    cleanup.push(() => void c.sock.destroy());
    await until(() => c.received().length > 0);
    // raft messages carry no checksum: delayed bytes must never overtake each
    // other, not even when the delay is healed while some are still queued
    network.setFault(0, 2, { kind: 'delay', ms: 5, jitterMs: 40 });
    for (let i = 0; i < 150; i++) {
      c.sock.write(`<${i}>`);
      if (i % 10 === 0) await sleep(1);
    }
    network.healAll();
    for (let i = 150; i < 200; i++) c.sock.write(`<${i}>`);
    await until(() => c.received().includes('<199>'));
    const order = [...c.received().matchAll(/<(\d+)>/g)].map((m) => Number(m[1]));
    expect(order).toEqual([...Array(200).keys()]);
    network.setFault(0, 2, { kind: 'drop', probability: 1 });
    c.sock.write('x');
    await c.closed;
  });
});
