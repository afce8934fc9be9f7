// `etcd-ts gateway start`: etcd's L4 gateway. Stock etcdctl talks to the members through
// it; a member that is down is passed over; bad flags are refused.

import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { type ClusterPlan, clientUrl, planCluster, startCluster } from './cluster-harness.js';
import { cleanup, command, ctl, freePort, stopMember } from './harness.js';

afterAll(cleanup);

function startGateway(args: string[]): { output(): string; exited: Promise<number | null>; stop(): void } {
  const run = command(['gateway', ...args], 'etcd-ts');
  const proc = spawn(run.cmd, run.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { output: () => out, exited, stop: () => void proc.kill('SIGTERM') };
}

async function waitOutput(g: { output(): string }, text: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!g.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${g.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('etcd-ts gateway', () => {
  it('proxies etcdctl to the members, passing over one that is down', async () => {
    const plan: ClusterPlan = await planCluster(3, 'gw');
    const members = await startCluster(plan);
    const port = await freePort();
    // the flags before `start`, as etcd's e2e suite passes them, with URLs as endpoints
    const g = startGateway([`--endpoints=${plan.slots.map(clientUrl).join(',')}`, '--listen-addr', `127.0.0.1:${port}`, '--retry-delay', '1m', 'start']);
    try {
      await waitOutput(g, 'ready to proxy client requests');
      const gw = `http://127.0.0.1:${port}`;
      expect(await ctl(gw, ['put', 'through-gateway', 'ok'])).toBe('OK\n');
      expect(await ctl(clientUrl(plan.slots[2]!), ['get', 'through-gateway', '--print-value-only'])).toBe('ok\n');
      await stopMember(members[0]!);
      // each new etcdctl connection is proxied to a member that answers
      for (let i = 0; i < 4; i++) expect(await ctl(gw, ['get', 'through-gateway', '--print-value-only'])).toBe('ok\n');
      expect(g.output()).toContain(`deactivated endpoint [127.0.0.1:${plan.slots[0]!.clientPort}]`);
    } finally {
      g.stop();
      await g.exited;
      await Promise.all(members.map((m) => stopMember(m)));
    }
  });

  // DNS discovery of the endpoints: test/e2e/dns-discovery.test.ts
  it('refuses unknown flags', async () => {
    const unknown = startGateway(['start', '--no-such-flag']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toContain('unknown flag: --no-such-flag');
  });
});
