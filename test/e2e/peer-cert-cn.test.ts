// --peer-cert-allowed-cn between etcd-ts members, as etcd's own TestEtcdPeerCNAuth runs it:
// the member whose peer certificate has another Common Name is refused by the others with a
// TLS alert, and says so in Go's words (`remote error: tls: bad certificate`), while the
// other two form the cluster.

import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makePki, type TestPki } from '../listener/helpers.js';
import { cleanup, freePort, startMember, tempDir, waitFor } from './harness.js';

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(async () => {
  await cleanup();
  rmSync(pki.dir, { recursive: true, force: true });
});

it('a member whose peer certificate has the wrong CN reads "remote error: tls: bad certificate"; the others form the cluster', async () => {
  const names = ['e0', 'e1', 'e2'];
  const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initialCluster = names.map((n, i) => `${n}=https://127.0.0.1:${ports[i]!.peer}`).join(',');
  // e0 and e1 have certificates with CN etcd-server and allow only it; e2's says "other"
  const certs = [
    { cert: pki.serverCert, key: pki.serverKey, cn: 'etcd-server' },
    { cert: pki.serverCert, key: pki.serverKey, cn: 'etcd-server' },
    { cert: pki.otherClientCert, key: pki.otherClientKey, cn: 'other' },
  ];
  const members = await Promise.all(
    names.map((name, i) =>
      startMember({
        name,
        bare: true,
        waitReady: false,
        args: [
          '--name', name,
          '--data-dir', path.join(tempDir(), `${name}.etcd`),
          '--listen-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
          '--advertise-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
          '--listen-peer-urls', `https://127.0.0.1:${ports[i]!.peer}`,
          '--initial-advertise-peer-urls', `https://127.0.0.1:${ports[i]!.peer}`,
          '--initial-cluster', initialCluster,
          '--peer-cert-file', certs[i]!.cert,
          '--peer-key-file', certs[i]!.key,
          '--peer-trusted-ca-file', pki.ca,
          '--peer-client-cert-auth',
          '--peer-cert-allowed-cn', certs[i]!.cn,
        ],
      }),
    ),
  );
  const [e0, e1, e2] = members as [typeof members[0], typeof members[0], typeof members[0]];
  await waitFor(e0, 'ready to serve client requests', 60_000);
  await waitFor(e1, 'ready to serve client requests', 60_000);
  await waitFor(e2, 'remote error: tls: bad certificate', 60_000);
  // the refusing side logs the refusal as before, with who it was (e2 may have heard e1's
  // alert first: wait for e0's own line)
  await waitFor(e0, '"rejected connection"', 60_000);
  const refusals = e0.output().split('\n').filter((l) => l.includes('"rejected connection"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(refusals).toContainEqual(
    expect.objectContaining({ 'remote-addr': expect.stringMatching(/^127\.0\.0\.1:\d+$/), error: 'client certificate authentication failed: CN "other" is not "etcd-server"' }),
  );
}, 120_000);
