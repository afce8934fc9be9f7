// The peer prober (etcd's rafthttp probing): the smoothed round trip it reports for
// etcd_network_peer_round_trip_time_seconds, and the warnings etcd logs for a peer that
// does not answer and for a clock that runs ahead of a peer's. Peers are real transports
// on loopback, or a plain HTTP server standing in for a peer whose clock or answers are wrong.

import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { freePort } from '../../bench/free-port.js';
import { loadTls } from '../../src/server/tls.js';
import { connectAll, hasLine, makePki, startNode, stopNode, waitFor, type Node } from './helpers.js';

/** Probes every 20 ms, reports every 100 ms (etcd: 4 s and 30 s). */
const FAST = { probeMs: 20, monitorMs: 100, errorMs: 100 };

const nodes: Node[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stopNode(n);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function node(id: bigint, onPeerRoundTrip?: (id: bigint, seconds: number) => void): Promise<Node> {
  const n = await startNode({ id, probing: FAST, ...(onPeerRoundTrip !== undefined ? { onPeerRoundTrip } : {}) });
  nodes.push(n);
  return n;
}

/** A stand-in peer: answers every request with `answer`; counts the probes it gets and the connections they came on. */
async function fakePeer(answer: (res: http.ServerResponse) => void): Promise<{ url: string; probes: () => number; connections: () => number }> {
  let probes = 0;
  const sockets = new Set<unknown>();
  const server = http.createServer((req, res) => {
    if (req.url === '/raft/probing') {
      probes++;
      sockets.add(req.socket);
    }
    answer(res);
  });
  const connections = () => sockets.size;
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probes: () => probes, connections };
}

function reported(lines: Node['lines'], msg: string): Array<Record<string, unknown>> {
  return lines.filter((l) => l.msg === msg);
}

it('reports the smoothed round trip to each peer, and no warning while the peers answer in step', async () => {
  const seen: Array<{ id: bigint; seconds: number }> = [];
  const a = await node(0xa1n, (id, seconds) => seen.push({ id, seconds }));
  const b = await node(0xb2n);
  connectAll([a, b]);
  await waitFor('three reports with a round trip measured', () => seen.filter((s) => s.seconds > 0).length >= 3);
  expect(new Set(seen.map((s) => s.id))).toEqual(new Set([0xb2n]));
  // a loopback round trip: well under a second
  expect(Math.max(...seen.map((s) => s.seconds))).toBeLessThan(1);
  expect(reported(a.lines, 'prober detected unhealthy status').filter((l) => l['rtt'] !== '0s')).toEqual([]);
  expect(reported(a.lines, 'prober found high clock drift')).toEqual([]);
});

it('probes over mutual TLS with the peer certificates', async () => {
  const pki = makePki();
  try {
    const tls = await loadTls({ certFile: pki.cert, keyFile: pki.key, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false }, '/nonexistent', ['127.0.0.1']);
    const seen: number[] = [];
    const a = await startNode({ id: 0xa1n, tls, probing: FAST, onPeerRoundTrip: (_id, seconds) => seen.push(seconds) });
    const b = await startNode({ id: 0xb2n, tls, probing: FAST });
    nodes.push(a, b);
    connectAll([a, b]);
    await waitFor('two reports with a round trip measured', () => seen.filter((s) => s > 0).length >= 2);
    expect(reported(a.lines, 'prober detected unhealthy status').filter((l) => l['rtt'] !== '0s')).toEqual([]);
  } finally {
    rmSync(pki.dir, { recursive: true, force: true });
  }
});

it('warns about a peer that does not answer, naming the error, every report until it answers', async () => {
  const a = await node(0xa1n);
  a.transport.addPeer(0xb2n, [`http://127.0.0.1:${await freePort()}`]);
  await waitFor('two unhealthy reports', () => reported(a.lines, 'prober detected unhealthy status').filter((l) => typeof l['error'] === 'string').length >= 2);
  const line = reported(a.lines, 'prober detected unhealthy status').find((l) => typeof l['error'] === 'string')!;
  expect(line).toMatchObject({ 'round-tripper-name': 'ROUND_TRIPPER_RAFT_MESSAGE', 'remote-peer-id': '00000000000000b2', level: 40 });
  expect(line['error']).toMatch(/ECONNREFUSED/);
});

it('warns about a peer that answers with an error status, as etcd words it', async () => {
  const peer = await fakePeer((res) => {
    res.writeHead(500);
    res.end('boom');
  });
  const a = await node(0xa1n);
  a.transport.addPeer(0xb2n, [peer.url]);
  await waitFor('an unhealthy report', () => hasLine(a.lines, 'prober detected unhealthy status', { error: `got unexpected HTTP status code 500 Internal Server Error from ${peer.url}/raft/probing` }));
});

it("warns when this member's clock runs more than a second ahead of a peer's, and not when the peer's runs ahead", async () => {
  const behind = await fakePeer((res) => res.end(`${JSON.stringify({ OK: true, Now: new Date(Date.now() - 3000).toISOString() })}\n`));
  const ahead = await fakePeer((res) => res.end(`${JSON.stringify({ OK: true, Now: new Date(Date.now() + 3000).toISOString() })}\n`));
  const a = await node(0xa1n);
  a.transport.addPeer(0xb2n, [behind.url]);
  a.transport.addPeer(0xc3n, [ahead.url]);
  await waitFor('a drift report', () => reported(a.lines, 'prober found high clock drift').length >= 2);
  const drifts = reported(a.lines, 'prober found high clock drift');
  expect(new Set(drifts.map((l) => l['remote-peer-id']))).toEqual(new Set(['00000000000000b2']));
  // about 3 s, less half a loopback round trip: printed as Go prints a duration
  expect(drifts[0]!['clock-drift']).toMatch(/^(2\.9\d*|3(\.0\d*)?)s$/);
  expect(drifts[0]).toMatchObject({ 'round-tripper-name': 'ROUND_TRIPPER_RAFT_MESSAGE', level: 40 });
  expect(reported(a.lines, 'prober detected unhealthy status').filter((l) => l['rtt'] !== '0s')).toEqual([]);
});

it('takes an answer that is not a probing answer for an unhealthy peer', async () => {
  const peer = await fakePeer((res) => res.end('{"OK":false}\n'));
  const a = await node(0xa1n);
  a.transport.addPeer(0xb2n, [peer.url]);
  await waitFor('an unhealthy report', () => hasLine(a.lines, 'prober detected unhealthy status', { error: `not a probing answer from ${peer.url}/raft/probing` }));
});

it('probes on one kept-alive connection, and stops probing a peer once it is removed', async () => {
  const peer = await fakePeer((res) => res.end(`${JSON.stringify({ OK: true, Now: new Date().toISOString() })}\n`));
  const a = await node(0xa1n);
  a.transport.addPeer(0xb2n, [peer.url]);
  await waitFor('a few probes', () => peer.probes() >= 5);
  // the round trip is a request's, not a connection's handshake
  expect(peer.connections()).toBe(1);
  a.transport.removePeer(0xb2n);
  const after = peer.probes();
  await new Promise((r) => setTimeout(r, 10 * FAST.probeMs));
  expect(peer.probes()).toBeLessThanOrEqual(after + 1);
});
