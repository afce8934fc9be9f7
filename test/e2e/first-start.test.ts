// A first start that fails (a port taken, a bad certificate path, a data dir that cannot
// be written) must not ruin the member: once the cause is fixed, the next start joins and
// serves without anyone wiping the data dir by hand. (etcd-ts loads certificates and binds
// every listener before its first raft step; real etcd loads client certificates only once
// it has a quorum, so with E2E_BINARY=etcd the second member waits instead of failing.)

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type ClusterPlan, type Slot, clientUrl, planCluster, startSlot } from './cluster-harness.js';
import { type Member, cleanup, ctl, freePort, stopMember } from './harness.js';

afterAll(async () => {
  for (const d of immutable) execFileSync('chattr', ['-i', d]);
  await cleanup();
});

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
