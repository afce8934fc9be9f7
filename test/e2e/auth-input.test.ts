// Auth under unusual input, side by side with real etcd 3.4.23 (E2E_BINARY=etcd): empty
// and long names, a token that belongs to another member, and membership changes with
// auth on (root only).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthedClient, EtcdClient } from './client.js';
import { type Member, binary, cleanup, ctl, etcdctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

async function enableAuth(m: Member): Promise<void> {
  for (const args of [['user', 'add', 'root:rootpw'], ['user', 'grant-role', 'root', 'root'], ['user', 'add', 'alice:alicepw'], ['auth', 'enable']]) {
    await ctl(m.clientUrl, args);
  }
}

function grpcError(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: { code: number; details: string }) => `${e.code} ${e.details}`,
  );
}

describe('auth input', () => {
  let m: Member;
  beforeAll(async () => {
    m = await startMember({ name: 'ai' });
  });

  it('an empty user or role name is refused with etcd errors; a long one works, one past bbolt\'s key limit is refused', async () => {
    const c = new EtcdClient(m.clientUrl);
    const auth = c.authClient();
    try {
      expect(await grpcError(c.call(auth, 'UserAdd', { name: '', password: 'x' }))).toBe('3 etcdserver: user name is empty');
      expect(await grpcError(c.call(auth, 'RoleAdd', { name: '' }))).toBe('3 etcdserver: role name is empty');
      const long = 'u'.repeat(10_000);
      expect(await grpcError(c.call(auth, 'UserAdd', { name: long, password: 'x' }))).toBe('ok');
      expect(await grpcError(c.call(auth, 'RoleAdd', { name: long }))).toBe('ok');
      expect(await grpcError(c.call(auth, 'UserGrantRole', { user: long, role: long }))).toBe('ok');
      const got = await c.call<{ roles: string[] }>(auth, 'UserGet', { name: long });
      expect(got.roles).toEqual([long]);
      if (binary === 'etcd-ts') {
        // past bbolt's key limit real etcd exits ("key too large"); etcd-ts refuses the name
        const tooLong = 'x'.repeat(32_769);
        expect(await grpcError(c.call(auth, 'UserAdd', { name: tooLong, password: 'x' }))).toBe('3 etcdserver: user name is longer than 32768 bytes');
        expect(await grpcError(c.call(auth, 'RoleAdd', { name: tooLong }))).toBe('3 etcdserver: role name is longer than 32768 bytes');
        expect(await grpcError(c.call(auth, 'RoleAdd', { name: 'x'.repeat(32_768) }))).toBe('ok');
      }
    } finally {
      auth.close();
      c.close();
    }
  });

  it('a token from another member is an invalid token', async () => {
    await enableAuth(m);
    const other = await startMember({ name: 'ai2' });
    await enableAuth(other);
    const here = new AuthedClient(m.clientUrl);
    const there = new AuthedClient(other.clientUrl);
    try {
      const foreign = await there.authenticate('root', 'rootpw');
      expect(await grpcError(here.get(foreign, 'k'))).toBe('16 etcdserver: invalid auth token');
    } finally {
      here.close();
      there.close();
      await stopMember(other);
    }
  }, 60_000);

  it('member add, update and remove need root while auth is on', async () => {
    const m = await startMember({ name: 'ai3' });
    await enableAuth(m);
    // a learner: adding a voter that never starts would leave one member without a quorum
    const peer = 'http://127.0.0.1:1';
    const asAlice = await etcdctl(m.clientUrl, ['--user', 'alice:alicepw', 'member', 'add', 'x', '--learner', `--peer-urls=${peer}`]);
    expect(asAlice.stderr).toContain('etcdserver: permission denied');
    const added = await ctl(m.clientUrl, ['--user', 'root:rootpw', 'member', 'add', 'x', '--learner', `--peer-urls=${peer}`]);
    // etcdctl prints the ID as %16x: one with a leading zero digit comes space-padded
    const id = /Member +([0-9a-f]+) added/.exec(added)![1]!;
    expect((await etcdctl(m.clientUrl, ['--user', 'alice:alicepw', 'member', 'update', id, '--peer-urls=http://127.0.0.1:2'])).stderr).toContain(
      'etcdserver: permission denied',
    );
    await ctl(m.clientUrl, ['--user', 'root:rootpw', 'member', 'update', id, '--peer-urls=http://127.0.0.1:2']);
    expect((await etcdctl(m.clientUrl, ['--user', 'alice:alicepw', 'member', 'remove', id])).stderr).toContain('etcdserver: permission denied');
    await ctl(m.clientUrl, ['--user', 'root:rootpw', 'member', 'remove', id]);
    expect(await ctl(m.clientUrl, ['--user', 'alice:alicepw', 'member', 'list'])).not.toContain(id);
    await stopMember(m);
  }, 60_000);
});
