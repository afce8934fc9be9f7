import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { StepError } from '../../src/raft/index.js';
import { MessageType, encodeMessage } from '../../src/raftpb/index.js';
import { LINK_HEARTBEAT } from '../../src/server/transport/stream-codec.js';
import { U53, rawMessage } from '../raftpb/raw.js';
import { app, connectAll, heartbeat, startNode, stopNode, waitFor, type Node } from './helpers.js';

const A = 0xa1n;
const B = 0xb2n;
const M = 0x3n; // a misbehaving peer

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(id: bigint): Promise<Node> {
  const n = await startNode({ id });
  cleanups.push(() => stopNode(n));
  return n;
}

/** One message as etcd's message stream frames it: uint64 length, then the bytes. */
function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeBigUInt64BE(BigInt(payload.length), 0);
  b.set(payload, 8);
  return b;
}

/**
 * A fake peer M whose message stream endpoint answers every dial with `bytes` (and its
 * msgappv2 endpoint with `msgapp`, or a refusal). Returns its URL and the message stream's dial count.
 */
async function fakePeer(bytes: Buffer, end = false, msgapp?: Buffer): Promise<{ url: string; dials: () => number; msgappDials: () => number }> {
  let dials = 0;
  let msgappDials = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/raft/stream/msgapp/')) {
      msgappDials++;
      if (msgapp === undefined) {
        res.writeHead(404).end('error sender not found\n');
        return;
      }
      res.writeHead(200);
      res.write(msgapp);
      return;
    }
    dials++;
    res.writeHead(200);
    res.write(bytes);
    if (end) res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, dials: () => dials, msgappDials: () => msgappDials };
}

describe('malformed input', () => {
  it('drops a stream whose message length is absurd, logs it, and redials', async () => {
    const a = await node(A);
    const m = await fakePeer(Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    a.transport.addPeer(M, [m.url]);
    await waitFor('redial', () => m.dials() >= 2);
    const lost = a.lines.find((l) => l.msg === 'lost TCP streaming connection with remote peer')!;
    expect(String(lost.error)).toMatch(/malformed stream Message from the remote peer: message of 4294967295 bytes exceeds/);
    expect(a.raft.received).toEqual([]);
  });

  it('drops a msgappv2 stream with a record type etcd does not know, and redials', async () => {
    const a = await node(A);
    const m = await fakePeer(Buffer.alloc(0), false, Buffer.from([7, 1, 2, 3]));
    a.transport.addPeer(M, [m.url]);
    await waitFor('redial', () => m.msgappDials() >= 2);
    const lost = a.lines.find((l) => l.msg === 'lost TCP streaming connection with remote peer' && l['stream-reader-type'] === 'stream MsgApp v2')!;
    expect(String(lost.error)).toBe('malformed stream MsgApp v2 from the remote peer: failed to parse type 7 in msgappv2 stream');
    expect(a.raft.received).toEqual([]);
  });

  it('drops a frame that is not a raft message, alone: the stream and the messages after it live on', async () => {
    const a = await node(A);
    const m = await fakePeer(Buffer.concat([frame(Buffer.from([0x0a, 0xff, 0xff])), frame(encodeMessage(heartbeat(M, A, 4)))]));
    a.transport.addPeer(M, [m.url]);
    await waitFor('the good message', () => a.raft.received.length === 1);
    expect(a.raft.received[0]).toMatchObject({ from: M, commit: 4 });
    const dropped = a.lines.filter((l) => l.msg === 'dropped a raft message from the remote peer that does not decode');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ level: 40, 'remote-peer-id': '0000000000000003', reason: 'undecodable' });
    expect(dropped[0]!.error).toBe('protobuf decode: wire type 2, expected 0');
    expect(m.dials()).toBe(1);
    expect(a.lines.some((l) => l.msg === 'lost TCP streaming connection with remote peer')).toBe(false);
  });

  it('a flood of heartbeats with terms no member can represent (2^53 .. 2^64-1) is dropped with one log line', async () => {
    const a = await node(A);
    const hostile = [U53, U53 + 1n, 2n ** 63n, 2n ** 64n - 1n].map((term) => frame(rawMessage({ type: MessageType.MsgHeartbeat, from: M, to: A, term })));
    const flood = Array.from({ length: 50 }, (_, i) => hostile[i % hostile.length]!);
    const m = await fakePeer(Buffer.concat([...flood, frame(encodeMessage(heartbeat(M, A, 7)))]));
    a.transport.addPeer(M, [m.url]);
    await waitFor('the good message', () => a.raft.received.length === 1);
    expect(a.raft.received[0]).toMatchObject({ term: 1, commit: 7 });
    const dropped = a.lines.filter((l) => l.msg === 'dropped a raft message from the remote peer that does not decode');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.error).toBe('protobuf decode: Message.term 9007199254740992 is above 2^53-1');
    expect(m.dials()).toBe(1);
  });

  it('messages raft refuses are logged once per sender and reason, not once each', async () => {
    const a = await node(A);
    a.raft.refuse = (msg) => (msg.term > 1 ? new StepError('term-limit', `raft: refused term ${msg.term}`) : undefined);
    const frames = Array.from({ length: 20 }, (_, i) => frame(encodeMessage({ ...heartbeat(M, A), term: 2 + i })));
    const m = await fakePeer(Buffer.concat([...frames, frame(encodeMessage(heartbeat(M, A, 3)))]));
    a.transport.addPeer(M, [m.url]);
    await waitFor('the good message', () => a.raft.received.length === 1);
    const refused = a.lines.filter((l) => l.msg === 'dropped a raft message from the remote peer that raft refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, reason: 'term-limit', 'message-type': 'MsgHeartbeat', error: 'raft: refused term 2' });
    expect(a.lines.some((l) => l.msg === 'failed to process raft message')).toBe(false);
  });

  it('delivers nothing addressed to another member or forged as from another sender', async () => {
    const a = await node(A);
    const bytes = Buffer.concat([
      frame(encodeMessage(heartbeat(M, 0x77n))), // not for A
      frame(encodeMessage(heartbeat(B, A))), // claims to be from B on M's stream
      frame(encodeMessage(heartbeat(M, A, 9))), // fine
      frame(encodeMessage(LINK_HEARTBEAT)), // keeps the connection alive, never reaches raft
    ]);
    const m = await fakePeer(bytes);
    a.transport.addPeer(M, [m.url]);
    await waitFor('good message', () => a.raft.received.length === 1);
    expect(a.raft.received[0]).toMatchObject({ from: M, to: A, commit: 9 });
    expect(a.lines.filter((l) => l.msg === 'dropped raft message not addressed from the remote peer to the local member')).toHaveLength(2);
  });

  it('a stream cut mid-frame is a lost connection, not a crash', async () => {
    const a = await node(A);
    const m = await fakePeer(frame(encodeMessage(app(M, A, 1))).subarray(0, 9), true);
    a.transport.addPeer(M, [m.url]);
    await waitFor('redial', () => m.dials() >= 2);
    const lost = a.lines.find((l) => l.msg === 'lost TCP streaming connection with remote peer')!;
    expect(lost.error).toBe('the remote peer closed the stream in the middle of a message (9 bytes)');
    expect(a.raft.received).toEqual([]);
  });

  it('garbage on the peer port closes that connection; the member keeps serving its peers', async () => {
    const a = await node(A);
    const b = await node(B);
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(Number(new URL(a.url).port), '127.0.0.1', () => s.write(Buffer.from('\x16\x03\x01garbage\r\n\r\n\x00\xff')));
      let text = '';
      s.on('data', (c) => (text += c.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    // A snapshot upload from a member A does not know is refused before its body is read,
    // and a garbage one from a known peer is refused after.
    const unknown = await fetch(`${a.url}/raft/snapshot`, {
      method: 'POST',
      headers: { 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': 'b2', 'X-Server-Version': '3.4.23' },
      body: Buffer.from([0, 0, 0, 3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
    });
    expect(unknown.status).toBe(404);
    connectAll([a, b]);
    const bad = await fetch(`${a.url}/raft/snapshot`, {
      method: 'POST',
      headers: { 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': 'b2', 'X-Server-Version': '3.4.23' },
      body: Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/failed to decode raft message/);
    await waitFor('delivery', () => {
      b.transport.send([app(B, A, 5)]);
      return a.raft.received.some((m) => m.index === 5);
    });
  });
});
