// A peer port that authenticates nobody is said to be so at startup: plain HTTP, or TLS
// without --peer-client-cert-auth. With client certificate authentication, nothing.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { makePki, type TestPki } from '../listener/helpers.js';
import path from 'node:path';
import { cleanup, freePort, startMember, stopMember, tempDir } from './harness.js';

const WARNING = 'peer traffic is not authenticated';

let pki: TestPki;
beforeAll(() => {
  pki = makePki(tempDir('listener-pki-'));
});
afterAll(cleanup);

/** The warning lines a member printed, parsed. */
function warnings(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((l) => l.includes(WARNING))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A one-member cluster whose peer URL is https (client side plain HTTP). */
async function tlsPeerArgs(name: string, extra: string[]): Promise<{ args: string[]; peer: string }> {
  const [client, peer] = [await freePort(), await freePort()];
  const peerUrl = `https://127.0.0.1:${peer}`;
  return {
    peer: peerUrl,
    args: [
      '--name', name,
      '--data-dir', path.join(tempDir(), `${name}.etcd`),
      '--listen-client-urls', `http://127.0.0.1:${client}`,
      '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `${name}=${peerUrl}`,
      '--peer-cert-file', pki.serverCert,
      '--peer-key-file', pki.serverKey,
      '--peer-trusted-ca-file', pki.ca,
      ...extra,
    ],
  };
}

it('warns that a plain HTTP peer port is unauthenticated', async () => {
  const m = await startMember({ name: 'plain' });
  expect(warnings(m.output())).toEqual([
    expect.objectContaining({ level: 'warn', address: m.peerUrl, reason: 'plain HTTP' }),
  ]);
  await stopMember(m);
});

it('warns for a TLS peer port without --peer-client-cert-auth, and not with it', async () => {
  const open = await tlsPeerArgs('tls-open', []);
  const a = await startMember({ name: 'tls-open', args: open.args, bare: true });
  expect(warnings(a.output())).toEqual([
    expect.objectContaining({ level: 'warn', address: open.peer, reason: 'no --peer-client-cert-auth' }),
  ]);
  await stopMember(a);

  const closed = await tlsPeerArgs('tls-auth', ['--peer-client-cert-auth']);
  const b = await startMember({ name: 'tls-auth', args: closed.args, bare: true });
  expect(b.output()).toContain('serving peer traffic');
  expect(warnings(b.output())).toEqual([]);
  await stopMember(b);
});
