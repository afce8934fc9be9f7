// Auth with stock etcdctl 3.4 against one member: users, roles, permissions, tokens and
// what each call is refused with. Expectations were taken from real etcd 3.4.23 (run
// this file with E2E_BINARY=etcd to check them against it again).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Member, binary, cleanup, ctl, etcdctl, spawnCtl, startMember, stopMember, tempDir } from './harness.js';
import { AuthedClient } from './client.js';

/** etcdctl's stderr without clientv3's retry log lines. */
function errorOf(r: { stderr: string }): string {
  return r.stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'))
    .join('\n');
}

const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:alicepw'];
const BOB = ['--user', 'bob:bobpw'];

let m: Member;
let ep: string;

beforeAll(async () => {
  m = await startMember({ name: 'auth', args: ['--bcrypt-cost', '4'] });
  ep = m.clientUrl;
});
afterAll(cleanup);

describe('with auth off', () => {
  it('credentials are ignored and enabling needs a root user with the root role', async () => {
    expect(await ctl(ep, ['--user', 'nobody:nothing', 'put', 'off/k', 'v'])).toBe('OK\n');
    const noRoot = await etcdctl(ep, ['auth', 'enable']);
    expect(noRoot.code).toBe(1);
    expect(errorOf(noRoot)).toBe('Error: etcdserver: root user does not exist');
  });
});

describe('users, roles and permissions', () => {
  it('are managed with etcdctl and refused with etcd errors', async () => {
    expect(await ctl(ep, ['user', 'add', 'root', '--new-user-password=rootpw'])).toBe('User root created\n');
    const dup = await etcdctl(ep, ['user', 'add', 'root', '--new-user-password=x']);
    expect(errorOf(dup)).toBe('Error: etcdserver: user name already exists');
    expect(await ctl(ep, ['role', 'add', 'prefixed'])).toBe('Role prefixed created\n');
    expect(await ctl(ep, ['role', 'grant-permission', 'prefixed', 'readwrite', 'app/', '--prefix'])).toBe('Role prefixed updated\n');
    expect(await ctl(ep, ['role', 'grant-permission', 'prefixed', 'read', 'conf'])).toBe('Role prefixed updated\n');
    expect(await ctl(ep, ['role', 'grant-permission', 'prefixed', 'write', 'wo'])).toBe('Role prefixed updated\n');
    expect(await ctl(ep, ['role', 'grant-permission', 'prefixed', 'readwrite', 'zz', '--from-key'])).toBe('Role prefixed updated\n');
    expect(await ctl(ep, ['role', 'get', 'prefixed'])).toBe(
      'Role prefixed\nKV Read:\n\t[app/, app0) (prefix app/)\n\tconf\n\t[zz, <open ended>\nKV Write:\n\t[app/, app0) (prefix app/)\n\two\n\t[zz, <open ended>\n',
    );
    expect(await ctl(ep, ['user', 'add', 'alice', '--new-user-password=alicepw'])).toBe('User alice created\n');
    expect(await ctl(ep, ['user', 'grant-role', 'alice', 'prefixed'])).toBe('Role prefixed is granted to user alice\n');
    expect(await ctl(ep, ['user', 'add', 'bob', '--new-user-password=bobpw'])).toBe('User bob created\n');
    expect(errorOf(await etcdctl(ep, ['user', 'grant-role', 'bob', 'nope']))).toBe('Error: etcdserver: role name not found');
    expect(errorOf(await etcdctl(ep, ['user', 'revoke-role', 'bob', 'prefixed']))).toBe('Error: etcdserver: role is not granted to the user');
    expect(errorOf(await etcdctl(ep, ['role', 'revoke-permission', 'prefixed', 'nokey']))).toBe(
      'Error: etcdserver: permission is not granted to the role',
    );
    expect(errorOf(await etcdctl(ep, ['user', 'get', 'nobody']))).toBe('Error: etcdserver: user name not found');
    expect(await ctl(ep, ['user', 'list'])).toBe('alice\nbob\nroot\n');
    expect(await ctl(ep, ['role', 'list'])).toBe('prefixed\n');
    expect(await ctl(ep, ['user', 'get', 'alice'])).toBe('User: alice\nRoles: prefixed\n');
  });

  it('auth enable makes root a root (etcdctl adds the role) and then every call needs a user', async () => {
    expect(await ctl(ep, ['auth', 'enable'])).toBe('Authentication Enabled\n');
    const anonymous = await etcdctl(ep, ['put', 'app/x', '1']);
    expect(errorOf(anonymous)).toBe('Error: etcdserver: user name is empty');
    const wrong = await etcdctl(ep, ['--user', 'root:wrong', 'get', 'x']);
    expect(errorOf(wrong)).toBe('Error: etcdserver: authentication failed, invalid user ID or password');
    expect(await ctl(ep, [...ROOT, 'user', 'get', 'root'])).toBe('User: root\nRoles: root\n');
    // the user and password as separate flags, as scripts pass them
    expect(await ctl(ep, ['--user', 'root', '--password', 'rootpw', 'put', 'any/key', 'v'])).toBe('OK\n');
  });

  it('a user reaches exactly the keys, prefixes and from-key ranges of their roles', async () => {
    expect(await ctl(ep, [...ALICE, 'put', 'app/a', '1'])).toBe('OK\n');
    expect(await ctl(ep, [...ALICE, 'get', 'app/', '--prefix'])).toBe('app/a\n1\n');
    expect(await ctl(ep, [...ALICE, 'put', 'zzz', '2'])).toBe('OK\n');
    expect(await ctl(ep, [...ALICE, 'get', 'zz', '--from-key', '--keys-only'])).toBe('zzz\n\n');
    expect(await ctl(ep, [...ALICE, 'put', 'wo', 'w'])).toBe('OK\n');
    const denied = [
      ['put', 'other', 'x'],
      ['get', 'other'],
      ['get', 'app', '--prefix'], // wider than app/
      ['get', 'z', '--from-key'], // starts before zz
      ['put', 'conf', 'x'], // read-only key
      ['get', 'wo'], // write-only key
      ['put', 'wo', 'w', '--prev-kv'], // prev_kv reads it
    ];
    for (const args of denied) {
      const r = await etcdctl(ep, [...ALICE, ...args]);
      expect([args.join(' '), errorOf(r)]).toEqual([args.join(' '), 'Error: etcdserver: permission denied']);
    }
    expect(await ctl(ep, [...ALICE, 'del', 'app/', '--prefix', '--prev-kv'])).toBe('1\napp/a\n1\n');
    // a user without roles may read their own user but not others'
    expect(await ctl(ep, [...BOB, 'user', 'get', 'bob'])).toBe('User: bob\nRoles:\n');
    expect(errorOf(await etcdctl(ep, [...BOB, 'user', 'get', 'alice']))).toBe('Error: etcdserver: permission denied');
    expect(errorOf(await etcdctl(ep, [...BOB, 'user', 'list']))).toBe('Error: etcdserver: permission denied');
    expect(errorOf(await etcdctl(ep, [...ALICE, 'role', 'add', 'mine']))).toBe('Error: etcdserver: permission denied');
    // a role's members may read it
    expect(await ctl(ep, [...ALICE, 'role', 'get', 'prefixed'])).toMatch(/^Role prefixed\n/);
  });

  it('every op of a txn, nested ones included, is checked', async () => {
    const allowed = await ctl(ep, [...ALICE, 'txn'], 'value("app/t") = "x"\n\n\nput app/t y\n\n');
    expect(allowed).toBe('FAILURE\n\nOK\n');
    const compareOutside = await etcdctl(ep, [...ALICE, 'txn'], 'value("other") = "x"\n\n\nput app/t y\n\n');
    expect(errorOf(compareOutside)).toBe('Error: etcdserver: permission denied');
    // the branch not taken is checked too
    const opOutside = await etcdctl(ep, [...ALICE, 'txn'], '\nput app/t y\n\nput other z\n\n');
    expect(errorOf(opOutside)).toBe('Error: etcdserver: permission denied');
  });

  it('the ops of a nested txn are checked too (etcd 3.4.23 lets them through)', async () => {
    const client = new AuthedClient(ep);
    try {
      const token = await client.authenticate('alice', 'alicepw');
      const put = (key: string) => ({ request_put: { key: Buffer.from(key), value: Buffer.from('n') } });
      await client.txn(token, { success: [{ request_txn: { success: [put('app/nested')] } }] });
      const nested = client.txn(token, { success: [{ request_txn: { success: [put('app/nested'), put('nested-outside')] } }] });
      if (binary === 'etcd') {
        // etcd 3.4's checkTxnReqsPermission has no case for a nested txn: the put lands
        await nested;
        expect(await ctl(ep, [...ROOT, 'get', 'nested-outside', '--print-value-only'])).toBe('n\n');
      } else {
        await expect(nested).rejects.toMatchObject({ details: 'etcdserver: permission denied' });
        expect(await ctl(ep, [...ROOT, 'get', 'nested-outside'])).toBe('');
      }
    } finally {
      client.close();
    }
  });

  it('a role or user change reaches the user\'s very next put and serializable get', async () => {
    // Each user's permissions are merged once and kept (etcd's unifiedRangePermissions):
    // every grant, revoke and delete must replace what was kept.
    const DAVE = ['--user', 'dave:davepw'];
    const can = async (...args: string[]) => {
      const r = await etcdctl(ep, [...DAVE, ...args]);
      if (r.code === 0) return 'ok';
      expect(errorOf(r)).toBe('Error: etcdserver: permission denied');
      return 'denied';
    };
    const putAndGet = async () => [await can('put', 'dyn/a', 'v'), await can('get', 'dyn/a', '--consistency=s')];
    await ctl(ep, [...ROOT, 'user', 'add', 'dave', '--new-user-password=davepw']);
    await ctl(ep, [...ROOT, 'role', 'add', 'dyn']);
    await ctl(ep, [...ROOT, 'role', 'add', 'dyn2']);
    expect(await putAndGet()).toEqual(['denied', 'denied']);
    await ctl(ep, [...ROOT, 'user', 'grant-role', 'dave', 'dyn']);
    expect(await putAndGet()).toEqual(['denied', 'denied']); // the role grants nothing yet
    await ctl(ep, [...ROOT, 'role', 'grant-permission', 'dyn', 'readwrite', 'dyn/a', 'dyn/m']);
    expect(await putAndGet()).toEqual(['ok', 'ok']);
    await ctl(ep, [...ROOT, 'role', 'grant-permission', 'dyn', 'read', 'dyn/a', 'dyn/m']); // narrowed to read
    expect(await putAndGet()).toEqual(['denied', 'ok']);
    // a range two roles cover together, then one of them no longer
    expect(await can('get', 'dyn/a', 'dyn/z', '--consistency=s')).toBe('denied');
    await ctl(ep, [...ROOT, 'role', 'grant-permission', 'dyn2', 'read', 'dyn/m', 'dyn/z']);
    await ctl(ep, [...ROOT, 'user', 'grant-role', 'dave', 'dyn2']);
    expect(await can('get', 'dyn/a', 'dyn/z', '--consistency=s')).toBe('ok');
    await ctl(ep, [...ROOT, 'role', 'revoke-permission', 'dyn2', 'dyn/m', 'dyn/z']);
    expect(await can('get', 'dyn/a', 'dyn/z', '--consistency=s')).toBe('denied');
    await ctl(ep, [...ROOT, 'role', 'revoke-permission', 'dyn', 'dyn/a', 'dyn/m']);
    expect(await putAndGet()).toEqual(['denied', 'denied']);
    await ctl(ep, [...ROOT, 'role', 'grant-permission', 'dyn', 'readwrite', 'dyn/', '--prefix']);
    expect(await putAndGet()).toEqual(['ok', 'ok']);
    await ctl(ep, [...ROOT, 'user', 'revoke-role', 'dave', 'dyn']);
    expect(await putAndGet()).toEqual(['denied', 'denied']);
    await ctl(ep, [...ROOT, 'user', 'grant-role', 'dave', 'dyn']);
    expect(await putAndGet()).toEqual(['ok', 'ok']);
    await ctl(ep, [...ROOT, 'role', 'delete', 'dyn']);
    expect(await putAndGet()).toEqual(['denied', 'denied']);
    // a new role of the same name starts empty: the deleted one's permissions are gone for good
    await ctl(ep, [...ROOT, 'role', 'add', 'dyn']);
    await ctl(ep, [...ROOT, 'user', 'grant-role', 'dave', 'dyn']);
    expect(await putAndGet()).toEqual(['denied', 'denied']);
    await ctl(ep, [...ROOT, 'user', 'delete', 'dave']);
    await ctl(ep, [...ROOT, 'role', 'delete', 'dyn']);
    await ctl(ep, [...ROOT, 'role', 'delete', 'dyn2']);
  });

  it('root is protected while auth is on', async () => {
    for (const args of [['user', 'delete', 'root'], ['role', 'delete', 'root'], ['user', 'revoke-role', 'root', 'root']]) {
      expect(errorOf(await etcdctl(ep, [...ROOT, ...args]))).toBe('Error: etcdserver: invalid auth management');
    }
  });
});

describe('watch, leases and admin calls with auth on', () => {
  it('a watch outside the user\'s permission is refused when created', async () => {
    const refused = spawnCtl(ep, [...ALICE, 'watch', 'other']);
    expect(await refused.exited).toBe(5);
    expect(refused.output()).toBe('');
    expect(refused.stderr()).toContain('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)');
    const allowed = spawnCtl(ep, [...ALICE, 'watch', 'app/', '--prefix']);
    // a put is seen only once the watcher exists: retry until the event shows
    for (let i = 0; !allowed.output().includes('app/w'); i++) {
      await ctl(ep, [...ALICE, 'put', 'app/w', String(i)]);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(allowed.output()).toMatch(/^PUT\napp\/w\n/);
    await allowed.kill();
  });

  it('a lease is revoked only by who may write every key on it', async () => {
    const granted = await ctl(ep, [...ALICE, 'lease', 'grant', '600']);
    const id = /lease ([0-9a-f]+) granted/.exec(granted)![1]!;
    expect(await ctl(ep, [...ALICE, 'put', 'app/leased', 'v', '--lease', id])).toBe('OK\n');
    const byBob = await etcdctl(ep, [...BOB, 'lease', 'revoke', id]);
    expect(errorOf(byBob)).toBe('Error: failed to revoke lease (etcdserver: permission denied)');
    expect(await ctl(ep, [...ALICE, 'get', 'app/leased', '--print-value-only'])).toBe('v\n');
    expect(await ctl(ep, [...ALICE, 'lease', 'revoke', id])).toBe(`lease ${id} revoked\n`);
    expect(await ctl(ep, [...ALICE, 'get', 'app/leased'])).toBe('');
  });

  it('an expired lease takes its keys with it, whoever wrote them', async () => {
    const granted = await ctl(ep, [...ALICE, 'lease', 'grant', '2']);
    const id = /lease ([0-9a-f]+) granted/.exec(granted)![1]!;
    expect(await ctl(ep, [...ALICE, 'put', 'app/expiring', 'v', '--lease', id])).toBe('OK\n');
    const deadline = Date.now() + 20_000;
    while ((await ctl(ep, [...ALICE, 'get', 'app/expiring'])) !== '') {
      if (Date.now() > deadline) throw new Error(`lease ${id} did not expire`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await ctl(ep, [...ALICE, 'lease', 'timetolive', id])).toBe(`lease ${id} already expired\n`);
  });

  it('defragment, snapshot and hashes need root; status, members and health do not', async () => {
    const defrag = await etcdctl(ep, [...ALICE, 'defrag']);
    expect(defrag.code).toBe(1);
    expect(defrag.stdout + errorOf(defrag)).toContain('(rpc error: code = Unknown desc = auth: permission denied)');
    const snap = await etcdctl(ep, [...ALICE, 'snapshot', 'save', path.join(tempDir(), 's.db')]);
    expect(errorOf(snap)).toBe('Error: rpc error: code = Unknown desc = auth: permission denied');
    expect(await ctl(ep, [...ROOT, 'defrag'])).toMatch(/^Finished defragmenting etcd member/);
    expect(await ctl(ep, [...ROOT, 'snapshot', 'save', path.join(tempDir(), 'root.db')])).toMatch(/Snapshot saved at/);
    // etcdctl counts "permission denied" on its probe key as healthy; no user at all is not
    const health = await etcdctl(ep, [...ALICE, 'endpoint', 'health']);
    expect([health.code, health.stdout + health.stderr]).toEqual([0, expect.stringMatching(/is healthy/)]);
    const anonymous = await etcdctl(ep, ['endpoint', 'health']);
    expect(anonymous.stdout + anonymous.stderr).toContain('is unhealthy: failed to commit proposal: etcdserver: user name is empty');
    expect(await ctl(ep, [...ALICE, 'member', 'list'])).toMatch(/, started, auth, /);
    const memberAdd = await etcdctl(ep, [...ALICE, 'member', 'add', 'x', '--peer-urls', 'http://127.0.0.1:1']);
    expect(errorOf(memberAdd)).toBe('Error: etcdserver: permission denied');
  });
});

describe('tokens', () => {
  it('a token stops working when its user is deleted or gets a new password', async () => {
    const client = new AuthedClient(ep);
    try {
      expect(await ctl(ep, [...ROOT, 'user', 'add', 'carol', '--new-user-password=c1'])).toBe('User carol created\n');
      expect(await ctl(ep, [...ROOT, 'user', 'grant-role', 'carol', 'prefixed'])).toContain('granted');
      const token = await client.authenticate('carol', 'c1');
      await client.put(token, 'app/carol', '1');
      expect(await ctl(ep, [...ROOT, 'user', 'passwd', 'carol', '--interactive=false'], 'c2\n')).toBe('Password updated\n');
      await expect(client.put(token, 'app/carol', '2')).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' });
      await expect(client.authenticate('carol', 'c1')).rejects.toMatchObject({ details: 'etcdserver: authentication failed, invalid user ID or password' });
      const token2 = await client.authenticate('carol', 'c2');
      await client.put(token2, 'app/carol', '3');
      expect(await ctl(ep, [...ROOT, 'user', 'delete', 'carol'])).toBe('User carol deleted\n');
      await expect(client.put(token2, 'app/carol', '4')).rejects.toMatchObject({ details: 'etcdserver: invalid auth token' });
      await expect(client.put('garbage', 'app/carol', '5')).rejects.toMatchObject({ details: 'etcdserver: invalid auth token' });
    } finally {
      client.close();
    }
  });

  it('a simple token expires after --auth-token-ttl unused, and each use extends it', async () => {
    const short = await startMember({ name: 'ttl', args: ['--bcrypt-cost', '4', '--auth-token-ttl', '2'] });
    const client = new AuthedClient(short.clientUrl);
    try {
      await ctl(short.clientUrl, ['user', 'add', 'root', '--new-user-password=pw']);
      await ctl(short.clientUrl, ['auth', 'enable']);
      const token = await client.authenticate('root', 'pw');
      // used every half second for twice the TTL: still alive
      for (let i = 0; i < 8; i++) {
        await client.put(token, 'k', String(i));
        await new Promise((r) => setTimeout(r, 500));
      }
      // then left alone for longer than the TTL (plus etcd's 1 s sweep)
      await new Promise((r) => setTimeout(r, 3500));
      await expect(client.put(token, 'k', 'late')).rejects.toMatchObject({ details: 'etcdserver: invalid auth token' });
    } finally {
      client.close();
      await stopMember(short);
    }
  });
});

describe('the JSON gateway', () => {
  it('serves /v3/auth/* and takes the token in the Authorization header', async () => {
    const post = async (p: string, body: object, token?: string) => {
      const res = await fetch(`${ep}${p}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: token === undefined ? {} : { authorization: token },
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const auth = await post('/v3/auth/authenticate', { name: 'alice', password: 'alicepw' });
    expect(auth.status).toBe(200);
    const token = auth.body['token'] as string;
    expect(token).toMatch(/^[a-zA-Z]{16}\.\d+$/);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect((await post('/v3/kv/put', { key: b64('app/gw'), value: b64('v') }, token)).status).toBe(200);
    const denied = await post('/v3/kv/put', { key: b64('other'), value: b64('v') }, token);
    expect(denied).toEqual({ status: 403, body: { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 } });
    const noToken = await post('/v3/kv/range', { key: b64('app/gw') });
    expect(noToken.body).toMatchObject({ code: 3, error: 'etcdserver: user name is empty' });
    const roles = await post('/v3/auth/user/get', { name: 'alice' }, token);
    expect(roles.body['roles']).toEqual(['prefixed']);
  });
});

describe('after auth disable', () => {
  it('calls need no user again, and users and roles are kept', async () => {
    expect(await ctl(ep, [...ROOT, 'auth', 'disable'])).toBe('Authentication Disabled\n');
    expect(await ctl(ep, ['put', 'other', 'free'])).toBe('OK\n');
    expect(await ctl(ep, ['user', 'list'])).toBe('alice\nbob\nroot\n');
    const notEnabled = await etcdctl(ep, ['put', 'x', 'y', '--user', 'alice:alicepw']);
    expect(notEnabled.code).toBe(0);
  });
});

