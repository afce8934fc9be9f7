// Where the API meets the auth store: who a call runs as (the user its token belongs
// to), and the checks etcd makes in the API layer (serialized reads, watch creation,
// admin-only calls). Writes are checked when applied (see ../apply.ts). With auth off
// every check is one boolean test.

import type { CallMetadata } from '../grpc/call.js';
import { Code } from '../grpc/codes.js';
import { EtcdError, Errors } from '../errors.js';
import type { EtcdServer } from '../server.js';
import { JwtTokens } from './jwt-token.js';
import { type SimpleTokens, tokenIndex } from './simple-token.js';
import type { AuthInfo, AuthStore } from './store.js';

/** What the gate reads of a call: the metadata its token travels in, and its TLS identity. */
export interface CallCredentials {
  readonly metadata: CallMetadata;
  /** the Common Name of the client's verified certificate, for calls over mutual TLS */
  peerCommonName?(): string | undefined;
}

export interface AuthGateOptions {
  /** --client-cert-auth: a call without a token runs as its certificate's Common Name */
  readonly clientCertAuth: boolean;
}

export class AuthGate {
  private readonly auth: AuthStore;

  constructor(
    private readonly server: EtcdServer,
    private readonly opts: AuthGateOptions = { clientCertAuth: false },
  ) {
    this.auth = server.auth;
  }

  get store(): AuthStore {
    return this.auth;
  }

  /**
   * Who the call runs as: undefined when auth is off or it carries no credentials. A
   * token that is unknown, expired or malformed fails the call (etcd's AuthInfoFromCtx);
   * with --client-cert-auth, a call without a token runs as the Common Name of its
   * verified client certificate (etcd's AuthInfoFromTLS). Answered at once, without a
   * promise, in the common case (auth off, or a simple token whose raft index this member
   * has applied): every request asks.
   */
  caller(call: CallCredentials): AuthInfo | undefined | Promise<AuthInfo | undefined> {
    if (!this.auth.enabled) return undefined;
    const token = firstToken(call.metadata.get('token')) ?? firstToken(call.metadata.get('authorization'));
    if (token === undefined) {
      const cn = this.opts.clientCertAuth ? call.peerCommonName?.() : undefined;
      return cn === undefined ? undefined : { username: cn, revision: this.auth.revision };
    }
    const tokens = this.auth.tokens;
    if (tokens instanceof JwtTokens) return this.jwtCaller(tokens, token);
    // the token names the raft index that created it: wait until this member applied it
    const index = tokenIndex(token);
    if (index === undefined) throw Errors.invalidAuthToken;
    if (index <= this.server.applied) return this.simpleTokenCaller(tokens, token);
    return this.server.waitApplied(index).then((applied) => {
      if (!applied) throw Errors.invalidAuthToken;
      return this.simpleTokenCaller(tokens, token);
    });
  }

  /** A JWT carries its user and the auth revision it was issued at. */
  private async jwtCaller(tokens: JwtTokens, token: string): Promise<AuthInfo> {
    const info = await tokens.info(token);
    if (info === undefined) throw Errors.invalidAuthToken;
    return { username: info.username, revision: info.revision };
  }

  /** A simple token this member has learnt (its raft index applied): its user, at the current auth revision. */
  private simpleTokenCaller(tokens: SimpleTokens, token: string): AuthInfo {
    const username = tokens.user(token);
    if (username === undefined) throw Errors.invalidAuthToken;
    return { username, revision: this.auth.revision };
  }

  /**
   * A read served locally (etcd's doSerialize): permission checked before, and refused
   * after if the auth store changed meanwhile (the caller's rights may have changed).
   * With auth off it is the read itself, without an async frame of its own (every Range
   * comes through here).
   */
  read<T>(call: CallCredentials, check: (who: AuthInfo | undefined) => void, get: () => Promise<T>): Promise<T> {
    if (!this.auth.enabled) return get();
    return this.readAsCaller(call, check, get);
  }

  private async readAsCaller<T>(call: CallCredentials, check: (who: AuthInfo | undefined) => void, get: () => Promise<T>): Promise<T> {
    const who = await this.caller(call);
    check(who);
    const result = await get();
    if (who !== undefined && who.revision !== this.auth.revision) throw Errors.authOldRevision;
    return result;
  }

  /** Calls only a user with the root role may make while auth is on (etcd's IsAdminPermitted). */
  async admin(call: CallCredentials): Promise<void> {
    if (!this.auth.enabled) return;
    this.auth.checkAdmin(await this.caller(call));
  }

  /**
   * admin() for Defragment, Snapshot, Hash and HashKV: etcd's maintenance server returns
   * the auth store's own error there, untranslated, so clients see codes.Unknown and
   * "auth: permission denied" rather than PermissionDenied.
   */
  async maintenanceAdmin(call: CallCredentials): Promise<void> {
    try {
      await this.admin(call);
    } catch (err) {
      const raw = RAW_AUTH_ERRORS.get(err as EtcdError);
      throw raw === undefined ? err : new EtcdError(Code.UNKNOWN, raw);
    }
  }
}

const RAW_AUTH_ERRORS = new Map<EtcdError, string>([
  [Errors.permissionDenied, 'auth: permission denied'],
  [Errors.userEmpty, 'auth: user name is empty'],
  [Errors.userNotFound, 'auth: user not found'],
  [Errors.invalidAuthToken, 'auth: invalid auth token'],
]);

/**
 * The first token a call carries. python-etcd3 sends its token twice (as call metadata and as
 * call credentials); grpc-go hands etcd both and etcd takes the first, while Node joins
 * repeated headers into one "tok, tok". Tokens (simple or JWT) never hold a comma.
 */
function firstToken(values: Array<string | Buffer>): string | undefined {
  const v = values[0];
  if (v === undefined) return undefined;
  const text = typeof v === 'string' ? v : v.toString();
  const comma = text.indexOf(',');
  return (comma < 0 ? text : text.slice(0, comma)).trim();
}
