// --auth-token jwt: tokens signed with keys made by openssl, used by stock etcdctl, and the
// tokens etcd refuses (malformed, signed with another key or method, expired), a member
// that only verifies, and the options etcd refuses to start with. Expectations were taken
// from real etcd 3.4.23 (run this file with E2E_BINARY=etcd to check them against it again).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createSecretKey } from 'node:crypto';
import path from 'node:path';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthedClient } from './client.js';
import { type Member, cleanup, ctl, etcdctl, startMember, stopMember, tempDir, waitFor } from './harness.js';

afterAll(cleanup);

let dir: string;
const key = (name: string) => path.join(dir, name);
function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(() => {
  dir = tempDir('etcd-ts-jwt-');
  // RSA as PKCS#1 and as PKCS#8, EC as SEC 1, each with its public key
  openssl(['genrsa', '-traditional', '-out', 'rsa.pem', '2048']);
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa-other.pem']);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec256.pem']);
  openssl(['ecparam', '-name', 'secp521r1', '-genkey', '-noout', '-out', 'ec521.pem']);
  for (const k of ['rsa', 'rsa-other', 'ec256', 'ec521']) openssl(['pkey', '-in', `${k}.pem`, '-pubout', '-out', `${k}.pub`]);
  writeFileSync(key('hmac.key'), 'a shared secret of the cluster');
});

const INVALID_TOKEN = { code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' };

function jwtFlag(method: string, files: { priv?: string; pub?: string }, ttl = '10m'): string {
  const parts = ['jwt', `sign-method=${method}`, `ttl=${ttl}`];
  if (files.pub) parts.push(`pub-key=${key(files.pub)}`);
  if (files.priv) parts.push(`priv-key=${key(files.priv)}`);
  return parts.join(',');
}

/** A member with auth on (root:rootpw) and tokens from `authToken`. */
async function authMember(name: string, authToken: string): Promise<Member> {
  const m = await startMember({ name, args: ['--auth-token', authToken, '--bcrypt-cost', '4'] });
  await ctl(m.clientUrl, ['user', 'add', 'root:rootpw']);
  await ctl(m.clientUrl, ['auth', 'enable']);
  return m;
}

describe('JWT tokens', () => {
  const methods: Array<[string, { priv: string; pub?: string }]> = [
    ['RS256', { priv: 'rsa.pem', pub: 'rsa.pub' }],
    ['PS384', { priv: 'rsa-other.pem' }],
    ['ES256', { priv: 'ec256.pem', pub: 'ec256.pub' }],
    ['ES512', { priv: 'ec521.pem' }],
    ['HS512', { priv: 'hmac.key' }],
  ];
  for (const [method, files] of methods) {
    it(`${method}: etcdctl works with the token, which carries username, revision and exp`, async () => {
      const m = await authMember(method.toLowerCase(), jwtFlag(method, files, '7m'));
      expect(await ctl(m.clientUrl, ['--user', 'root:rootpw', 'put', 'k', method])).toBe('OK\n');
      expect(await ctl(m.clientUrl, ['--user', 'root:rootpw', 'get', 'k', '--print-value-only'])).toBe(`${method}\n`);
      const r = await etcdctl(m.clientUrl, ['get', 'k']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('etcdserver: user name is empty');

      const client = new AuthedClient(m.clientUrl);
      const before = Math.floor(Date.now() / 1000);
      const token = await client.authenticate('root', 'rootpw');
      expect(decodeProtectedHeader(token)).toEqual({ alg: method, typ: 'JWT' });
      const claims = decodeJwt(token);
      expect(Object.keys(claims).sort()).toEqual(['exp', 'revision', 'username']);
      expect(claims.username).toBe('root');
      expect(typeof claims.revision).toBe('number');
      // ttl=7m: the token expires 420 s after it was made
      expect(claims.exp! - before).toBeGreaterThanOrEqual(419);
      expect(claims.exp! - before).toBeLessThanOrEqual(421 + 60);
      // a JWT is still good after a restart: no member keeps it
      await stopMember(m);
      const again = await startMember({ name: m.name, dataDir: m.dataDir, args: ['--auth-token', jwtFlag(method, files, '7m')] });
      const client2 = new AuthedClient(again.clientUrl);
      expect(await client2.get(token, 'k')).toBe(method);
      client.close();
      client2.close();
      await stopMember(again);
    });
  }

  it('refuses a malformed token, one signed with another key, method or no signature, and an expired one', async () => {
    const m = await authMember('refuse', jwtFlag('RS256', { priv: 'rsa.pem' }));
    const client = new AuthedClient(m.clientUrl);
    const good = await client.authenticate('root', 'rootpw');
    const { revision } = decodeJwt(good) as { revision: number };
    const exp = Math.floor(Date.now() / 1000) + 600;
    const sign = (alg: string, k: Parameters<SignJWT['sign']>[0], claims: object = { exp, revision, username: 'root' }) =>
      new SignJWT({ ...claims }).setProtectedHeader({ alg, typ: 'JWT' }).sign(k);
    const own = createPrivateKey(readFileSync(key('rsa.pem')));
    const forged = [
      'not-a-jwt',
      good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA'),
      await sign('RS256', createPrivateKey(readFileSync(key('rsa-other.pem')))),
      await sign('PS256', own),
      // the public key as an HMAC secret: the classic algorithm confusion
      await sign('HS256', createSecretKey(readFileSync(key('rsa.pub')))),
      `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp, revision, username: 'root' })).toString('base64url')}.`,
      await sign('RS256', own, { exp: exp - 1200, revision, username: 'root' }),
    ];
    for (const token of forged) await expect(client.get(token, 'k'), token).rejects.toMatchObject(INVALID_TOKEN);
    expect(await client.get(good, 'k')).toBeUndefined();
    client.close();
    await stopMember(m);
  });

  it('a member with only the public key verifies tokens but issues none', async () => {
    const signer = await authMember('signer', jwtFlag('ES256', { priv: 'ec256.pem' }));
    const verifier = await authMember('verifier', jwtFlag('ES256', { pub: 'ec256.pub' }));
    // the same users and auth revision on both: a token from one is good on the other
    const token = await new AuthedClient(signer.clientUrl).authenticate('root', 'rootpw');
    const client = new AuthedClient(verifier.clientUrl);
    await client.put(token, 'verified', 'yes');
    expect(await client.get(token, 'verified')).toBe('yes');
    await expect(client.authenticate('root', 'rootpw')).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: 'auth: token signing attempted with verify-only key',
    });
    client.close();
    await stopMember(signer);
    await stopMember(verifier);
  });

  // flags are made when the test runs: the key files exist only from beforeAll on
  const refusals: Array<[string, () => string, string]> = [
    ['no key', () => jwtFlag('RS256', {}), 'auth: missing key data'],
    ['an unknown sign-method', () => 'jwt,sign-method=XX256,priv-key=/dev/null', 'auth: invalid auth options'],
    ['an option without a value', () => 'jwt,sign-method', 'auth: invalid auth options'],
    ['a key file that does not exist', () => 'jwt,sign-method=RS256,priv-key=/nonexistent/key.pem', 'auth: invalid auth options'],
    ['EdDSA, which etcd 3.4 has no key for', () => jwtFlag('EdDSA', { priv: 'hmac.key' }), 'unsupported signing method: *jwt.SigningMethodEd25519'],
    ['a ttl that is no duration', () => jwtFlag('RS256', { priv: 'rsa.pem' }, 'soon'), 'auth: invalid auth options'],
  ];
  for (const [what, flag, message] of refusals) {
    it(`refuses to start with ${what}`, async () => {
      const m = await startMember({ name: 'bad', args: ['--auth-token', flag()], waitReady: false });
      await waitFor(m, message);
      expect(await m.exited).toBe(1);
    });
  }
});
