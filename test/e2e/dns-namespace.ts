// A network namespace of its own with a DNS server in it, for DNS discovery: dnsmasq
// (Debian's dnsmasq-base) answers on the namespace's 127.0.0.1:53 with the SRV and address
// records a test gives, and `ip netns exec` makes the namespace's /etc/netns/<name>/resolv.conf
// the resolv.conf of everything run in it. Members and etcdctl run inside; nothing reaches
// outside the namespace's loopback.

import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type TrackedProcess, repoRoot, spawnTracked } from './harness.js';

const run = promisify(execFile);

export interface SrvRecord {
  /** e.g. _etcd-server._tcp.etcd-ts.test */
  service: string;
  target: string;
  port: number;
  /** the record's priority and weight (dnsmasq's default 0 and 0) */
  priority?: number;
  weight?: number;
}

let created = 0;

export class DnsNamespace {
  private constructor(
    readonly name: string,
    private readonly dns: TrackedProcess,
  ) {}

  /** Creates the namespace and starts its DNS server; every host given resolves to 127.0.0.1. */
  static async create(srv: readonly SrvRecord[], hosts: readonly string[]): Promise<DnsNamespace> {
    const name = `etcdts-dns-${process.pid}-${created++}`;
    await run('ip', ['netns', 'add', name]);
    try {
      await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      mkdirSync(path.join('/etc/netns', name), { recursive: true });
      writeFileSync(path.join('/etc/netns', name, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      const dns = spawnTracked('ip', [
        'netns', 'exec', name, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--log-facility=-',
        '--listen-address=127.0.0.1', '--bind-interfaces', '--port=53',
        ...srv.map((r) => `--srv-host=${r.service},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`),
        ...hosts.map((h) => `--host-record=${h},127.0.0.1`),
      ]);
      const ns = new DnsNamespace(name, dns);
      await ns.waitForDns(hosts[0] ?? 'localhost');
      return ns;
    } catch (err) {
      await DnsNamespace.remove(name);
      throw err;
    }
  }

  /** Runs bin/etcd-ts with `args` in the namespace. */
  etcdTs(args: string[]): TrackedProcess {
    return spawnTracked('ip', ['netns', 'exec', this.name, path.join(repoRoot, 'bin/etcd-ts'), ...args]);
  }

  /** Stock etcdctl (v3) in the namespace; its stdout. */
  async etcdctl(args: string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.name, 'env', 'ETCDCTL_API=3', 'etcdctl', ...args], { timeout: 30_000 });
    return stdout;
  }

  /** `cmd` with `args` in the namespace: how it exited and what it printed. */
  exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', this.name, cmd, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
      );
    });
  }

  async close(): Promise<void> {
    this.dns.proc.kill('SIGKILL');
    await this.dns.exited;
    await DnsNamespace.remove(this.name);
  }

  private async waitForDns(host: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await run('ip', ['netns', 'exec', this.name, 'getent', 'hosts', host]);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`dnsmasq did not answer in namespace ${this.name}: ${this.dns.output()} ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private static async remove(name: string): Promise<void> {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
    rmSync(path.join('/etc/netns', name), { recursive: true, force: true });
  }
}
