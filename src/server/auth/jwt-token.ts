// --auth-token: etcd's option string ("simple", or "jwt,sign-method=...,priv-key=...,
// pub-key=...,ttl=...") and the JWT token provider (etcd's auth/jwt.go). A JWT carries
// the user and the auth revision it was issued at, and expires after the TTL; any member
// with the key verifies it without asking anyone, so JWTs survive restarts and work on
// every member. The signing is jose's; the keys are Node's (PKCS#1, SEC 1, PKCS#8, SPKI or
// a certificate, as jwt-go reads them). With only a public key a member verifies tokens
// but cannot issue them, as etcd allows.

import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as Jose from 'jose';
import { parseGoDuration } from '../config/values.js';

/** etcd's errors, with its wording. */
export const AuthTokenErrors = {
  invalidOptions: 'auth: invalid auth options',
  invalidMethod: 'auth: invalid auth signature method',
  missingKey: 'auth: missing key data',
  keyMismatch: "auth: public and private keys don't match",
  verifyOnly: 'auth: token signing attempted with verify-only key',
} as const;

/** A bad --auth-token: etcd's message, and what was wrong where etcd only logs it. */
export class AuthTokenOptionError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(detail === undefined ? message : `${message} (${detail})`);
    this.name = 'AuthTokenOptionError';
  }
}

/**
 * jose, loaded when a JWT provider is made: only members with --auth-token jwt use it,
 * and importing it cost every other member a tenth of a second of CPU at start.
 */
let jose: Promise<typeof Jose> | undefined;
function loadJose(): Promise<typeof Jose> {
  return (jose ??= import('jose'));
}

const KNOWN_OPTIONS = new Set(['sign-method', 'pub-key', 'priv-key', 'ttl']);
const DEFAULT_TTL_MS = 5 * 60_000;

/** etcd's decomposeOpts: the token type, then key=value pairs, none repeated. */
export function decomposeAuthToken(s: string): { type: string; options: Map<string, string> } {
  const [type, ...pairs] = s.split(',');
  const options = new Map<string, string>();
  for (const pair of pairs) {
    const kv = pair.split('=');
    if (kv.length !== 2) throw new AuthTokenOptionError(AuthTokenErrors.invalidOptions, `invalid token specific option: ${s}`);
    if (options.has(kv[0]!)) throw new AuthTokenOptionError(AuthTokenErrors.invalidOptions, `duplicated parameter ${kv[0]} in ${s}`);
    options.set(kv[0]!, kv[1]!);
  }
  return { type: type!, options };
}

/** The JWT algorithms etcd 3.4 signs with (jwt-go's methods its Key() knows), by family. */
const METHODS: Record<string, 'rsa' | 'ec' | 'hmac'> = {
  RS256: 'rsa', RS384: 'rsa', RS512: 'rsa',
  PS256: 'rsa', PS384: 'rsa', PS512: 'rsa',
  ES256: 'ec', ES384: 'ec', ES512: 'ec',
  HS256: 'hmac', HS384: 'hmac', HS512: 'hmac',
};
/** Methods jwt-go knows but etcd 3.4 has no key for: etcd fails to start with these words. */
const UNSUPPORTED: Record<string, string> = { none: '*jwt.signingMethodNone', EdDSA: '*jwt.SigningMethodEd25519', Ed25519: '*jwt.SigningMethodEd25519' };
/** ES256 signs with P-256 and so on: another curve cannot make a valid signature. */
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

function readKey(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AuthTokenOptionError(AuthTokenErrors.invalidOptions, (err as Error).message);
  }
}

export class JwtTokens {
  private constructor(
    readonly alg: string,
    readonly ttlMs: number,
    /** undefined: verify only */
    private readonly signingKey: KeyObject | undefined,
    private readonly verifyingKey: KeyObject,
  ) {
    // in the background now, so that the first Authenticate does not wait for it; a
    // failure shows where a token is signed or checked
    loadJose().catch(() => undefined);
  }

  // JWTs are stateless: nothing to start, forget or revoke (etcd's tokenJWT does the same)
  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}

  /** Reads the options and keys of "jwt,..." (etcd's newTokenProviderJWT); throws AuthTokenOptionError. */
  static load(options: ReadonlyMap<string, string>, warn: (unknownKeys: string[]) => void = () => {}): JwtTokens {
    const ttlText = options.get('ttl') ?? '';
    const ttl = ttlText === '' ? ({ ok: true, value: DEFAULT_TTL_MS } as const) : parseGoDuration(ttlText);
    if (!ttl.ok) throw new AuthTokenOptionError(AuthTokenErrors.invalidOptions, ttl.reason);
    const ttlMs = ttl.value;
    const pub = options.get('pub-key') ? readKey(options.get('pub-key')!) : undefined;
    const priv = options.get('priv-key') ? readKey(options.get('priv-key')!) : undefined;
    const alg = options.get('sign-method') ?? '';
    if (UNSUPPORTED[alg] !== undefined) throw new AuthTokenOptionError(`unsupported signing method: ${UNSUPPORTED[alg]}`);
    const family = METHODS[alg];
    if (family === undefined) throw new AuthTokenOptionError(AuthTokenErrors.invalidOptions, `${AuthTokenErrors.invalidMethod}: ${JSON.stringify(alg)}`);
    const unknown = [...options.keys()].filter((k) => !KNOWN_OPTIONS.has(k));
    if (unknown.length > 0) warn(unknown);

    if (family === 'hmac') {
      if (priv === undefined || priv.length === 0) throw new AuthTokenOptionError(AuthTokenErrors.missingKey);
      const secret = createSecretKey(priv);
      return new JwtTokens(alg, ttlMs, secret, secret);
    }
    const privateKey = priv !== undefined ? asymmetric(() => createPrivateKey(priv), family, alg, 'private') : undefined;
    const publicKey = pub !== undefined ? asymmetric(() => createPublicKey(pub), family, alg, 'public') : undefined;
    if (privateKey === undefined) {
      if (publicKey === undefined) throw new AuthTokenOptionError(AuthTokenErrors.missingKey);
      return new JwtTokens(alg, ttlMs, undefined, publicKey);
    }
    if (publicKey !== undefined && !samePublicKey(publicKey, createPublicKey(privateKey))) throw new AuthTokenOptionError(AuthTokenErrors.keyMismatch);
    return new JwtTokens(alg, ttlMs, privateKey, createPublicKey(privateKey));
  }

  /** A token for `username` at auth revision `revision` (etcd's assign): claims username, revision and exp. */
  async assign(username: string, revision: number): Promise<string> {
    if (this.signingKey === undefined) throw new Error(AuthTokenErrors.verifyOnly);
    const { SignJWT } = await loadJose();
    const exp = Math.floor((Date.now() + this.ttlMs) / 1000);
    return new SignJWT({ exp, revision, username }).setProtectedHeader({ alg: this.alg, typ: 'JWT' }).sign(this.signingKey);
  }

  /**
   * Who a token names, or undefined when it is malformed, signed with another key or
   * method, expired, or lacks etcd's claims (etcd's info).
   */
  async info(token: string): Promise<{ username: string; revision: number } | undefined> {
    const { jwtVerify } = await loadJose();
    try {
      const { payload } = await jwtVerify(token, this.verifyingKey, { algorithms: [this.alg] });
      const { username, revision } = payload as { username?: unknown; revision?: unknown };
      if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) return undefined;
      return { username, revision };
    } catch {
      return undefined;
    }
  }
}

/** A key of the method's family (and, for ECDSA, its curve), or etcd's words for what is wrong. */
function asymmetric(make: () => KeyObject, family: 'rsa' | 'ec', alg: string, kind: 'private' | 'public'): KeyObject {
  let key: KeyObject;
  try {
    key = make();
  } catch (err) {
    throw new AuthTokenOptionError(`Invalid Key: Key must be a PEM encoded PKCS1 or PKCS8 key`, `${kind} key: ${(err as Error).message}`);
  }
  const type = key.asymmetricKeyType;
  if (family === 'rsa' && type !== 'rsa' && type !== 'rsa-pss') throw new AuthTokenOptionError(`Key is not a valid RSA ${kind} key`, `${alg} needs an RSA key, got ${type}`);
  if (family === 'ec') {
    if (type !== 'ec') throw new AuthTokenOptionError(`Key is not a valid ECDSA ${kind} key`, `${alg} needs an EC key, got ${type}`);
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== EC_CURVES[alg]) throw new AuthTokenOptionError('key is invalid', `${alg} signs with curve ${EC_CURVES[alg]}, the ${kind} key is on ${curve}`);
  }
  return key;
}

function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));
}
