// vip-manager 1.0 (Debian's), the virtual IP beside Patroni: it polls a key through etcd's
// v2 API and puts an address on an interface while the key holds its node's name. Run
// against real etcd 3.4.23 and etcd-ts alike, each inside a network namespace this test
// creates (a veth pair there carries the address and vip-manager's gratuitous ARP), so
// nothing leaves the machine and the host's interfaces stay as they were.

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from './cluster-harness.js';
import { cleanup, command, spawnTracked, tempDir, type TrackedProcess } from './harness.js';

const NS = `etcdts-vip-${process.pid}`;
const VIP = '10.77.0.9';
const KEY = '/service/pg/leader';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
/** The addresses on the veth end vip-manager manages. */
const addresses = (): string => ip('-n', NS, '-4', 'addr', 'show', 'dev', 'v0');

/** A process inside the namespace (`ip netns exec` execs it: the PID is its own). */
const inNamespace = (cmd: string, args: string[]): TrackedProcess => spawnTracked('ip', ['netns', 'exec', NS, cmd, ...args]);

async function stop(p: TrackedProcess): Promise<void> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
  await p.exited;
}

/** etcdctl v2 inside the namespace, against the member there. */
function setKey(value: string): void {
  execFileSync('ip', ['netns', 'exec', NS, 'etcdctl', '--endpoints', 'http://127.0.0.1:2379', 'set', KEY, value], { env: { ...process.env, ETCDCTL_API: '2' } });
}

afterAll(async () => {
  await cleanup();
  execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
});

describe('vip-manager 1.0 over the v2 API, in a network namespace', () => {
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  ip('-n', NS, 'link', 'set', 'v0', 'up');
  ip('-n', NS, 'link', 'set', 'v1', 'up');
  // vip-manager's ARP client needs an address of the interface's own to send from
  ip('-n', NS, 'addr', 'add', '10.77.0.1/24', 'dev', 'v0');

  for (const which of ['etcd', 'etcd-ts'] as const) {
    it(`${which}: puts the address up while the key names this node, and takes it down when it names another`, async () => {
      const dataDir = path.join(tempDir(), `${which}.etcd`);
      const { cmd, argv } = command(
        ['--data-dir', dataDir, '--enable-v2', '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379', '--listen-peer-urls', 'http://127.0.0.1:2380'],
        which,
      );
      const member = inNamespace(cmd, argv);
      let vip: TrackedProcess | undefined;
      try {
        await eventually(async () => expect(member.output()).toContain('ready to serve client requests'), 60_000);
        vip = inNamespace('vip-manager', ['--ip', VIP, '--netmask', '32', '--interface', 'v0', '--trigger-key', KEY, '--trigger-value', 'node1', '--dcs-endpoints', 'http://127.0.0.1:2379', '--interval', '100']);
        // before the key exists vip-manager reads etcd's v2 error for it, and leaves the address off
        await eventually(async () => expect(vip!.output()).toMatch(/etcd error: 100: Key not found \(\/service\) \[\d+\]/), 20_000);
        expect(addresses()).not.toContain(`${VIP}/32`);

        // the address, and vip-manager's line for it (written just after it configures it)
        setKey('node1');
        await eventually(async () => {
          expect(addresses()).toContain(`${VIP}/32`);
          expect(vip!.output()).toContain(`Configuring address ${VIP}/32 on v0`);
        }, 20_000);

        setKey('node2');
        await eventually(async () => {
          expect(addresses()).not.toContain(`${VIP}/32`);
          expect(vip!.output()).toContain(`Removing address ${VIP}/32 on v0`);
        }, 20_000);
        expect(vip.output()).not.toMatch(/etcd error: (?!100: Key not found)/);
      } finally {
        if (vip !== undefined) await stop(vip);
        await stop(member);
      }
      // vip-manager gives the address up when it stops, if it held it; it did not here
      expect(addresses()).not.toContain(`${VIP}/32`);
    }, 120_000);
  }
});
