// etcd-ts as a library: a Node program starts a member in-process with startEtcd and
// talks to it with stock etcdctl; the package's public entry point resolves by name.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { startEtcd } from '../../src/index.js';
import { cleanup, ctl, freePort, inProcessConfig, repoRoot, spawnTracked, tempDir } from './harness.js';

afterAll(cleanup);

/** Resolves once `text` is in the process's output. */
async function outputContains(p: { output(): string; exited: Promise<number | string> }, text: string): Promise<void> {
  let exited = false;
  void p.exited.then(() => (exited = true));
  while (!p.output().includes(text)) {
    if (exited) throw new Error(`exited before printing ${text}: ${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('startEtcd serves clients in-process and closes cleanly', async () => {
  const cfg = await inProcessConfig('embedded');
  const etcd = await startEtcd(cfg);
  await etcd.ready;
  expect(etcd.clientUrls).toEqual([cfg.listenClientUrls[0]!.origin]);
  expect(await ctl(etcd.clientUrls[0]!, ['put', 'from', 'library'])).toBe('OK\n');
  expect((await etcd.server.store.range({ key: Buffer.from('from') })).kvs[0]!.value.toString()).toBe('library');
  await etcd.close();
  expect(await etcd.done).toBeUndefined();
});

it('a startEtcd that fails on a taken metrics port creates no data dir and frees the ports it bound, so the next one serves', async () => {
  const cfg = await inProcessConfig('embedded-retry');
  const squatter = net.createServer();
  const metricsPort = await new Promise<number>((r) => squatter.listen(0, '127.0.0.1', () => r((squatter.address() as net.AddressInfo).port)));
  const withMetrics = { ...cfg, listenMetricsUrls: [new URL(`http://127.0.0.1:${metricsPort}`)] };
  try {
    await expect(startEtcd(withMetrics)).rejects.toThrow(`listen tcp 127.0.0.1:${metricsPort}: bind: address already in use`);
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
  expect(existsSync(cfg.dataDir)).toBe(false);

  // the same process, the same peer and client ports
  const etcd = await startEtcd(withMetrics);
  await etcd.ready;
  expect(await ctl(etcd.clientUrls[0]!, ['put', 'after', 'retry'])).toBe('OK\n');
  await etcd.close();
});

it("resolves `import { startEtcd } from 'etcd-ts'` from the built package", async () => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', "import('etcd-ts').then((m) => console.log(typeof m.startEtcd, typeof m.defaultConfig))"],
      { cwd: repoRoot },
      (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
    ),
  );
  expect(out.trim()).toBe('function function');
});

it('a member embedded from the built package sends a backup: its export thread loads from the package files', async () => {
  const [client, peer] = [await freePort(), await freePort()];
  const dataDir = path.join(tempDir(), 'pkg.etcd');
  const script = `
    const { startEtcd, defaultConfig } = await import('etcd-ts');
    const client = new URL('http://127.0.0.1:${client}');
    const peer = new URL('http://127.0.0.1:${peer}');
    const etcd = await startEtcd(defaultConfig({ name: 'pkg', dataDir: ${JSON.stringify(dataDir)}, listenClientUrls: [client], advertiseClientUrls: [client],
      listenPeerUrls: [peer], initialAdvertisePeerUrls: [peer], initialCluster: new Map([['pkg', [peer]]]), logLevel: 'error' }));
    await etcd.ready;
    console.log('embedded member ready');`;
  const member = spawnTracked(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
  try {
    await outputContains(member, 'embedded member ready');
    const url = `http://127.0.0.1:${client}`;
    expect(await ctl(url, ['put', 'backed', 'up'])).toBe('OK\n');
    const file = path.join(tempDir(), 'backup.db');
    expect(await ctl(url, ['snapshot', 'save', file])).toContain(`Snapshot saved at ${file}`);
    expect(await ctl(url, ['snapshot', 'status', file, '-w', 'json'])).toContain('"revision":2');
  } finally {
    member.proc.kill('SIGKILL');
    await member.exited;
  }
});
