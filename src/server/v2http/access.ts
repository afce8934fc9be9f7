// Who a v2 request is, and what it may do, while v2 auth is on (etcd's client_auth.go):
// HTTP basic auth names a user and their password; with --client-cert-auth a request
// without an Authorization header is the first user named by a Common Name of its verified
// certificate chain; a request with neither is the guest role. /v2/keys needs a role that
// reaches the key, /v2/auth and changes to /v2/members need the root role.

import type http from 'node:http';
import { TLSSocket, type DetailedPeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import { GUEST_ROLE, ROOT_ROLE, type User, hasKeyAccess, hasRecursiveAccess } from '../v2auth/types.js';
import type { V2AuthStore } from '../v2auth/store.js';

/** Go's Request.BasicAuth: undefined when the header is not HTTP basic auth. */
export function basicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const prefix = 'basic ';
  if (header === undefined || header.length < prefix.length || header.slice(0, prefix.length).toLowerCase() !== prefix) return undefined;
  const encoded = header.slice(prefix.length);
  // Go's base64.StdEncoding: padded, nothing outside the alphabet
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  // Go's strings are bytes: a UTF-8 name or password compares as the same bytes here
  const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
  return { user: utf8(decoded.slice(0, colon)), password: utf8(decoded.slice(colon + 1)) };
}

/** The Common Names of a TLS request's verified client certificate chain, leaf first (Go's VerifiedChains). */
export function verifiedCommonNames(req: http.IncomingMessage): string[] {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return [];
  const names: string[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<DetailedPeerCertificate>();
  while (cert !== undefined && cert.subject !== undefined && !seen.has(cert)) {
    seen.add(cert);
    const cn: unknown = cert.subject.CN;
    if (typeof cn === 'string') names.push(cn);
    // a self-signed root is its own issuer
    cert = cert.issuerCertificate;
  }
  return names;
}

function isRead(req: http.IncomingMessage): boolean {
  return req.method === 'GET' || req.method === 'HEAD';
}

export class V2Access {
  constructor(
    private readonly auth: V2AuthStore,
    /** --client-cert-auth */
    private readonly clientCertAuth: boolean,
    private readonly log: Logger,
  ) {}

  get store(): V2AuthStore {
    return this.auth;
  }

  /** etcd's hasRootAccess: auth off, or a user with the root role. */
  async root(req: http.IncomingMessage): Promise<boolean> {
    if (!this.auth.authEnabled()) return true;
    const user = !req.headers.authorization && this.clientCertAuth ? await this.fromCertificate(req) : await this.fromBasicAuth(req);
    if (user === undefined) return false;
    if ((user.roles ?? []).includes(ROOT_ROLE)) return true;
    this.log.warn({ 'root-user': user.user, 'root-role-name': ROOT_ROLE, 'resource-path': req.url }, 'a user does not have root role for resource');
    return false;
  }

  /** etcd's hasWriteRootAccess: reads are open to all, changes need root. */
  async writeRoot(req: http.IncomingMessage): Promise<boolean> {
    return isRead(req) || this.root(req);
  }

  /** etcd's hasKeyPrefixAccess: `key` is the path after /v2/keys as the client sent it. */
  async key(req: http.IncomingMessage, key: string, recursive: boolean): Promise<boolean> {
    if (!this.auth.authEnabled()) return true;
    let user: User | undefined;
    if (!req.headers.authorization) {
      if (this.clientCertAuth) user = await this.fromCertificate(req);
      if (user === undefined) return this.guest(req, key);
    } else {
      user = await this.fromBasicAuth(req);
      if (user === undefined) return false;
    }
    const write = !isRead(req);
    for (const name of user.roles ?? []) {
      const role = await this.auth.getRole(name).catch(() => undefined);
      if (role === undefined) continue;
      if (recursive ? hasRecursiveAccess(role, key, write) : hasKeyAccess(role, key, write)) return true;
    }
    this.log.warn({ 'user-name': user.user, key }, 'invalid access for user on key');
    return false;
  }

  private async guest(req: http.IncomingMessage, key: string): Promise<boolean> {
    const role = await this.auth.getRole(GUEST_ROLE).catch(() => undefined);
    if (role === undefined) return false;
    if (hasKeyAccess(role, key, !isRead(req))) return true;
    this.log.warn({ 'role-name': GUEST_ROLE, key }, 'invalid access for a guest role on key');
    return false;
  }

  private async fromBasicAuth(req: http.IncomingMessage): Promise<User | undefined> {
    const creds = basicAuth(req.headers.authorization);
    if (creds === undefined) {
      this.log.warn('malformed basic auth encoding');
      return undefined;
    }
    const user = await this.auth.getUser(creds.user).catch(() => undefined);
    if (user === undefined) return undefined;
    if (await this.auth.checkPassword(user, creds.password)) return user;
    this.log.warn({ 'user-name': creds.user }, 'incorrect password');
    return undefined;
  }

  private async fromCertificate(req: http.IncomingMessage): Promise<User | undefined> {
    for (const cn of verifiedCommonNames(req)) {
      const user = await this.auth.getUser(cn).catch(() => undefined);
      if (user !== undefined) return user;
    }
    return undefined;
  }
}
