// etcd-ts as a library: a Node program starts a member in-process with startEtcd and
// talks to it with stock etcdctl; the package's public entry point resolves by name.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { defaultConfig, startEtcd } from '../../src/index.js';
import { cleanup, ctl, freePort, repoRoot, tempDir } from './harness.js';

afterAll(cleanup);

it('startEtcd serves clients in-process and closes cleanly', async () => {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const cfg = defaultConfig({
    name: 'embedded',
    dataDir: path.join(tempDir(), 'embedded.etcd'),
    listenClientUrls: [new URL(`http://127.0.0.1:${clientPort}`)],
    advertiseClientUrls: [new URL(`http://127.0.0.1:${clientPort}`)],
    listenPeerUrls: [new URL(`http://127.0.0.1:${peerPort}`)],
    initialAdvertisePeerUrls: [new URL(`http://127.0.0.1:${peerPort}`)],
    initialCluster: new Map([['embedded', [new URL(`http://127.0.0.1:${peerPort}`)]]]),
    logLevel: 'error',
  });
  const etcd = await startEtcd(cfg);
  await etcd.ready;
  expect(etcd.clientUrls).toEqual([`http://127.0.0.1:${clientPort}`]);
  expect(await ctl(etcd.clientUrls[0]!, ['put', 'from', 'library'])).toBe('OK\n');
  expect((await etcd.server.store.range({ key: Buffer.from('from') })).kvs[0]!.value.toString()).toBe('library');
  await etcd.close();
  expect(await etcd.done).toBeUndefined();
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
