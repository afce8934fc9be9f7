// unix:// peer and client URLs, as etcd takes them: `unix://name:port` is the socket file
// "name:port" in the member's working directory. Members of one cluster reach each other
// through those files, and stock etcdctl reaches a member through its client socket.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, ctl, freePort, startMember, tempDir, waitFor } from './harness.js';

afterAll(cleanup);

const run = promisify(execFile);

describe('unix socket URLs', () => {
  it('a three-member cluster talks over unix peer sockets and serves etcdctl on a unix client socket', async () => {
    const dir = tempDir();
    const names = ['u1', 'u2', 'u3'];
    const peer = (n: string): string => `unix://${n}.peer:1`;
    const cluster = names.map((n) => `${n}=${peer(n)}`).join(',');
    const tcpPorts = await Promise.all(names.map(() => freePort()));
    const members = await Promise.all(
      names.map((n, i) => {
        const clientUrls = [`http://127.0.0.1:${tcpPorts[i]}`, ...(i === 0 ? ['unix://u1.client:1'] : [])].join(',');
        return startMember({
          bare: true,
          cwd: dir,
          name: n,
          args: [
            '--name', n,
            '--data-dir', path.join(dir, `${n}.etcd`),
            '--listen-peer-urls', peer(n),
            '--initial-advertise-peer-urls', peer(n),
            '--initial-cluster', cluster,
            '--initial-cluster-token', 'unix-test',
            '--listen-client-urls', clientUrls,
            '--advertise-client-urls', clientUrls,
          ],
        });
      }),
    );
    const tcp = tcpPorts.map((p) => `127.0.0.1:${p}`);
    const list = await ctl(tcp[1]!, ['member', 'list']);
    for (const n of names) expect(list).toContain(`, started, ${n}, ${peer(n)}, `);

    // A write through the unix client socket is replicated to the others over unix peer sockets.
    const env = { ...process.env, ETCDCTL_API: '3' };
    const put = await run('etcdctl', ['--endpoints', 'unix://u1.client:1', 'put', 'over', 'unix'], { cwd: dir, env });
    expect(put.stdout.trim()).toBe('OK');
    expect(await ctl(tcp[2]!, ['get', 'over'])).toBe('over\nunix\n');
    expect(members.every((m) => m.output().includes('ready to serve client requests'))).toBe(true);
  }, 90_000);

  it('a socket file left behind by an earlier run does not stop the member from starting', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'etcd.unix:1'), 'left over');
    const port = await freePort();
    const m = await startMember({
      bare: true,
      cwd: dir,
      name: 'e1',
      args: [
        '--name', 'e1',
        '--data-dir', path.join(dir, 'e1.etcd'),
        '--listen-peer-urls', 'unix://etcd.unix:1',
        '--initial-advertise-peer-urls', 'unix://etcd.unix:1',
        '--initial-cluster', 'e1=unix://etcd.unix:1',
        '--listen-client-urls', `http://127.0.0.1:${port}`,
        '--advertise-client-urls', `http://127.0.0.1:${port}`,
      ],
    });
    // the cluster version is applied just after the member reports ready
    await waitFor(m, 'enabled capabilities for version');
    expect(await ctl(`127.0.0.1:${port}`, ['put', 'k', 'v'])).toBe('OK\n');
  }, 60_000);
});
