// A member's listeners are bound before the member exists (etcd's StartEtcd binds them
// before NewServer): connections made meanwhile are held, not refused or answered by
// anything else, and served once serve() hands the handlers over — client connections only
// once the member has published itself. A port that cannot be bound releases the others.

import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/free-port.js';
import { defaultConfig } from '../../src/server/config/index.js';
import { GrpcServer } from '../../src/server/listener/index.js';
import { type MemberHandlers, type MemberListeners, bindMemberListeners } from '../../src/server/member-listeners.js';
import { captureLogger } from '../listener/helpers.js';

const open: MemberListeners[] = [];
afterAll(async () => {
  await Promise.all(open.flatMap((l) => [...l.peers, ...l.clients.map((c) => c.listener), ...l.metrics]).map((l) => l.close()));
});

async function configOnFreePorts(): Promise<ReturnType<typeof defaultConfig>> {
  const [client, peer, metrics] = await Promise.all([freePort(), freePort(), freePort()]).then((ps) => ps.map((p) => new URL(`http://127.0.0.1:${p}`)));
  return defaultConfig({
    name: 'm',
    dataDir: path.join('/nonexistent', 'm.etcd'),
    listenClientUrls: [client!],
    advertiseClientUrls: [client!],
    listenPeerUrls: [peer!],
    initialAdvertisePeerUrls: [peer!],
    initialCluster: new Map([['m', [peer!]]]),
    listenMetricsUrls: [metrics!],
  });
}

const grpcServer = (): GrpcServer => new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });

/** GET `url`, resolving with the body once answered; `connected` resolves once the TCP connection is up. */
function get(url: string): { connected: Promise<void>; body: Promise<string> } {
  let connected!: () => void;
  const connectedP = new Promise<void>((r) => (connected = r));
  const body = new Promise<string>((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('socket', (s) => s.once('connect', connected));
    req.on('error', reject);
  });
  return { connected: connectedP, body };
}

const answer =
  (text: string): http.RequestListener =>
  (_req, res) =>
    res.end(text);

describe('bindMemberListeners', () => {
  it('holds peer, metrics and client requests made before the member exists and serves them once it does, clients once it has published', async () => {
    const cfg = await configOnFreePorts();
    const listeners = await bindMemberListeners(cfg, { peer: undefined, client: undefined }, grpcServer(), captureLogger().logger);
    open.push(listeners);
    const events: string[] = [];
    const early = {
      peer: get(`${listeners.peers[0]!.url}/probe`),
      metrics: get(`${listeners.metrics[0]!.url}/metrics`),
      client: get(`${listeners.clients[0]!.urls[0]}/version`),
    };
    for (const [name, r] of Object.entries(early)) void r.body.then(() => events.push(`${name} answered`));
    await Promise.all(Object.values(early).map((r) => r.connected));

    let publish!: () => void;
    const handlers: MemberHandlers = {
      peer: answer('from the transport'),
      client: answer('from the client handler'),
      metrics: answer('from the metrics handler'),
      published: new Promise<void>((r) => (publish = r)),
    };
    events.push('serve');
    listeners.serve(handlers);
    expect(await early.peer.body).toBe('from the transport');
    expect(await early.metrics.body).toBe('from the metrics handler');

    events.push('published');
    publish();
    expect(await early.client.body).toBe('from the client handler');
    expect(events.indexOf('serve')).toBe(0);
    expect(events.indexOf('client answered')).toBeGreaterThan(events.indexOf('published'));
  });

  it('closes the listeners it bound when a later one cannot be bound, and says which address', async () => {
    const cfg = await configOnFreePorts();
    const metricsUrl = cfg.listenMetricsUrls[0]!;
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(Number(metricsUrl.port), '127.0.0.1', r));
    try {
      await expect(bindMemberListeners(cfg, { peer: undefined, client: undefined }, grpcServer(), captureLogger().logger)).rejects.toThrow(
        `listen tcp 127.0.0.1:${metricsUrl.port}: bind: address already in use`,
      );
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
    // the peer and client ports are free again: another program can bind them
    for (const url of [cfg.listenPeerUrls[0]!, cfg.listenClientUrls[0]!]) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(Number(url.port), '127.0.0.1', resolve);
      });
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
