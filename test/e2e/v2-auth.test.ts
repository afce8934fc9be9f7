// v2 auth behind --enable-v2, end to end: stock `ETCDCTL_API=2 etcdctl` user, role and
// auth commands, the /v2/auth JSON bodies byte for byte, and what v2 auth lets through on
// /v2/keys and /v2/members. Expectations were taken from real etcd 3.4.23 (run this file
// with E2E_BINARY=etcd to check them against it again).

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../listener/helpers.js';
import { clientUrl, eventually, planCluster, startSlot } from './cluster-harness.js';
import { type HttpOptions, type Member, cleanup, etcdctl2, freePort, httpRequest, startMember, stopMember } from './harness.js';

let pki: TestPki;
beforeAll(() => {
  pki = makePki(); // client.pem has CN "root", other.pem CN "other", both issued by CN "ca"
});
afterAll(async () => {
  await cleanup();
  rmSync(pki.dir, { recursive: true, force: true });
});

const ROOT = ['--username', 'root:rootpw'];

/** etcd's JSON for the built-in root role. */
const ROOT_ROLE_JSON = '{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}';
const NO_AUTH = '{"message":"Insufficient credentials"}';
const KEY_NO_AUTH = '{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}\n';

function call(m: Member, path: string, opts: HttpOptions = {}) {
  return httpRequest(m.clientUrl + path, opts);
}

describe('v2 users, roles and auth enable with stock etcdctl', () => {
  let m: Member;

  it('starts a member with --enable-v2', async () => {
    m = await startMember({ name: 'v2auth', args: ['--enable-v2'] });
  });

  it('answers /v2/auth with auth off: the built-in root role, no users, not enabled', async () => {
    expect((await call(m, '/v2/auth/enable')).text).toBe('{"enabled":false}\n');
    expect((await call(m, '/v2/auth/users')).text).toBe('{"users":null}\n');
    expect((await call(m, '/v2/auth/roles')).text).toBe(`{"roles":[${ROOT_ROLE_JSON}]}\n`);
    const missing = await call(m, '/v2/auth/users/nobody');
    expect([missing.status, missing.text]).toEqual([404, '{"message":"auth: User nobody does not exist."}']);
    const guest = await call(m, '/v2/auth/roles/guest');
    expect([guest.status, guest.text]).toEqual([404, '{"message":"auth: Role guest does not exist."}']);
    const post = await call(m, '/v2/auth/users/x', { method: 'POST' });
    expect([post.status, post.headers.get('allow'), post.text]).toEqual([405, 'GET,PUT,DELETE', 'Method Not Allowed\n']);
    expect((await call(m, '/v2/auth/enable/x')).status).toBe(404);
    const deep = await call(m, '/v2/auth/users/a/b');
    expect([deep.status, deep.text]).toEqual([400, '{"message":"Invalid path"}']);
  });

  it('creates and changes users and roles over curl as etcd 3.4 does (issue 5182)', async () => {
    const put = (path: string, body: string) => call(m, path, { method: 'PUT', body });
    const bad = await put('/v2/auth/users/x', 'notjson');
    expect([bad.status, bad.text]).toEqual([400, '{"message":"Invalid JSON in request body."}']);
    const renamed = await put('/v2/auth/users/x', '{"user":"y","password":"p"}');
    expect([renamed.status, renamed.text]).toEqual([400, '{"message":"User JSON name does not match the name in the URL"}']);
    const noPassword = await put('/v2/auth/users/x', '{"user":"x"}');
    expect([noPassword.status, noPassword.text]).toEqual([400, '{"message":"auth: Cannot create user x with an empty password"}']);

    const created = await put('/v2/auth/users/foo', '{"user":"foo", "password":"pass"}');
    expect([created.status, created.text]).toEqual([201, '{"user":"foo","roles":null}\n']);
    // the same PUT again changes the password: an update, with Go's empty (not nil) roles
    const again = await put('/v2/auth/users/foo', '{"user":"foo", "password":"pass"}');
    expect([again.status, again.text]).toEqual([200, '{"user":"foo","roles":[]}\n']);
    const same = await put('/v2/auth/users/foo', '{"user":"foo"}');
    expect([same.status, same.text]).toEqual([400, '{"message":"auth: User not updated. Use grant/revoke/password to update the user."}']);

    const role = await put('/v2/auth/roles/foo', '{"role":"foo", "permissions": {"kv": {"read": ["/foo/*"]}}}');
    expect([role.status, role.text]).toEqual([201, '{"role":"foo","permissions":{"kv":{"read":["/foo/*"],"write":null}}}\n']);
    const dupRole = await put('/v2/auth/roles/foo', '{"role":"foo"}');
    expect([dupRole.status, dupRole.text]).toEqual([409, '{"message":"auth: Role foo already exists."}']);
    const rootRole = await put('/v2/auth/roles/root', '{"role":"root"}');
    expect([rootRole.status, rootRole.text]).toEqual([403, '{"message":"auth: Cannot modify role root: is root role."}']);
    const dupRead = await put('/v2/auth/roles/foo', '{"role":"foo", "grant": {"kv": {"read": ["/foo/*"]}}}');
    expect([dupRead.status, dupRead.text]).toEqual([409, '{"message":"auth: Granting duplicate read permission /foo/*"}']);
    const granted = await put('/v2/auth/roles/foo', '{"role":"foo", "grant": {"kv": {"write": ["/foo/*","/bar"]}}}');
    expect(granted.text).toBe('{"role":"foo","permissions":{"kv":{"read":["/foo/*"],"write":["/bar","/foo/*"]}}}\n');
    // revoking what was never granted is skipped; nothing left to change is refused
    const revoked = await put('/v2/auth/roles/foo', '{"role":"foo", "revoke": {"kv": {"write": ["/bar","/nope"]}}}');
    expect(revoked.text).toBe('{"role":"foo","permissions":{"kv":{"read":["/foo/*"],"write":["/foo/*"]}}}\n');
    const unchanged = await put('/v2/auth/roles/foo', '{"role":"foo", "revoke": {"kv": {"write": ["/nope"]}}}');
    expect([unchanged.status, unchanged.text]).toEqual([400, '{"message":"auth: Role not updated. Use grant/revoke to update the role."}']);

    const grant = await put('/v2/auth/users/foo', '{"user": "foo", "grant": ["foo"]}');
    expect([grant.status, grant.text]).toEqual([200, '{"user":"foo","roles":["foo"]}\n']);
    const dupGrant = await put('/v2/auth/users/foo', '{"user": "foo", "grant": ["foo"]}');
    expect([dupGrant.status, dupGrant.text]).toEqual([409, '{"message":"auth: Granting duplicate role foo for user foo"}']);
    const both = await put('/v2/auth/users/foo', '{"user": "foo", "roles": ["x"], "grant": ["bar"]}');
    expect([both.status, both.text]).toEqual([400, '{"message":"User JSON contains both roles and grant/revoke"}']);
    // a user created with roles is answered 200, and a role that does not exist fails its GET
    const withRoles = await put('/v2/auth/users/bar', '{"user": "bar", "password":"b", "roles": ["foo","zz"]}');
    expect([withRoles.status, withRoles.text]).toEqual([200, '{"user":"bar","roles":["foo","zz"]}\n']);
    const dangling = await call(m, '/v2/auth/users/bar');
    expect([dangling.status, dangling.text]).toEqual([404, '{"message":"auth: Role zz does not exist."}']);
    const fooRole = '{"role":"foo","permissions":{"kv":{"read":["/foo/*"],"write":["/foo/*"]}}}';
    expect((await call(m, '/v2/auth/users')).text).toBe(`{"users":[{"user":"bar","roles":[${fooRole}]},{"user":"foo","roles":[${fooRole}]}]}\n`);
    // stored in the v2 store, out of the clients' key space
    expect((await call(m, '/v2/keys/2')).status).toBe(404);
  });

  it('etcdctl user, role and auth commands print what etcd prints', async () => {
    const ep = m.clientUrl;
    expect(await etcdctl2(ep, ['user', 'add', 'root:rootpw'])).toEqual({ code: 0, out: 'User root created\n' });
    expect(await etcdctl2(ep, ['user', 'get', 'root'])).toEqual({ code: 0, out: 'User: root\nRoles:  root\n' });
    expect(await etcdctl2(ep, ['user', 'list'])).toEqual({ code: 0, out: 'bar\nfoo\nroot\n' });
    expect(await etcdctl2(ep, ['role', 'list'])).toEqual({ code: 0, out: 'foo\nroot\n' });
    expect(await etcdctl2(ep, ['role', 'get', 'foo'])).toEqual({ code: 0, out: 'Role: foo\nKV Read:\n\t/foo/*\nKV Write:\n\t/foo/*\n' });
    expect(await etcdctl2(ep, ['auth', 'enable'])).toEqual({ code: 0, out: 'Authentication Enabled\n' });
    expect((await call(m, '/v2/auth/enable')).text).toBe('{"enabled":true}\n');
    // enabling made a guest role that reaches every key
    expect(await etcdctl2(ep, [...ROOT, 'role', 'list'])).toEqual({ code: 0, out: 'foo\nguest\nroot\n' });
    expect(await etcdctl2(ep, ['user', 'list'])).toEqual({ code: 1, out: 'Insufficient credentials\n' });
    expect(await etcdctl2(ep, ['--username', 'foo:pass', 'user', 'list'])).toEqual({ code: 1, out: 'Insufficient credentials\n' });

    expect(await etcdctl2(ep, [...ROOT, 'user', 'add', 'nopw:'])).toEqual({ code: 1, out: 'auth: Cannot create user nopw with an empty password\n' });
    expect(await etcdctl2(ep, [...ROOT, 'user', 'grant', '--roles', 'guest', 'bar'])).toEqual({ code: 0, out: 'User bar updated\n' });
    expect(await etcdctl2(ep, [...ROOT, 'user', 'revoke', '--roles', 'zz', 'bar'])).toEqual({ code: 0, out: 'User bar updated\n' });
    expect(await etcdctl2(ep, [...ROOT, 'user', 'revoke', '--roles', 'zz', 'bar'])).toEqual({ code: 1, out: 'auth: Revoking ungranted role zz for user bar\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'add', 'r2'])).toEqual({ code: 0, out: 'Role r2 created\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'grant', '--read', '--path', '/r2/*', 'r2'])).toEqual({ code: 0, out: 'Role r2 updated\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'grant', '--rw', '--path', '/r3', 'r2'])).toEqual({ code: 0, out: 'Role r2 updated\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'revoke', '--write', '--path', '/r3', 'r2'])).toEqual({ code: 0, out: 'Role r2 updated\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'get', 'r2'])).toEqual({ code: 0, out: 'Role: r2\nKV Read:\n\t/r2/*\n\t/r3\nKV Write:\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'remove', 'r2'])).toEqual({ code: 0, out: 'Role r2 removed\n' });
    expect(await etcdctl2(ep, [...ROOT, 'role', 'remove', 'r2'])).toEqual({ code: 1, out: "auth: Role r2 doesn't exist.\n" });
    const rmRoot = await call(m, '/v2/auth/users/root', { method: 'DELETE', auth: 'root:rootpw' });
    expect([rmRoot.status, rmRoot.text]).toEqual([403, '{"message":"auth: Cannot delete root user while auth is enabled."}']);
  });

  it('/v2/keys: a role reaches its patterns, a recursive request only prefix patterns, the guest role the rest', async () => {
    expect((await call(m, '/v2/keys/foo/a', { method: 'PUT', form: { value: '1' } })).status).toBe(201); // guest
    expect((await call(m, '/v2/keys/foo/a', { auth: 'foo:pass' })).json.node.value).toBe('1');
    expect((await call(m, '/v2/keys/foo/?recursive=true', { auth: 'foo:pass' })).status).toBe(200);
    // "/foo" is not under the pattern "/foo/*"
    const outside = await call(m, '/v2/keys/foo?recursive=true', { auth: 'foo:pass' });
    expect([outside.status, outside.text, outside.headers.get('x-etcd-index')]).toEqual([401, KEY_NO_AUTH, '0']);
    expect((await call(m, '/v2/keys/foo/a', { method: 'PUT', form: { value: '3' }, auth: 'foo:pass' })).status).toBe(200);
    expect((await call(m, '/v2/keys/bar', { auth: 'foo:pass' })).text).toBe(KEY_NO_AUTH);
    // a wrong password, an unknown user or a header that is not basic auth: no guest fallback
    for (const a of [{ auth: 'foo:wrong' }, { auth: 'nobody:x' }, { headers: { Authorization: 'Basic !!!' } }]) {
      expect((await call(m, '/v2/keys/foo/a', a)).status).toBe(401);
    }
    expect(await etcdctl2(m.clientUrl, ['--username', 'foo:pass', 'get', '/foo/a'])).toEqual({ code: 0, out: '3\n' });
    // /v2/members: anyone may read, changes need root
    expect((await call(m, '/v2/members')).status).toBe(200);
    const add = await call(m, '/v2/members', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"peerURLs":["http://127.0.0.1:1"]}' });
    expect([add.status, add.text]).toEqual([401, NO_AUTH]);
    expect((await call(m, '/v2/members/1234', { method: 'DELETE', auth: 'foo:pass' })).text).toBe(NO_AUTH);

    // without the guest role's permissions, a request without credentials reaches nothing
    const guest = await call(m, '/v2/auth/roles/guest', { method: 'PUT', auth: 'root:rootpw', body: '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}' });
    expect(guest.text).toBe('{"role":"guest","permissions":{"kv":{"read":[],"write":[]}}}\n');
    expect((await call(m, '/v2/keys/foo/a')).text).toBe(KEY_NO_AUTH);
    expect(await etcdctl2(m.clientUrl, ['get', '/foo/a'])).toEqual({ code: 4, out: 'Error:  110: The request requires user authentication (Insufficient credentials) [0]\n' });
  });

  it('auth disable opens everything again and keeps users and roles', async () => {
    expect(await etcdctl2(m.clientUrl, ['auth', 'disable'])).toEqual({ code: 1, out: 'Insufficient credentials\n' });
    expect(await etcdctl2(m.clientUrl, [...ROOT, 'auth', 'disable'])).toEqual({ code: 0, out: 'Authentication Disabled\n' });
    expect(await etcdctl2(m.clientUrl, ['auth', 'disable'])).toEqual({ code: 1, out: 'auth: already disabled\n' });
    expect(await etcdctl2(m.clientUrl, ['user', 'list'])).toEqual({ code: 0, out: 'bar\nfoo\nroot\n' });
    expect((await call(m, '/v2/keys/foo/a')).json.node.value).toBe('3');
    await stopMember(m);
  });
});

describe('v2 auth with --client-cert-auth', () => {
  it('a request without credentials is the first user named by its certificate chain, else the guest role', async () => {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const m = await startMember({
      name: 'v2cn',
      clientPort: port,
      args: ['--enable-v2', '--listen-client-urls', url, '--advertise-client-urls', url,
        '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth'],
    });
    const tls = (cert: 'client' | 'other') => ({
      ca: pki.ca,
      cert: cert === 'client' ? pki.clientCert : pki.otherClientCert,
      key: cert === 'client' ? pki.clientKey : pki.otherClientKey,
    });
    const v2 = (args: string[]) => etcdctl2(url, ['--ca-file', pki.ca, '--cert-file', pki.otherClientCert, '--key-file', pki.otherClientKey, ...args]);
    expect((await v2(['user', 'add', 'root:rootpw'])).code).toBe(0);
    // "other" is no user, but its issuer's CN "ca" is: etcd walks the whole verified chain
    expect((await v2(['user', 'add', 'ca:capw'])).out).toBe('User ca created\n');
    expect((await v2(['role', 'add', 'cas'])).code).toBe(0);
    expect((await v2(['role', 'grant', '--rw', '--path', '/ca/*', 'cas'])).code).toBe(0);
    expect((await v2(['user', 'grant', '--roles', 'cas', 'ca'])).code).toBe(0);
    expect(await v2(['auth', 'enable'])).toEqual({ code: 0, out: 'Authentication Enabled\n' });

    // the leaf's CN "root" is the root user
    const asRoot = await httpRequest(`${url}/v2/auth/users`, { tls: tls('client') });
    expect(asRoot.status).toBe(200);
    expect(asRoot.json.users.map((u: { user: string }) => u.user)).toEqual(['ca', 'root']);
    // as "ca": its own keys, nothing of root's, and no /v2/auth
    expect((await httpRequest(`${url}/v2/keys/ca/k`, { method: 'PUT', form: { value: 'v' }, tls: tls('other') })).status).toBe(201);
    expect((await httpRequest(`${url}/v2/auth/users`, { tls: tls('other') })).text).toBe(NO_AUTH);
    // basic auth, when given, wins over the certificate
    expect((await httpRequest(`${url}/v2/auth/users`, { tls: tls('other'), auth: 'root:rootpw' })).status).toBe(200);
    // "ca" reaches only /ca/*, but a user found by certificate gets no guest fallback either way
    const outside = await httpRequest(`${url}/v2/keys/elsewhere`, { method: 'PUT', form: { value: 'v' }, tls: tls('other') });
    expect([outside.status, outside.text]).toEqual([401, KEY_NO_AUTH]);
    await stopMember(m);
  });
});

describe('v2 auth in a three-member cluster', () => {
  it('is enabled through one member, enforced by the others, and survives restarts and snapshots', async () => {
    const plan = await planCluster(3, 'v2a');
    const args = ['--enable-v2', '--snapshot-count', '10'];
    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { args })));
    const [a, , c] = plan.slots.map(clientUrl);
    expect(await etcdctl2(a!, ['--no-sync', 'user', 'add', 'root:rootpw'])).toMatchObject({ code: 0 });
    expect(await etcdctl2(a!, ['--no-sync', 'role', 'add', 'app'])).toMatchObject({ code: 0 });
    expect(await etcdctl2(a!, ['--no-sync', 'role', 'grant', '--rw', '--path', '/app/*', 'app'])).toMatchObject({ code: 0 });
    expect(await etcdctl2(a!, ['--no-sync', 'user', 'add', 'app:apppw'])).toMatchObject({ code: 0 });
    expect(await etcdctl2(a!, ['--no-sync', 'user', 'grant', '--roles', 'app', 'app'])).toMatchObject({ code: 0 });
    expect(await etcdctl2(a!, ['--no-sync', 'auth', 'enable'])).toEqual({ code: 0, out: 'Authentication Enabled\n' });
    await httpRequest(`${a}/v2/auth/roles/guest`, { method: 'PUT', auth: 'root:rootpw', body: '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}' });
    // more than --snapshot-count entries, so the restarted member reads auth from a .snap
    for (let i = 0; i < 15; i++) await httpRequest(`${a}/v2/keys/app/k${i}`, { method: 'PUT', form: { value: String(i) }, auth: 'app:apppw' });

    const checkOn = async (ep: string) => {
      // a v2 read is served from the member's own store: wait until it applied the last write
      await eventually(async () => expect((await httpRequest(`${ep}/v2/keys/app/k14`, { auth: 'app:apppw' })).json?.node?.value).toBe('14'));
      expect((await httpRequest(`${ep}/v2/keys/app/k1`)).text).toBe(KEY_NO_AUTH);
      expect((await httpRequest(`${ep}/v2/keys/app/k1`, { auth: 'app:apppw' })).json.node.value).toBe('1');
      expect((await httpRequest(`${ep}/v2/keys/other`, { method: 'PUT', form: { value: 'x' }, auth: 'app:apppw' })).status).toBe(401);
      expect(await etcdctl2(ep, ['--no-sync', '--username', 'root:rootpw', 'user', 'list'])).toEqual({ code: 0, out: 'app\nroot\n' });
    };
    await checkOn(c!);

    await stopMember(members[2]!);
    members[2] = await startSlot(plan, plan.slots[2]!, { args });
    await checkOn(c!);
    for (const mem of members) await stopMember(mem);
  }, 120_000);
});
