import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Member } from '../../src/server/membership.js';
import { loadTls, type TlsContext } from '../../src/server/tls.js';
import { fetchClusterMembers } from '../../src/server/transport/index.js';
import { app, connectAll, hasLine, makePki, startNode, stopNode, waitFor, type Node, type TestPki } from './helpers.js';

const A = 0xa1n;
const B = 0xb2n;
const R = 0xeen;

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stopNode(n);
});

function peerTls(cert: string, key: string): Promise<TlsContext> {
  return loadTls({ certFile: cert, keyFile: key, trustedCaFile: pki.ca, clientCertAuth: true, autoTls: false }, '/nonexistent', ['127.0.0.1']);
}

describe('mutual TLS', () => {
  it('members with certificates from the trusted CA exchange messages', async () => {
    const tls = await peerTls(pki.cert, pki.key);
    const a = await startNode({ id: A, tls });
    const b = await startNode({ id: B, tls });
    nodes.push(a, b);
    expect(a.url).toMatch(/^https:/);
    connectAll([a, b]);
    await waitFor('streams up', () => a.transport.activeSince(B) !== undefined && b.transport.activeSince(A) !== undefined);
    await waitFor('delivery', () => {
      a.transport.send([app(A, B, 1)]);
      b.transport.send([app(B, A, 2)]);
      return b.raft.received.some((m) => m.index === 1) && a.raft.received.some((m) => m.index === 2);
    });
  });

  it('refuses a peer whose certificate the CA did not sign, logging its address', async () => {
    const a = await startNode({ id: A, tls: await peerTls(pki.cert, pki.key) });
    const r = await startNode({ id: R, tls: await peerTls(pki.rogueCert, pki.rogueKey) });
    nodes.push(a, r);
    connectAll([a, r]);
    await waitFor('handshake refused by A', () => hasLine(a.lines, 'rejected connection'));
    const line = a.lines.find((l) => l.msg === 'rejected connection')!;
    expect(String(line['remote-addr'])).toMatch(/^127\.0\.0\.1:\d+$/);
    // A, dialling the rogue, does not trust its certificate either.
    await waitFor('A refuses to dial the rogue', () => hasLine(a.lines, 'failed to dial remote peer', { 'remote-peer-id': '00000000000000ee' }));
    await waitFor('rogue fails to dial', () => hasLine(r.lines, 'failed to dial remote peer', { 'remote-peer-id': '00000000000000a1' }));
    r.transport.send([app(R, A, 1)]);
    a.transport.send([app(A, R, 1)]);
    expect(a.transport.activeSince(R)).toBeUndefined();
    expect(r.transport.activeSince(A)).toBeUndefined();
    expect(a.raft.received).toEqual([]);
    expect(r.raft.received).toEqual([]);
  });
});

describe('join support', () => {
  const members: Member[] = [
    { id: 0x8e9e05c52164694dn, name: 'infra0', peerUrls: ['http://10.0.1.10:2380'], clientUrls: ['http://10.0.1.10:2379'], isLearner: false },
    { id: 0xfd422379fda50e48n, name: '', peerUrls: ['http://10.0.1.12:2380', 'http://10.0.1.13:2380'], clientUrls: [], isLearner: true },
  ];

  it('fetchClusterMembers returns the cluster ID and exact 64-bit member IDs from a live member', async () => {
    const a = await startNode({ id: A, clusterId: 0xcdf818194e3a8c32n, members: () => members });
    nodes.push(a);
    const got = await fetchClusterMembers(['http://127.0.0.1:1', a.url], undefined, 2000);
    expect(got.clusterId).toBe(0xcdf818194e3a8c32n);
    expect(got.members).toEqual(members.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] })));
  });

  it('fetchClusterMembers works over TLS and says which URLs failed', async () => {
    const tls = await peerTls(pki.cert, pki.key);
    const a = await startNode({ id: A, tls, members: () => members.slice(0, 1) });
    nodes.push(a);
    expect((await fetchClusterMembers([a.url], tls, 2000)).members).toHaveLength(1);
    await expect(fetchClusterMembers(['http://127.0.0.1:1'], undefined, 2000)).rejects.toThrow(
      /could not retrieve cluster information from the given URLs \(http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
  });

  it('serves /members in etcd JSON and /version', async () => {
    const a = await startNode({ id: A, clusterId: 0xc1n, members: () => members });
    nodes.push(a);
    const res = await fetch(`${a.url}/members`);
    expect(res.headers.get('x-etcd-cluster-id')).toBe('c1');
    expect(await res.text()).toBe(
      '[{"id":10276657743932975437,"peerURLs":["http://10.0.1.10:2380"],"name":"infra0","clientURLs":["http://10.0.1.10:2379"]},' +
        '{"id":18249187646912138824,"peerURLs":["http://10.0.1.12:2380","http://10.0.1.13:2380"],"isLearner":true}]',
    );
    expect(await (await fetch(`${a.url}/version`)).json()).toEqual({ etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    expect((await fetch(`${a.url}/members`, { method: 'POST' })).status).toBe(405);
  });
});

