// `etcd-ts grpc-proxy start` in front of real clusters: stock etcdctl through the proxy
// (KV, cache, txn, watch, lease keep-alive, lock, elect, member list), a member killed
// under it, a write held while no member can be reached, --namespace, the Common Name
// refusal over mutual TLS, registration under --resolver-prefix, and watch coalescing —
// 1,200 watchers on one key through the proxy are one watcher on the member (etcd-ts's
// and real etcd 3.4.23's) and all get every event.

import { spawn } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { makeLeaf, makePki } from '../listener/helpers.js';
import { EtcdClient } from './client.js';
import { clientUrl, eventually, leaderIndex, planCluster, startCluster, startSlot } from './cluster-harness.js';
import { cleanup, command, ctl, etcdctl, freePort, spawnCtl, spawnWatch, startMember, stopMember, tempDir } from './harness.js';

afterAll(cleanup);

interface Proxy {
  addr: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

const running = new Set<Proxy>();
afterAll(async () => {
  for (const p of running) await p.stop();
});

/** Starts a grpc-proxy (etcd-ts's unless `which` says etcd) and waits for "started gRPC proxy". */
async function startProxy(args: string[], which: 'etcd-ts' | 'etcd' = 'etcd-ts', wait = true): Promise<Proxy> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const argv = ['grpc-proxy', 'start', '--listen-addr', addr, ...args];
  const run = command(argv, which);
  const proc = spawn(run.cmd, run.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const p: Proxy = {
    addr,
    output: () => out,
    exited,
    stop: () => {
      running.delete(p);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
  running.add(p);
  if (!wait) return p;
  const deadline = Date.now() + 20_000;
  let gone = false;
  void exited.then(() => (gone = true));
  while (!out.includes('started gRPC proxy')) {
    if (gone || Date.now() > deadline) throw new Error(`grpc-proxy did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

function sample(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const scrape = (url: string): Promise<string> => fetch(`${url}/metrics`).then((r) => r.text());

describe('etcd-ts grpc-proxy in front of a three-member etcd-ts cluster', () => {
  it('serves stock etcdctl, and its clients keep working when a member dies', async () => {
    const plan = await planCluster(3, 'gp');
    const members = await startCluster(plan);
    const proxy = await startProxy([`--endpoints=${plan.slots.map(clientUrl).join(',')}`]);
    const px = proxy.addr;
    try {
      expect(await ctl(px, ['put', 'k', 'v1'])).toBe('OK\n');
      expect(await ctl(clientUrl(plan.slots[1]!), ['get', 'k', '--print-value-only'])).toBe('v1\n');
      expect(await ctl(px, ['get', 'k', '--print-value-only'])).toBe('v1\n');
      expect(await ctl(px, ['get', 'k', '--consistency=s', '--print-value-only'])).toBe('v1\n');
      // a write through the proxy drops the cached answer
      expect(await ctl(px, ['put', 'k', 'v2'])).toBe('OK\n');
      expect(await ctl(px, ['get', 'k', '--consistency=s', '--print-value-only'])).toBe('v2\n');
      expect(await ctl(px, ['txn'], 'value("k") = "v2"\n\nput t yes\n\nput t no\n\n')).toBe('SUCCESS\n\nOK\n');
      expect(await ctl(px, ['get', 't', '--print-value-only'])).toBe('yes\n');
      expect(await ctl(px, ['del', 't'])).toBe('1\n');

      // the member list is the proxy itself, as etcd's proxy answers it
      expect(await ctl(px, ['member', 'list'])).toMatch(/^0, started, [^,]+, , 127\.0\.0\.1:23790, false\n$/);
      expect(await ctl(px, ['endpoint', 'status'])).toContain(`${px}, `);

      const watch = await spawnWatch(px, ['w', '--prefix']);
      const lease = (await ctl(px, ['lease', 'grant', '30'])).split(' ')[1]!;
      const keepAlive = spawnCtl(px, ['lease', 'keep-alive', lease]);
      await keepAlive.waitOutput(`lease ${lease} keepalived with TTL(30)`);
      expect(await ctl(px, ['put', 'w1', 'a', `--lease=${lease}`])).toBe('OK\n');
      await watch.waitOutput('PUT\nw1\na\n');
      expect(await ctl(px, ['lock', 'l', 'echo', 'locked'])).toBe('locked\n');
      const elect = spawnCtl(px, ['elect', 'e', 'p1']);
      await elect.waitOutput('p1\n');
      expect(await ctl(px, ['elect', '-l', 'e'])).toMatch(/^e\/[0-9a-f]+\np1\n$/);
      await elect.kill();

      // the leader: the cluster elects another, which must not end the clients' streams
      await stopMember(members[await leaderIndex(members)]!, 'SIGKILL');
      for (let i = 0; i < 4; i++) {
        expect(await ctl(px, ['put', `w${i}`, `after-${i}`])).toBe('OK\n');
        expect(await ctl(px, ['get', `w${i}`, '--print-value-only'])).toBe(`after-${i}\n`);
      }
      // the watch and the keep-alive opened before the kill carry on
      await watch.waitOutput('PUT\nw3\nafter-3\n');
      const seen = keepAlive.output().split('keepalived').length;
      await eventually(async () => expect(keepAlive.output().split('keepalived').length).toBeGreaterThan(seen), 20_000);
      expect(await ctl(px, ['lease', 'timetolive', lease])).toMatch(/remaining\((2\d|30)s\)/);
      await watch.kill();
      await keepAlive.kill();
    } finally {
      await proxy.stop();
      await Promise.all(members.map((m) => stopMember(m)));
    }
  }, 300_000);
});

describe('etcd-ts grpc-proxy when the member under its shared watch fails', () => {
  it('moves the watch to another member without telling the client `created` again or losing an event', async () => {
    const plan = await planCluster(3, 'gw');
    const members = await startCluster(plan);
    const proxy = await startProxy([`--endpoints=${plan.slots.map(clientUrl).join(',')}`]);
    const px = proxy.addr;
    try {
      const watch = await spawnWatch(px, ['mv', '--prefix']);
      expect(await ctl(px, ['put', 'mv0', 'first'])).toBe('OK\n');
      await watch.waitOutput('PUT\nmv0\nfirst\n');
      // one member after another (a quorum stays up): one of them carries the proxy's watch
      for (let i = 0; i < 3; i++) {
        await stopMember(members[i]!, 'SIGKILL');
        expect(await ctl(px, ['put', `mv${i + 1}`, `after-${i}`])).toBe('OK\n');
        await watch.waitOutput(`PUT\nmv${i + 1}\nafter-${i}\n`);
        members[i] = await startSlot(plan, plan.slots[i]!);
      }
      expect(watch.stderr()).not.toContain('panic');
      await watch.kill();
    } finally {
      await proxy.stop();
      await Promise.all(members.map((m) => stopMember(m)));
    }
  });
});

describe('etcd-ts grpc-proxy when no member can be reached', () => {
  it('holds a write until its deadline, as etcd 3.4.23\'s proxy does, and sends it once a member is back', async () => {
    const port = await freePort();
    const endpoint = `127.0.0.1:${port}`;
    const ours = await startProxy([`--endpoints=${endpoint}`]);
    const etcds = await startProxy([`--endpoints=${endpoint}`], 'etcd');
    try {
      // nothing listens on the endpoint: both proxies wait for it until the client gives up
      for (const px of [ours, etcds]) {
        const r = await etcdctl(px.addr, ['put', 'k', 'v', '--command-timeout=2s']);
        expect(r.code).toBe(1);
        // etcdctl's own deadline, or the proxy's answer when it comes first (etcd's: code Unknown)
        expect(r.stderr.trim().split('\n').pop()).toMatch(/^Error: (rpc error: code = Unknown desc = )?context deadline exceeded$/);
      }
      // a member that comes up while a write waits gets it
      const put = spawnCtl(ours.addr, ['put', 'k', 'waited', '--command-timeout=60s']);
      const m = await startMember({ name: 'late', clientPort: port });
      try {
        expect(await put.exited).toBe(0);
        expect(put.output()).toBe('OK\n');
        expect(await ctl(m.clientUrl, ['get', 'k', '--print-value-only'])).toBe('waited\n');
      } finally {
        await stopMember(m);
      }
    } finally {
      await ours.stop();
      await etcds.stop();
    }
  });
});

describe('etcd-ts grpc-proxy --namespace', () => {
  it('keeps the clients inside the prefix and strips it from answers and events', async () => {
    const m = await startMember({ name: 'ns' });
    const proxy = await startProxy(['--endpoints', m.clientUrl, '--namespace', 'tenant/']);
    try {
      await ctl(m.clientUrl, ['put', 'outside', 'x']);
      const watch = await spawnWatch(proxy.addr, ['k', '--prev-kv']);
      expect(await ctl(proxy.addr, ['put', 'k', 'v1'])).toBe('OK\n');
      expect(await ctl(proxy.addr, ['put', 'k', 'v2'])).toBe('OK\n');
      // etcdctl prints the previous value before the new one
      await watch.waitOutput('PUT\nk\nv1\nk\nv2\n');
      expect(await ctl(m.clientUrl, ['get', 'tenant/k', '--print-value-only'])).toBe('v2\n');
      expect(await ctl(proxy.addr, ['get', '', '--prefix'])).toBe('k\nv2\n');
      expect(await ctl(proxy.addr, ['txn'], 'value("k") = "v2"\n\nput j yes\n\n\n')).toBe('SUCCESS\n\nOK\n');
      expect(await ctl(m.clientUrl, ['get', 'tenant/', '--prefix', '--keys-only'])).toBe('tenant/j\n\ntenant/k\n\n');
      expect(await ctl(proxy.addr, ['del', '', '--prefix'])).toBe('2\n');
      expect(await ctl(m.clientUrl, ['get', 'outside', '--print-value-only'])).toBe('x\n');
      await watch.kill();
    } finally {
      await proxy.stop();
      await stopMember(m);
    }
  });
});

describe('etcd-ts grpc-proxy TLS toward the cluster', () => {
  it('refuses a client certificate with a Common Name as etcd does, and works through one without', async () => {
    const pki = makePki(tempDir('listener-pki-'));
    makeLeaf(pki.dir, 'ca', 'nocn', '/O=etcd-ts proxy');
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const m = await startMember({
      name: 'tls',
      clientPort: port,
      args: ['--listen-client-urls', url, '--advertise-client-urls', url, '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth'],
    });
    try {
      const named = await startProxy(['--endpoints', url, '--cert', pki.clientCert, '--key', pki.clientKey, '--cacert', pki.ca], 'etcd-ts', false);
      expect(await named.exited).toBe(1);
      expect(named.output()).toContain('cert has non empty Common Name (root)\n');

      const unnamed = await startProxy(['--endpoints', url, '--cert', path.join(pki.dir, 'nocn.pem'), '--key', path.join(pki.dir, 'nocn-key.pem'), '--cacert', pki.ca]);
      expect(await ctl(unnamed.addr, ['put', 'over-tls', 'ok'])).toBe('OK\n');
      expect(await ctl(unnamed.addr, ['get', 'over-tls', '--print-value-only'])).toBe('ok\n');
      await unnamed.stop();
    } finally {
      await stopMember(m);
    }
  });
});

describe('etcd-ts grpc-proxy --resolver-prefix', () => {
  it('registers each proxy with a lease, and lists the registered proxies as the members', async () => {
    const m = await startMember({ name: 'reg' });
    const [a, b] = await Promise.all([freePort(), freePort()]);
    const reg = (port: number) => ['--endpoints', m.clientUrl, '--resolver-prefix', 'proxies', '--resolver-ttl', '5', '--advertise-client-url', `127.0.0.1:${port}`];
    const p1 = await startProxy(reg(a));
    const p2 = await startProxy(reg(b));
    try {
      await eventually(async () => {
        const list = await ctl(p1.addr, ['member', 'list']);
        expect(list).toContain(`127.0.0.1:${a}`);
        expect(list).toContain(`127.0.0.1:${b}`);
      });
      expect(p1.output()).toContain(`registered \\"127.0.0.1:${a}\\" with 5-second lease`);
      const value = await ctl(m.clientUrl, ['get', `proxies/127.0.0.1:${b}`, '--print-value-only']);
      expect(JSON.parse(value)).toMatchObject({ Op: 0, Addr: `127.0.0.1:${b}` });
      // a proxy that stops is dropped from the list once its lease expires
      await p2.stop();
      await eventually(async () => expect(await ctl(p1.addr, ['member', 'list'])).not.toContain(`127.0.0.1:${b}`), 20_000);
    } finally {
      await p1.stop();
      await stopMember(m);
    }
  });

  it('refuses bad flags with etcd words and exit codes', async () => {
    const unknown = await startProxy(['--no-such-flag'], 'etcd-ts', false);
    expect(await unknown.exited).toBe(1);
    expect(unknown.output()).toContain('Error: unknown flag: --no-such-flag\n');
    const noTtl = await startProxy(['--resolver-prefix', 'p'], 'etcd-ts', false);
    expect(await noTtl.exited).toBe(1);
    expect(noTtl.output()).toBe('invalid resolver-ttl 0\n');
    const noPrefix = await startProxy(['--resolver-ttl', '3'], 'etcd-ts', false);
    expect(await noPrefix.exited).toBe(1);
    expect(noPrefix.output()).toBe('invalid resolver-prefix ""\n');
  });
});

/** `n` watches on `key` spread over `streams` watch streams of one raw gRPC client. */
async function openWatchers(client: EtcdClient, key: string, streams: number, perStream: number, startRevision = 0) {
  const received: string[][] = [];
  const calls: grpc.ClientDuplexStream<object, Record<string, unknown>>[] = [];
  let created = 0;
  for (let s = 0; s < streams; s++) {
    const call = (client.watch as unknown as { Watch(): grpc.ClientDuplexStream<object, Record<string, unknown>> }).Watch();
    call.on('error', () => undefined);
    const base = received.length;
    for (let i = 0; i < perStream; i++) received.push([]);
    call.on('data', (r: { watch_id: string; created: boolean; events: Array<{ kv: { value: Buffer } }> }) => {
      if (r.created) created++;
      for (const e of r.events ?? []) received[base + Number(r.watch_id)]!.push(e.kv.value.toString());
    });
    for (let i = 0; i < perStream; i++) call.write({ create_request: { key: Buffer.from(key), start_revision: startRevision } });
    calls.push(call);
  }
  await eventually(async () => expect(created).toBe(streams * perStream), 60_000);
  return { received, close: () => calls.forEach((c) => c.cancel()) };
}

describe.each(['etcd-ts', 'etcd'] as const)('watch coalescing through etcd-ts grpc-proxy, upstream %s', (upstream) => {
  it('1,200 watchers on one key are one watcher on the member, and every one gets every event', async () => {
    const m = await startMember({ name: `co-${upstream}`, binary: upstream });
    const metricsUrl = `http://127.0.0.1:${await freePort()}`;
    const proxy = await startProxy(['--endpoints', m.clientUrl, '--metrics-addr', metricsUrl]);
    const client = new EtcdClient(`http://${proxy.addr}`);
    try {
      // the proxy's own watch (leader detection) is there before any client's
      await eventually(async () => expect(sample(await scrape(m.clientUrl), 'etcd_debugging_mvcc_watcher_total')).toBe(1));
      const hot = await openWatchers(client, 'hot', 12, 100);
      await eventually(async () => {
        expect(sample(await scrape(m.clientUrl), 'etcd_debugging_mvcc_watcher_total')).toBe(2);
        const own = await scrape(metricsUrl);
        expect(sample(own, 'etcd_grpc_proxy_watchers_coalescing_total')).toBe(1199);
        expect(sample(own, 'etcd_grpc_proxy_upstream_watchers_total')).toBe(1);
      });
      const first = Number(JSON.parse(await ctl(m.clientUrl, ['put', 'hot', 'v1', '-w', 'json'])).header.revision);
      await ctl(m.clientUrl, ['put', 'hot', 'v2']);
      await ctl(m.clientUrl, ['put', 'cold', 'x']);
      await ctl(m.clientUrl, ['put', 'hot', 'v3']);
      await eventually(async () => expect(hot.received.every((r) => r.join() === 'v1,v2,v3')).toBe(true));

      // a watcher from an old revision gets the history from a watch of its own, then joins the others
      const late = await openWatchers(client, 'hot', 1, 1, first);
      await eventually(async () => expect(late.received[0]!.join()).toBe('v1,v2,v3'));
      await ctl(m.clientUrl, ['put', 'hot', 'v4']);
      await eventually(async () => {
        expect(late.received[0]!.join()).toBe('v1,v2,v3,v4');
        expect(hot.received.every((r) => r.join() === 'v1,v2,v3,v4')).toBe(true);
        expect(sample(await scrape(m.clientUrl), 'etcd_debugging_mvcc_watcher_total')).toBe(2);
      });

      hot.close();
      late.close();
      await eventually(async () => expect(sample(await scrape(m.clientUrl), 'etcd_debugging_mvcc_watcher_total')).toBe(1));
    } finally {
      client.close();
      await proxy.stop();
      await stopMember(m);
    }
  }, 120_000);
});

describe('etcd-ts grpc-proxy in front of real etcd 3.4.23', () => {
  it('serves etcdctl put, get, watch, lease and lock from an etcd member', async () => {
    const m = await startMember({ name: 'real', binary: 'etcd', dataDir: path.join(tempDir(), 'real.etcd') });
    const proxy = await startProxy(['--endpoints', m.clientUrl]);
    try {
      const watch = await spawnWatch(proxy.addr, ['r']);
      expect(await ctl(proxy.addr, ['put', 'r', '1'])).toBe('OK\n');
      await watch.waitOutput('PUT\nr\n1\n');
      expect(await ctl(proxy.addr, ['get', 'r', '--consistency=s', '--print-value-only'])).toBe('1\n');
      const lease = (await ctl(proxy.addr, ['lease', 'grant', '20'])).split(' ')[1]!;
      expect(await ctl(proxy.addr, ['lease', 'keep-alive', '--once', lease])).toContain('keepalived with TTL(20)');
      expect(await ctl(proxy.addr, ['lock', 'rl', 'echo', 'held'])).toBe('held\n');
      const status = await etcdctl(proxy.addr, ['endpoint', 'status', '-w', 'json']);
      expect(status.stdout).toContain('"version":"3.4.23"');
      await watch.kill();
    } finally {
      await proxy.stop();
      await stopMember(m);
    }
  });
});
