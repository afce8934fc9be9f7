import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType, decodeMessage, encodeMessage, type Message } from '../../src/raftpb/index.js';
import { freePort } from '../../bench/free-port.js';
import { app, connectAll, hasLine, heartbeat, startNode, stopNode, waitFor, type Node, type NodeOptions } from './helpers.js';

/**
 * Peer B as a raw HTTP client in a process of its own: GET URL with etcd's stream headers
 * (from b2 to a1), then create FILE once the body holds the bytes HEX.
 */
const RAW_PEER = `
const [url, hex, file] = process.argv.slice(1);
const want = Buffer.from(hex, 'hex');
const headers = { 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': 'b2', 'X-Raft-To': 'a1', 'X-Server-Version': '3.4.23', 'X-Min-Cluster-Version': '3.0.0' };
require('node:http').get(url, { headers }, (res) => {
  let body = Buffer.alloc(0);
  res.on('data', (d) => {
    body = Buffer.concat([body, d]);
    if (body.includes(want)) require('node:fs').writeFileSync(file, '');
  });
});
`;

/**
 * Peer 5 dialling `to`'s stream by hand, as an etcd peer would (a raw socket, so a test
 * controls when it reads): the connection, its requests (the message stream's unless
 * told) already written, pipelined when more than one.
 */
function dialStream(to: Node, ...endpoints: string[]): net.Socket {
  const socket = net.connect(Number(new URL(to.url).port), '127.0.0.1');
  socket.on('error', () => undefined);
  const request = (endpoint: string): string =>
    `GET /raft/stream/${endpoint}/5 HTTP/1.1\r\nHost: x\r\nX-Etcd-Cluster-ID: c1\r\nX-Server-From: 5\r\nX-Raft-To: a1\r\nX-Server-Version: 3.4.23\r\n\r\n`;
  socket.write((endpoints.length > 0 ? endpoints : ['message']).map(request).join(''));
  return socket;
}

const A = 0xa1n;
const B = 0xb2n;
const C = 0xc3n;

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stopNode(n);
});

async function node(id: bigint, extra: Partial<NodeOptions> = {}): Promise<Node> {
  const n = await startNode({ id, ...extra });
  nodes.push(n);
  return n;
}

function fromPeer(n: Node, from: bigint): Message[] {
  return n.raft.received.filter((m) => m.from === from);
}

async function linked(...ids: bigint[]): Promise<Node[]> {
  const ns: Node[] = [];
  for (const id of ids) ns.push(await node(id));
  connectAll(ns);
  for (const a of ns) for (const b of ns) if (a !== b) await waitFor(`stream ${a.id}→${b.id}`, () => a.transport.activeSince(b.id) !== undefined);
  // Every stream in both directions must be up before sending: until then messages take the
  // pipeline or the message stream, and MsgApps would overtake each other when the msgappv2 stream comes up.
  await waitFor('all streams attached', () =>
    ns.every((a) =>
      ns.every(
        (b) =>
          a === b ||
          ['stream Message', 'stream MsgApp v2'].every((t) =>
            hasLine(b.lines, 'established TCP streaming connection with remote peer', { 'stream-writer-type': t, 'remote-peer-id': a.id.toString(16).padStart(16, '0') }),
          ),
      ),
    ),
  );
  return ns;
}

describe('message streams', () => {
  it('carries thousands of messages between two members in order, both ways', async () => {
    const [a, b] = await linked(A, B);
    const N = 5000;
    const data = Buffer.from('x'.repeat(100));
    for (let i = 0; i < N; i += 50) {
      const batchAB: Message[] = [];
      const batchBA: Message[] = [];
      for (let j = i; j < i + 50; j++) {
        batchAB.push(app(A, B, j, data));
        batchBA.push(heartbeat(B, A, j));
      }
      a!.transport.send(batchAB);
      b!.transport.send(batchBA);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('all messages', () => b!.raft.received.length === N && a!.raft.received.length === N);
    expect(b!.raft.received.map((m) => m.index)).toEqual([...Array(N).keys()]);
    expect(b!.raft.received.every((m) => m.type === MessageType.MsgApp && Buffer.from(m.entries[0]!.data).equals(data))).toBe(true);
    expect(a!.raft.received.map((m) => m.commit)).toEqual([...Array(N).keys()]);
    expect(a!.raft.unreachable).toEqual([]);
    expect(a!.transport.peerCounters(B)!.sentBytes).toBeGreaterThan(N * 100);
    expect(b!.transport.peerCounters(A)!.receivedBytes).toBe(a!.transport.peerCounters(B)!.sentBytes);
  });

  it('keeps per-pair order among three members', async () => {
    const ns = await linked(A, B, C);
    const N = 2000;
    for (let i = 0; i < N; i += 100) {
      for (const from of ns) {
        const batch: Message[] = [];
        for (let j = i; j < i + 100; j++) for (const to of ns) if (to !== from) batch.push(app(from.id, to.id, j));
        from.transport.send(batch);
      }
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('all messages', () => ns.every((n) => n.raft.received.length === 2 * N));
    for (const to of ns) for (const from of ns) if (from !== to) expect(fromPeer(to, from.id).map((m) => m.index)).toEqual([...Array(N).keys()]);
    expect(hasLine(ns[0]!.lines, 'peer became active', { 'peer-id': '00000000000000b2' })).toBe(true);
  });

  it('drops messages to a peer that is down, reports it unreachable, and connects when it comes up', async () => {
    // Reserve a port for B, then free it: B is "down" until it listens there.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const bUrl = `http://127.0.0.1:${port}`;

    const a = await node(A);
    a.transport.addPeer(B, [bUrl]);
    // No stream is up: the message goes on the pipeline (POST /raft), which fails, and raft hears of it.
    expect(() => a.transport.send([heartbeat(A, B)])).not.toThrow();
    await waitFor('B reported unreachable', () => a.raft.unreachable.includes(B));
    expect(hasLine(a.lines, 'failed to send raft message over the pipeline', { 'remote-peer-id': '00000000000000b2' })).toBe(true);
    expect(a.transport.activeSince(B)).toBeUndefined();
    await waitFor('a failed dial', () => hasLine(a.lines, 'failed to dial remote peer', { 'remote-peer-id': '00000000000000b2' }));

    const b = await node(B, { url: bUrl });
    b.transport.addPeer(A, [a.url]);
    await waitFor('A reconnects to B', () => a.transport.activeSince(B) !== undefined);
    await waitFor('B dials in to A', () => hasLine(a.lines, 'established TCP streaming connection with remote peer', { 'stream-writer-type': 'stream Message' }));
    a.transport.send([app(A, B, 7)]);
    await waitFor('delivery after reconnect', () => b.raft.received.some((m) => m.index === 7));

    // B goes away again: A notices the loss, and comes back to B's restart.
    await stopNode(nodes.pop()!);
    await waitFor('A sees B gone', () => a.transport.activeSince(B) === undefined);
    expect(hasLine(a.lines, 'lost TCP streaming connection with remote peer')).toBe(true);
    const b2 = await node(B, { url: bUrl });
    b2.transport.addPeer(A, [a.url]);
    await waitFor('A reconnects to the restarted B', () => a.transport.activeSince(B) !== undefined);
    await waitFor('restarted B dials in', () => {
      a.transport.send([app(A, B, 8)]);
      return b2.raft.received.some((m) => m.index === 8);
    });
  });

  it('a peer that stops reading does not hold up sends to another peer', async () => {
    const [a, b] = await linked(A, B);
    const S = 0x5n;
    a!.transport.addPeer(S, ['http://127.0.0.1:1']); // nothing listens there; A keeps redialling
    // S dials A's stream by hand and never reads a byte of it.
    const slow = dialStream(a!);
    slow.pause();
    await waitFor('S attached', () => hasLine(a!.lines, 'established TCP streaming connection with remote peer', { 'remote-peer-id': '0000000000000005' }));

    // Fill S's socket buffers with big appends, then overflow its queue with small ones.
    const big = Buffer.alloc(1024 * 1024, 1);
    for (let i = 0; i < 32; i++) a!.transport.send([app(A, S, i, big)]);
    await new Promise((r) => setTimeout(r, 50));
    const toS: Message[] = [];
    for (let i = 0; i < 5000; i++) toS.push(heartbeat(A, S, i));
    a!.transport.send(toS);
    expect(a!.raft.unreachable).toContain(S);
    expect(a!.transport.peerCounters(S)!.sentFailures).toBeGreaterThan(0);

    // Meanwhile B gets everything, in order.
    for (let i = 0; i < 2000; i += 100) {
      const batch: Message[] = [];
      for (let j = i; j < i + 100; j++) batch.push(app(A, B, j));
      a!.transport.send(batch);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('B gets all', () => b!.raft.received.length === 2000);
    expect(b!.raft.received.map((m) => m.index)).toEqual([...Array(2000).keys()]);
    expect(a!.raft.unreachable).not.toContain(B);

    // The stalled stream is eventually given up.
    await waitFor('stall detected', () => hasLine(a!.lines, 'lost TCP streaming connection with remote peer', { 'remote-peer-id': '0000000000000005' }));
    slow.destroy();
  });

  it('a peer that stops reading for a while gets every message once it reads again, in well-formed chunks', async () => {
    const a = await node(A);
    const S = 0x5n;
    a.transport.addPeer(S, ['http://127.0.0.1:1']); // nothing listens there; A keeps redialling
    // S dials A's message stream by hand and reads nothing until A's writes back up.
    const peer = dialStream(a);
    const read: Buffer[] = [];
    let bytes = 0;
    peer.on('data', (d: Buffer) => {
      read.push(d);
      bytes += d.length;
    });
    peer.pause();
    try {
      await waitFor('S attached', () => hasLine(a.lines, 'established TCP streaming connection with remote peer', { 'remote-peer-id': '0000000000000005' }));
      // 48 MiB: more than loopback's socket buffers hold, so A's writes must wait for a drain.
      const big = Buffer.alloc(1024 * 1024, 7);
      for (let i = 0; i < 48; i++) a.transport.send([app(A, S, i, big)]);
      await new Promise((r) => setTimeout(r, 300));
      peer.resume();

      // The body, as etcd's stream reader takes it: HTTP/1.1 chunks (a hex size line, the
      // bytes, CRLF), holding 8-byte big-endian lengths, each followed by a message.
      const indexes = (): number[] => {
        const all = Buffer.concat(read);
        const bodyAt = all.indexOf('\r\n\r\n');
        expect(all.subarray(0, bodyAt).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*transfer-encoding: chunked/i);
        const body: Buffer[] = [];
        for (let at = bodyAt + 4; ; ) {
          const eol = all.indexOf('\r\n', at);
          if (eol < 0) break;
          const sizeLine = all.subarray(at, eol).toString('latin1');
          expect(sizeLine).toMatch(/^[0-9a-f]+$/);
          const size = parseInt(sizeLine, 16);
          if (all.length < eol + 2 + size + 2) break;
          expect(all.subarray(eol + 2 + size, eol + 4 + size).toString('latin1')).toBe('\r\n');
          body.push(all.subarray(eol + 2, eol + 2 + size));
          at = eol + 4 + size;
        }
        const stream = Buffer.concat(body);
        const seen: number[] = [];
        for (let at = 0; at + 8 <= stream.length; ) {
          const len = Number(stream.readBigUInt64BE(at));
          if (at + 8 + len > stream.length) break;
          const m = decodeMessage(stream.subarray(at + 8, at + 8 + len));
          if (m.type === MessageType.MsgApp) {
            expect(Buffer.from(m.entries[0]!.data).equals(big)).toBe(true);
            seen.push(m.index);
          }
          at += 8 + len;
        }
        return seen;
      };
      // (This process is also member A: the wait parses only once the byte count allows.)
      await waitFor('S reads all 48', () => bytes >= 48 * big.length && indexes().length === 48, 30_000);
      expect(indexes()).toEqual([...Array(48).keys()]);
      expect(a.raft.unreachable).not.toContain(S);
      expect(hasLine(a.lines, 'lost TCP streaming connection with remote peer', { 'remote-peer-id': '0000000000000005' })).toBe(false);
    } finally {
      peer.destroy();
    }
  });

  it('a stream request pipelined behind another on one connection closes that connection, and the member goes on', async () => {
    const a = await node(A);
    const S = 0x5n;
    a.transport.addPeer(S, ['http://127.0.0.1:1']); // nothing listens there; A keeps redialling
    // The second stream's response could only start once the first (which never ends) did.
    const peer = dialStream(a, 'message', 'msgapp');
    peer.resume();
    const closed = new Promise<void>((resolve) => peer.on('close', () => resolve()));
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 5000))]);
    expect(outcome).toBe('closed');

    // A peer that dials as etcd peers do still gets its stream.
    const again = dialStream(a);
    let got = '';
    again.on('data', (d: Buffer) => (got += d.toString('latin1')));
    try {
      await waitFor('a stream on a connection of its own', () => got.startsWith('HTTP/1.1 200 OK'));
      a.transport.send([heartbeat(A, S, 42)]);
      await waitFor('the heartbeat on it', () => got.includes(Buffer.from(encodeMessage(heartbeat(A, S, 42))).toString('latin1')));
    } finally {
      again.destroy();
    }
  });

  it('follows a peer to its new URLs (member update)', async () => {
    const a = await node(A);
    const b = await node(B);
    a.transport.addPeer(B, ['http://127.0.0.1:1']);
    b.transport.addPeer(A, [a.url]);
    await waitFor('a failed dial', () => hasLine(a.lines, 'failed to dial remote peer', { 'remote-peer-id': '00000000000000b2' }));
    a.transport.updatePeer(B, [b.url]);
    await waitFor('stream to the new URL', () => hasLine(a.lines, 'established TCP streaming connection with remote peer', { 'remote-url': b.url }));
    a.transport.removePeer(B);
    expect(a.transport.activeSince(B)).toBeUndefined();
    expect(a.transport.peerCounters(B)).toBeUndefined();
  });

  it("a message leaves while the sender is still busy with what it queued after sending (a leader's apply of what it commits)", async () => {
    const a = await node(A);
    a.transport.addPeer(B, ['http://127.0.0.1:1']);
    // Peer B is another process: it dials A's message stream as an etcd peer does and
    // creates `arrived` once the heartbeat below is in what it read.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'stream-send-'));
    const arrived = path.join(dir, 'arrived');
    const m = heartbeat(A, B, 7);
    const peerB = spawn(process.execPath, ['-e', RAW_PEER, `${a.url}/raft/stream/message/b2`, Buffer.from(encodeMessage(m)).toString('hex'), arrived], { stdio: 'ignore' });
    try {
      await waitFor('B reading its stream', () => hasLine(a.lines, 'established TCP streaming connection with remote peer', { 'stream-writer-type': 'stream Message' }));
      a.transport.send([m]);
      // Microtasks queued after the send that keep the thread busy, as a leader's apply
      // does: the message must be on the wire already, not waiting for them to end.
      const seen = await Promise.resolve().then(() => {
        for (const giveUp = Date.now() + 10_000; Date.now() < giveUp; ) if (existsSync(arrived)) return true;
        return false;
      });
      expect(seen).toBe(true);
    } finally {
      peerB.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('send never throws: unknown peers and messages to self are ignored', async () => {
    const a = await node(A);
    expect(() => a.transport.send([heartbeat(A, 0x99n), heartbeat(A, A)])).not.toThrow();
    expect(a.raft.unreachable).toEqual([]);
  });
});

describe('refusals', () => {
  it('refuses a peer from another cluster and logs the address and both cluster IDs', async () => {
    const a = await node(A, { clusterId: 0x1111n });
    const b = await node(B, { clusterId: 0x2222n });
    connectAll([a, b]);
    await waitFor('refusal logged on B', () => hasLine(b.lines, 'request cluster ID mismatch'));
    const line = b.lines.find((l) => l.msg === 'request cluster ID mismatch')!;
    expect(line).toMatchObject({
      'local-member-cluster-id': '0000000000002222',
      'remote-peer-cluster-id': '0000000000001111',
      'remote-peer-id': '00000000000000a1',
    });
    expect(String(line['remote-addr'])).toMatch(/^127\.0\.0\.1:\d+$/);
    await waitFor('dialler told', () =>
      hasLine(a.lines, 'request sent was ignored by remote peer due to cluster ID mismatch', {
        'remote-peer-cluster-id': '0000000000002222',
        'local-member-cluster-id': '0000000000001111',
      }),
    );
    expect(a.transport.activeSince(B)).toBeUndefined();
    a.transport.send([heartbeat(A, B)]); // on the pipeline, which B refuses too
    await waitFor('B reported unreachable', () => a.raft.unreachable.includes(B));
    expect(b.raft.received).toEqual([]);
    // A keeps retrying; B says so at warn once, then at debug.
    const refusals = (level: number) => b.lines.filter((l) => l.msg === 'request cluster ID mismatch' && l.level === level).length;
    await waitFor('a repeated refusal', () => refusals(20) >= 1);
    expect(refusals(40)).toBe(1);
  });

  it('refuses a removed member with 410, which tells that member it was removed', async () => {
    const [a, b] = await linked(A, B);
    b!.transport.removePeer(A);
    await waitFor('A told it was removed', () => a!.removedCalls === 1);
    expect(hasLine(b!.lines, 'rejected stream from remote peer because it was removed', { 'remote-peer-id-from': '00000000000000a1' })).toBe(true);
    expect(b!.transport.activeSince(A)).toBeUndefined();
  });

  it('refuses streams as etcd does: version, cluster, path, removed, unknown sender, X-Raft-To', async () => {
    const a = await node(A);
    const get = (headers: Record<string, string>, path = '/raft/stream/message/b2'): Promise<{ status: number; body: string }> =>
      fetch(`${a.url}${path}`, { headers }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const base = { 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': 'b2', 'X-Raft-To': 'a1', 'X-Server-Version': '3.4.23', 'X-Min-Cluster-Version': '3.0.0' };
    expect(await get(base)).toEqual({ status: 404, body: 'error sender not found\n' });
    a.transport.addPeer(B, ['http://127.0.0.1:1']);
    expect(await get({ ...base, 'X-Raft-To': 'a2' })).toEqual({ status: 412, body: 'to field mismatch\n' });
    expect(await get({ ...base, 'X-Etcd-Cluster-ID': 'c2' })).toEqual({ status: 412, body: 'cluster ID mismatch\n' });
    expect(await get({ ...base, 'X-Server-Version': '2.3.7' })).toEqual({ status: 412, body: 'incompatible version\n' });
    expect(await get({ ...base, 'X-Min-Cluster-Version': '3.5.0' })).toEqual({ status: 412, body: 'incompatible version\n' });
    expect(await get({ ...base, 'X-Server-Version': 'three' })).toEqual({ status: 412, body: 'incompatible version\n' });
    expect(await get(base, '/raft/stream/msgappv3/b2')).toEqual({ status: 404, body: 'invalid path\n' });
    expect(await get(base, '/raft/stream/message/zz')).toEqual({ status: 404, body: 'invalid from\n' });
    expect((await get(base, '/raft/stream/message/b3')).status).toBe(404);
    a.transport.removePeer(B);
    expect(await get(base)).toEqual({ status: 410, body: 'removed member\n' });
    expect((await get(base, '/nope')).status).toBe(404);
    expect(hasLine(a.lines, 'failed to check version compatibility')).toBe(true);
  });

  it('the pipeline takes one message per POST /raft, answers 204, and tells a removed member 403', async () => {
    const a = await node(A);
    a.transport.addPeer(B, ['http://127.0.0.1:1']);
    const post = (body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> =>
      fetch(`${a.url}/raft`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'application/protobuf', 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': 'b2', 'X-Server-Version': '3.4.23', 'X-Min-Cluster-Version': '3.0.0', ...headers },
      }).then(async (r) => ({ status: r.status, body: await r.text() }));
    expect(await post(encodeMessage(heartbeat(B, A, 5)))).toEqual({ status: 204, body: '' });
    expect(a.raft.received).toMatchObject([{ type: MessageType.MsgHeartbeat, from: B, commit: 5 }]);
    expect(await post(encodeMessage(heartbeat(B, A)), { 'X-Etcd-Cluster-ID': 'c9' })).toEqual({ status: 412, body: 'cluster ID mismatch\n' });
    expect(await post(Buffer.from([0x0a, 0xff]))).toEqual({ status: 400, body: 'error unmarshalling raft message\n' });
    expect((await fetch(`${a.url}/raft`)).status).toBe(405);
    a.transport.removePeer(B);
    expect((await post(encodeMessage(heartbeat(B, A)))).status).toBe(403);
    expect(a.raft.received).toHaveLength(1);
    expect(await (await fetch(`${a.url}/raft/probing`)).json()).toMatchObject({ OK: true });
  });

  it('a member answered 403 on the pipeline learns it was removed', async () => {
    const a = await node(A);
    const b = await node(B);
    a.transport.addPeer(B, [b.url]);
    b.transport.removePeer(A);
    a.transport.send([heartbeat(A, B)]); // no stream can come up: the pipeline carries it
    await waitFor('A told it was removed', () => a.removedCalls === 1);
  });
});

describe("remotes (etcd's rafthttp/remote.go)", () => {
  /** B advertises its URL in X-PeerURLs, as every member does; A does not know B (B was added while A was down). */
  async function unknownSender(): Promise<{ a: Node; b: Node }> {
    const url = `http://127.0.0.1:${await freePort()}`;
    const a = await node(A);
    const b = await node(B, { url, peerUrls: [url] });
    b.transport.addPeer(A, [a.url]);
    return { a, b };
  }

  it("steps a pipeline message from a sender it does not know, and answers it on the pipeline to the URLs the sender named", async () => {
    const { a, b } = await unknownSender();
    // A refuses B's streams (404, sender not found), so B's messages take the pipeline
    b.transport.send([heartbeat(B, A, 7)]);
    await waitFor("A steps B's heartbeat", () => fromPeer(a, B).length > 0);
    expect(fromPeer(a, B)).toMatchObject([{ type: MessageType.MsgHeartbeat, commit: 7 }]);
    expect(hasLine(a.lines, 'added new remote peer', { 'remote-peer-id': B.toString(16).padStart(16, '0') })).toBe(true);
    a.transport.send([{ ...heartbeat(A, B), type: MessageType.MsgHeartbeatResp }]);
    await waitFor("B hears A's answer", () => fromPeer(b, A).some((m) => m.type === MessageType.MsgHeartbeatResp));

    // once A knows B as a peer (the ConfChange applied), the streams come up between them
    a.transport.addPeer(B, [b.url]);
    await waitFor('streams both ways', () => a.transport.canSendTo(B) && b.transport.canSendTo(A));
  });

  it('adds no remote from an X-PeerURLs it cannot dial, nor for a removed member', async () => {
    const a = await node(A);
    const post = (from: string, peerUrls: string): Promise<number> =>
      fetch(`${a.url}/raft`, {
        method: 'POST',
        body: encodeMessage(heartbeat(BigInt(`0x${from}`), A)),
        headers: { 'Content-Type': 'application/protobuf', 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': from, 'X-Server-Version': '3.4.23', 'X-PeerURLs': peerUrls },
      }).then((r) => r.status);
    expect(await post('b2', 'not a url')).toBe(204);
    expect(await post('c3', 'ftp://127.0.0.1:1')).toBe(204);
    a.transport.removePeer(0xd4n);
    expect(await post('d4', 'http://127.0.0.1:1')).toBe(403);
    expect(hasLine(a.lines, 'added new remote peer')).toBe(false);
    // raft still heard the first two, as etcd steps a message from any member that was not removed
    expect(a.raft.received.map((m) => m.from)).toEqual([B, C]);
  });
});
