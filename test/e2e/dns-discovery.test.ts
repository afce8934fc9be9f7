// DNS discovery (--discovery-srv), as etcd's clustering guide sets it up: SRV records
// `_etcd-server._tcp.<domain>` name each member's peer endpoint, and every member is
// started with the same --discovery-srv and no --initial-cluster; `_etcd-client._tcp`
// records name the client endpoints the gateway and the gRPC proxy find the same way. The DNS server is
// dnsmasq in a network namespace of the test's own (dns-namespace.ts), where the members
// and etcdctl run.

import { afterAll, afterEach, expect, it } from 'vitest';
import path from 'node:path';
import { makeLeaf, makePki } from '../listener/helpers.js';
import { DnsNamespace, type SrvRecord } from './dns-namespace.js';
import { type TrackedProcess, cleanup, tempDir } from './harness.js';

const DOMAIN = 'etcd-ts.test';
const HOSTS = ['infra0', 'infra1', 'infra2'].map((h) => `${h}.${DOMAIN}`);

/** Member i: client port 2379 + 100 i, peer port one more, peer endpoint infra<i>.etcd-ts.test. */
function ports(i: number): { client: number; peer: number } {
  return { client: 2379 + 100 * i, peer: 2380 + 100 * i };
}

function serverRecords(service = '_etcd-server'): SrvRecord[] {
  return HOSTS.map((target, i) => ({ service: `${service}._tcp.${DOMAIN}`, target, port: ports(i).peer }));
}

function clientRecords(service = '_etcd-client'): SrvRecord[] {
  return HOSTS.map((target, i) => ({ service: `${service}._tcp.${DOMAIN}`, target, port: ports(i).client }));
}

let ns: DnsNamespace | undefined;
afterEach(async () => {
  await cleanup();
  await ns?.close();
  ns = undefined;
});
afterAll(cleanup);

function member(i: number, extra: string[] = [], advertise = `http://${HOSTS[i]}:${ports(i).peer}`, clientScheme = 'http'): TrackedProcess {
  const { client, peer } = ports(i);
  return ns!.etcdTs([
    '--name', `infra${i}`,
    '--data-dir', tempDir('etcd-ts-dns-'),
    '--listen-client-urls', `${clientScheme}://127.0.0.1:${client}`,
    '--advertise-client-urls', `${clientScheme}://${clientScheme === 'http' ? '127.0.0.1' : HOSTS[i]}:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', advertise,
    '--discovery-srv', DOMAIN,
    ...extra,
  ]);
}

async function ready(p: TrackedProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  let exited: number | string | undefined;
  void p.exited.then((c) => (exited = c));
  while (!p.output().includes('ready to serve client requests')) {
    if (exited !== undefined || Date.now() > deadline) throw new Error(`member not ready (exit ${String(exited)}):\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('three members bootstrap from the SRV records, one of them advertising its IP rather than its name', async () => {
  ns = await DnsNamespace.create(serverRecords(), HOSTS);
  const members = [member(0), member(1), member(2, [], `http://127.0.0.1:${ports(2).peer}`)];
  await Promise.all(members.map(ready));
  const list = await ns.etcdctl(['--endpoints', '127.0.0.1:2379', 'member', 'list']);
  // every member known by the endpoint its SRV record names
  expect(list.trim().split('\n').map((l) => l.split(', ').slice(2, 4).join(' ')).sort()).toEqual([
    `infra0 http://${HOSTS[0]}:2380`,
    `infra1 http://${HOSTS[1]}:2480`,
    `infra2 http://${HOSTS[2]}:2580`,
  ]);
  await ns.etcdctl(['--endpoints', '127.0.0.1:2379', 'put', 'srv', 'found']);
  expect(await ns.etcdctl(['--endpoints', '127.0.0.1:2579', 'get', 'srv', '--print-value-only'])).toBe('found\n');
  expect(members[0]!.output()).toContain('"msg":"got bootstrap from DNS for etcd-server"');
}, 120_000);

it('--discovery-srv-name reads _etcd-server-<name>._tcp', async () => {
  ns = await DnsNamespace.create(serverRecords('_etcd-server-blue'), HOSTS);
  const members = [0, 1, 2].map((i) => member(i, ['--discovery-srv-name', 'blue']));
  await Promise.all(members.map(ready));
  expect((await ns.etcdctl(['--endpoints', '127.0.0.1:2479', 'member', 'list'])).trim().split('\n')).toHaveLength(3);
}, 120_000);

it('refuses a member the records do not name, and a domain without records, as etcd words it', async () => {
  ns = await DnsNamespace.create(serverRecords().slice(0, 2), HOSTS);
  const stranger = member(2);
  expect(await stranger.exited).toBe(1);
  expect(stranger.output()).toContain('cannot find local etcd member \\"infra2\\" in SRV records');

  const nowhere = ns.etcdTs(['--name', 'x', '--data-dir', tempDir('etcd-ts-dns-'), '--discovery-srv', 'nowhere.test']);
  expect(await nowhere.exited).toBe(1);
  expect(nowhere.output()).toMatch(/error querying DNS SRV records for _etcd-server-ssl .*; error querying DNS SRV records for _etcd-server /);
}, 120_000);

it('the gateway and the gRPC proxy find the members through _etcd-client._tcp records; without --insecure-discovery they refuse http ones and use --endpoints', async () => {
  ns = await DnsNamespace.create([...serverRecords(), ...clientRecords()], HOSTS);
  await Promise.all([0, 1, 2].map((i) => member(i)).map(ready));
  const serves = async (endpoint: string, key: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await ns!.etcdctl(['--endpoints', endpoint, 'put', key, 'v']);
        expect(await ns!.etcdctl(['--endpoints', '127.0.0.1:2379', 'get', key, '--print-value-only'])).toBe('v\n');
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  const gateway = ns.etcdTs(['gateway', 'start', '--discovery-srv', DOMAIN, '--insecure-discovery', '--endpoints', '127.0.0.1:1', '--listen-addr', '127.0.0.1:23790']);
  await serves('127.0.0.1:23790', 'through-gateway');
  expect(gateway.output()).toContain('"msg":"discovered cluster from SRV"');

  const proxy = ns.etcdTs(['grpc-proxy', 'start', '--discovery-srv', DOMAIN, '--insecure-discovery', '--endpoints', '127.0.0.1:1', '--listen-addr', '127.0.0.1:23791']);
  await serves('127.0.0.1:23791', 'through-proxy');
  expect(proxy.output()).toContain(`http://${HOSTS[0]}:2379`);

  // the records are http: without --insecure-discovery, etcd keeps none of them
  const checked = ns.etcdTs(['grpc-proxy', 'start', '--discovery-srv', DOMAIN, '--endpoints', '127.0.0.1:2479', '--listen-addr', '127.0.0.1:23792']);
  await serves('127.0.0.1:23792', 'through-endpoints');
  expect(checked.output()).toContain('failed to validate discovered endpoints');
  expect(checked.output()).toContain(`\\"http://${HOSTS[0]}:2379\\" is insecure`);
}, 120_000);

it('with https records, the gRPC proxy keeps the endpoints whose certificate its CA signed for the domain, and drops the others', async () => {
  const pki = makePki(tempDir('etcd-ts-dns-pki-'));
  // valid for the domain (what etcd checks) and for each member's name (what the proxy dials)
  const names = `IP:127.0.0.1,DNS:${DOMAIN},DNS:*.${DOMAIN}`;
  makeLeaf(pki.dir, 'ca', 'member', '/CN=etcd-member', names);
  makeLeaf(pki.dir, 'rogue-ca', 'stranger', '/CN=etcd-stranger', names);
  const tlsOf = (leaf: string) => ['--cert-file', path.join(pki.dir, `${leaf}.pem`), '--key-file', path.join(pki.dir, `${leaf}-key.pem`)];
  ns = await DnsNamespace.create([...serverRecords(), ...clientRecords('_etcd-client-ssl')], HOSTS);
  await Promise.all([member(0, tlsOf('member'), undefined, 'https'), member(1, tlsOf('member'), undefined, 'https'), member(2, tlsOf('stranger'), undefined, 'https')].map(ready));

  const proxy = ns.etcdTs(['grpc-proxy', 'start', '--discovery-srv', DOMAIN, '--cacert', pki.ca, '--endpoints', '127.0.0.1:1', '--listen-addr', '127.0.0.1:23791']);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await ns.etcdctl(['--endpoints', '127.0.0.1:23791', 'put', 'tls', 'checked']);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${(err as Error).message}\n${proxy.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  expect(await ns.etcdctl(['--endpoints', '127.0.0.1:23791', 'get', 'tls', '--print-value-only'])).toBe('checked\n');
  expect(proxy.output()).toContain('failed to validate discovered endpoints');
  const kept = (a: number, b: number) => `"endpoints":["https://${HOSTS[a]}:${ports(a).client}","https://${HOSTS[b]}:${ports(b).client}"],"error"`;
  expect([kept(0, 1), kept(1, 0)].some((k) => proxy.output().includes(k)), proxy.output()).toBe(true);
  expect(proxy.output()).toContain(`\\"https://${HOSTS[2]}:2579\\" failed to dial`);
}, 120_000);

it("a peer certificate must name the address it connects from: its DNS names are resolved, as etcd's checkSAN does, unless --experimental-peer-skip-client-san-verification", async () => {
  const pki = makePki(tempDir('etcd-ts-dns-pki-'));
  makeLeaf(pki.dir, 'ca', 'named', '/CN=infra1', `DNS:${HOSTS[1]}`);
  makeLeaf(pki.dir, 'ca', 'ghost', '/CN=ghost', `DNS:ghost.${DOMAIN}`);
  ns = await DnsNamespace.create([], HOSTS);
  const tlsMember = (i: number, extra: string[]): TrackedProcess => {
    const { client, peer } = ports(i);
    return ns!.etcdTs([
      '--name', `infra${i}`, '--data-dir', tempDir('etcd-ts-dns-'),
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `https://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `https://127.0.0.1:${peer}`,
      '--initial-cluster', `infra${i}=https://127.0.0.1:${peer}`,
      '--peer-cert-file', pki.serverCert, '--peer-key-file', pki.serverKey, '--peer-trusted-ca-file', pki.ca, '--peer-client-cert-auth',
      ...extra,
    ]);
  };
  const checking = tlsMember(0, []);
  const skipping = tlsMember(1, ['--experimental-peer-skip-client-san-verification']);
  await Promise.all([ready(checking), ready(skipping)]);
  const curl = (i: number, leaf: string) =>
    ns!.exec('curl', ['-sS', '--cacert', pki.ca, '--cert', path.join(pki.dir, `${leaf}.pem`), '--key', path.join(pki.dir, `${leaf}-key.pem`),
      `https://127.0.0.1:${ports(i).peer}/version`]);

  // the forward lookup of infra1.etcd-ts.test (dnsmasq: 127.0.0.1) names the connection's address
  expect(await curl(0, 'named')).toMatchObject({ code: 0, stdout: expect.stringContaining('etcdserver') });
  const ghost = await curl(0, 'ghost');
  expect(ghost.code).not.toBe(0);
  expect(ghost.stdout).toBe('');
  // dnsmasq refuses a name it has no record for: Go's resolver calls that "server misbehaving"
  const refusal = `tls: \\"127.0.0.1\\" does not match any of DNSNames [\\"ghost.${DOMAIN}\\"] (lookup ghost.${DOMAIN}: server misbehaving)`;
  expect(checking.output()).toContain(refusal);
  expect(await curl(1, 'ghost')).toMatchObject({ code: 0, stdout: expect.stringContaining('etcdserver') });
  expect(skipping.output()).not.toContain('rejected connection');
}, 120_000);

it('the gateway sends connections to the endpoint of the lowest SRV priority, and to the next priority once that one is down', async () => {
  // infra1 first, then infra0, then infra2
  const priorities = [10, 0, 20];
  const records = clientRecords().map((r, i) => ({ ...r, priority: priorities[i]! }));
  ns = await DnsNamespace.create([...serverRecords(), ...records], HOSTS);
  const members = [0, 1, 2].map((i) => member(i));
  await Promise.all(members.map(ready));
  const idOf = async (endpoint: string): Promise<string> => JSON.parse(await ns!.etcdctl(['--endpoints', endpoint, 'endpoint', 'status', '-w', 'json']))[0].Status.header.member_id;
  const ids = await Promise.all([0, 1, 2].map((i) => idOf(`127.0.0.1:${ports(i).client}`)));
  const gateway = ns.etcdTs(['gateway', 'start', '--discovery-srv', DOMAIN, '--insecure-discovery', '--listen-addr', '127.0.0.1:23790', '--retry-delay', '10m']);
  const viaGateway = async (): Promise<string> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await idOf('127.0.0.1:23790');
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${(err as Error).message}\n${gateway.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  for (let i = 0; i < 4; i++) expect(await viaGateway()).toBe(ids[1]);
  members[1]!.proc.kill('SIGKILL');
  await members[1]!.exited;
  for (let i = 0; i < 4; i++) expect(await viaGateway()).toBe(ids[0]);
  expect(gateway.output()).toContain(`deactivated endpoint [${HOSTS[1]}:${ports(1).client}]`);
}, 120_000);
