// A first start that fails (a port taken, a bad certificate path, a data dir that cannot
// be written) must not ruin the member: once the cause is fixed, the next start joins and
// serves without anyone wiping the data dir by hand. etcd-ts loads certificates and binds
// every listener before it touches the data dir, so such a start leaves a fresh data dir
// empty; real etcd 3.4.23, run beside it, does the same for ports and the peer certificate
// but binds the metrics port and loads the client certificate only after it has created its
// member dir (and loads the client certificate only once it has a quorum, so with
// E2E_BINARY=etcd the second member of the three-member test waits instead of failing).

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type ClusterPlan, type Slot, clientUrl, planCluster, startSlot } from './cluster-harness.js';
import { type Member, cleanup, ctl, etcdctl, freePort, startMember, stopMember, tempDir, killProcesses } from './harness.js';
import { makePki } from '../listener/helpers.js';

afterAll(async () => {
  for (const d of immutable) execFileSync('chattr', ['-i', d]);
  rmSync(pki.dir, { recursive: true, force: true });
  await cleanup();
});
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/** Holds a port the way another program would. */
async function occupy(port: number): Promise<net.Server> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
  return s;
}

/**
 * What makes a first start fail, and how the operator fixes it. The data dir is made
 * immutable (chattr +i), which stops root too: the tests run as root, for whom chmod
 * takes nothing away. Before the member made its data dir, its parent is.
 */
const CAUSES: ReadonlyArray<{ name: string; says: RegExp; make: (s: Slot) => Promise<{ args: string[]; fix: () => Promise<void> }> }> = [
  {
    name: 'its client port is taken by another program',
    says: /address already in use/,
    make: async (s) => {
      const squatter = await occupy(s.clientPort);
      return { args: [], fix: () => new Promise<void>((resolve) => squatter.close(() => resolve())) };
    },
  },
  {
    // an https client URL: etcd ignores --cert-file otherwise
    name: 'a typo in --cert-file',
    says: /nonexistent\/server/,
    make: async (s) => ({
      args: ['--listen-client-urls', `https://127.0.0.1:${s.clientPort}`, '--cert-file', '/nonexistent/server.pem', '--key-file', '/nonexistent/server-key.pem'],
      fix: async () => undefined,
    }),
  },
  {
    name: 'its data dir cannot be written',
    says: /cannot access data directory .*operation not permitted/,
    make: async (s) => {
      const target = existsSync(s.dataDir) ? s.dataDir : path.dirname(s.dataDir);
      mkdirSync(target, { recursive: true });
      execFileSync('chattr', ['+i', target]);
      immutable.add(target);
      return {
        args: [],
        fix: async () => {
          execFileSync('chattr', ['-i', target]);
          immutable.delete(target);
        },
      };
    },
  },
];

/** Directories made immutable and not yet fixed: a failed test must not leave them behind undeletable. */
const immutable = new Set<string>();

async function failsToStart(plan: ClusterPlan, i: number, args: string[] = []): Promise<Member> {
  const m = await startSlot(plan, plan.slots[i]!, { args, waitReady: false });
  expect(await m.exited).not.toBe(0);
  return m;
}

describe('a failed first start', () => {
  it('leaves each member of a three-member bootstrap able to join once the cause is fixed, whichever cause each met', async () => {
    const plan = await planCluster(3, 'fs');
    // a directory of its own above each data dir, so one member's can be made unwritable alone
    for (const s of plan.slots) s.dataDir = path.join(s.dataDir, 'data');

    // Three rounds: each member meets each cause once, on the data dir the rounds before left.
    for (let round = 0; round < 3; round++) {
      await Promise.all(plan.slots.map(async (s, i) => {
        const cause = CAUSES[(i + round) % CAUSES.length]!;
        const { args, fix } = await cause.make(s);
        try {
          const m = await failsToStart(plan, i, args);
          expect(m.output(), `${s.name}, round ${round}: ${cause.name}`).toMatch(cause.says);
        } finally {
          await fix();
        }
      }));
    }

    // The causes fixed, nothing else touched: all three join and serve.
    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s)));
    await ctl(clientUrl(plan.slots[0]!), ['put', 'after-failed-start', 'ok']);
    for (const s of plan.slots) {
      expect(await ctl(clientUrl(s), ['get', 'after-failed-start', '--print-value-only', '--consistency=l'])).toBe('ok\n');
    }
    const list = await ctl(clientUrl(plan.slots[2]!), ['member', 'list']);
    for (const s of plan.slots) expect(list).toContain(`, started, ${s.name}, `);
    await Promise.all(members.map((m) => stopMember(m)));
  });

  it('recovers from a taken peer port, a taken metrics port and a bad peer certificate path', async () => {
    const plan = await planCluster(3, 'fp');
    const [s1, s2, s3] = plan.slots as [ClusterPlan['slots'][0], ClusterPlan['slots'][0], ClusterPlan['slots'][0]];
    const metricsPort = await freePort();
    const metricsArgs = ['--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`];

    // 1: its peer port is taken by another program
    const peerSquatter = await occupy(s1.peerPort);
    const m1 = await failsToStart(plan, 0);
    expect(m1.output()).toContain('address already in use');
    // 2: the port of its --listen-metrics-urls is taken
    const metricsSquatter = await occupy(metricsPort);
    const m2 = await failsToStart(plan, 1, metricsArgs);
    expect(m2.output()).toContain('address already in use');
    // 3: a typo in --peer-cert-file
    const m3 = await failsToStart(plan, 2, ['--peer-cert-file', '/nonexistent/peer.pem', '--peer-key-file', '/nonexistent/peer-key.pem']);
    expect(m3.output()).toMatch(/nonexistent\/peer/);

    await new Promise<void>((resolve) => peerSquatter.close(() => resolve()));
    await new Promise<void>((resolve) => metricsSquatter.close(() => resolve()));
    const members = await Promise.all([startSlot(plan, s1), startSlot(plan, s2, { args: metricsArgs }), startSlot(plan, s3)]);
    await ctl(clientUrl(s2), ['put', 'after-failed-start', 'ok']);
    for (const s of plan.slots) {
      expect(await ctl(clientUrl(s), ['get', 'after-failed-start', '--print-value-only', '--consistency=l'])).toBe('ok\n');
    }
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await metrics.text();
    expect(text).toContain('etcd_server_has_leader 1');
    await Promise.all(members.map((m) => stopMember(m)));
  });
});

interface Ports {
  client: number;
  peer: number;
  metrics: number;
}

/** One member's flags: http:// URLs on `p` unless a scheme says https, and a metrics URL if asked. */
function memberArgs(name: string, dataDir: string, p: Ports, o: { client?: 'https'; peer?: 'https'; metrics?: true; extra?: string[] } = {}): string[] {
  const client = `${o.client ?? 'http'}://127.0.0.1:${p.client}`;
  const peer = `${o.peer ?? 'http'}://127.0.0.1:${p.peer}`;
  return [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${name}=${peer}`,
    ...(o.metrics ? ['--listen-metrics-urls', `http://127.0.0.1:${p.metrics}`] : []),
    ...(o.extra ?? []),
  ];
}

const pki = makePki();

/** A failure of a first start before it has a member, and the operator's fix. */
interface EarlyCause {
  name: string;
  /**
   * What real etcd 3.4.23 leaves in the fresh data dir. etcd-ts leaves nothing, always:
   * etcd binds the metrics listener (serveMetrics) and loads the client certificate
   * (serveClients) only after NewServer has created member/ and its WAL.
   */
  etcdLeaves: string[];
  says: (p: Ports) => string;
  make: (p: Ports, name: string, dataDir: string) => Promise<{ failing: string[]; fixed: string[]; fix: () => Promise<void>; ctlTls: string[] }>;
}

const portTaken = (which: keyof Ports, etcdLeaves: string[]): EarlyCause => ({
  name: `its ${which} port is taken by another program`,
  etcdLeaves,
  says: (p) => `listen tcp 127.0.0.1:${p[which]}: bind: address already in use`,
  make: async (p, name, dataDir) => {
    const squatter = await occupy(p[which]);
    const args = memberArgs(name, dataDir, p, which === 'metrics' ? { metrics: true } : {});
    return { failing: args, fixed: args, fix: () => new Promise<void>((resolve) => squatter.close(() => resolve())), ctlTls: [] };
  },
});

const EARLY_CAUSES: EarlyCause[] = [
  portTaken('client', []),
  portTaken('peer', []),
  portTaken('metrics', ['member']),
  {
    name: 'a typo in --cert-file',
    etcdLeaves: ['member'],
    says: () => '/nonexistent/server.pem',
    make: async (p, name, dataDir) => ({
      failing: memberArgs(name, dataDir, p, { client: 'https', extra: ['--cert-file', '/nonexistent/server.pem', '--key-file', '/nonexistent/server-key.pem'] }),
      fixed: memberArgs(name, dataDir, p, { client: 'https', extra: ['--cert-file', pki.serverCert, '--key-file', pki.serverKey] }),
      fix: async () => undefined,
      ctlTls: ['--cacert', pki.ca],
    }),
  },
  {
    name: 'a typo in --peer-cert-file',
    etcdLeaves: [],
    says: () => '/nonexistent/peer.pem',
    make: async (p, name, dataDir) => ({
      failing: memberArgs(name, dataDir, p, { peer: 'https', extra: ['--peer-cert-file', '/nonexistent/peer.pem', '--peer-key-file', '/nonexistent/peer-key.pem'] }),
      fixed: memberArgs(name, dataDir, p, { peer: 'https', extra: ['--peer-cert-file', pki.serverCert, '--peer-key-file', pki.serverKey] }),
      fix: async () => undefined,
      ctlTls: [],
    }),
  },
];

describe('a first start that fails on a port or a certificate, etcd-ts and real etcd 3.4.23 side by side', () => {
  it.each(EARLY_CAUSES)('$name: etcd-ts leaves the fresh data dir empty, and the next start serves', async (cause) => {
    await Promise.all((['etcd-ts', 'etcd'] as const).map(async (binary) => {
      const ports: Ports = { client: await freePort(), peer: await freePort(), metrics: await freePort() };
      const dataDir = path.join(tempDir(), 'fresh.etcd');
      mkdirSync(dataDir);
      const { failing, fixed, fix, ctlTls } = await cause.make(ports, 'early', dataDir);
      try {
        const failed = await startMember({ bare: true, args: failing, binary, waitReady: false });
        expect(await failed.exited, `${binary}:\n${failed.output()}`).toBe(1);
        expect(failed.output(), binary).toContain(cause.says(ports));
      } finally {
        await fix();
      }
      expect(readdirSync(dataDir), binary).toEqual(binary === 'etcd' ? cause.etcdLeaves : []);

      const m = await startMember({ bare: true, args: fixed, binary });
      const endpoint = `${fixed[fixed.indexOf('--listen-client-urls') + 1]}`;
      expect((await etcdctl(endpoint, [...ctlTls, 'put', 'after-failed-start', binary])).stdout, binary).toBe('OK\n');
      expect((await etcdctl(endpoint, [...ctlTls, 'get', 'after-failed-start', '--print-value-only'])).stdout, binary).toBe(`${binary}\n`);
      await stopMember(m);
    }));
  });
});
