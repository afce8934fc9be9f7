// etcd-ts as a library: a Node program starts a member in-process with startEtcd and
// talks to it with stock etcdctl; the package's public entry point resolves by name.

import { execFile } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { startEtcd } from '../../src/index.js';
import { cleanup, ctl, inProcessConfig, repoRoot } from './harness.js';

afterAll(cleanup);

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
