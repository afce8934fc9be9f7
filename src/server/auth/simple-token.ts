// etcd's simple tokens: the member that checks a password draws 16 random letters, and
// every member, applying the Authenticate entry at raft index i, learns the token
// "<letters>.<i>" for that user. Tokens live in memory only (a restart forgets them),
// expire after --auth-token-ttl seconds without use, and die with their user's password.

import { randomInt } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const PREFIX_LENGTH = 16;
/** how often expired tokens are dropped (etcd's simpleTokenTTLResolution) */
const SWEEP_INTERVAL_MS = 1000;

/** A random token prefix, drawn where the password was checked (etcd's genTokenPrefix). */
export function tokenPrefix(): string {
  let s = '';
  for (let i = 0; i < PREFIX_LENGTH; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

/**
 * The raft index a simple token was assigned at ("<prefix>.<digits>", one dot), or
 * undefined when it is not one. Read character by character: every request made with
 * auth on passes here, and a split and a regular expression cost more than the rest of
 * the token check.
 */
export function tokenIndex(token: string): number | undefined {
  const dot = token.indexOf('.');
  if (dot < 0 || dot === token.length - 1) return undefined;
  let index = 0;
  for (let i = dot + 1; i < token.length; i++) {
    const digit = token.charCodeAt(i) - 48; // '0'
    if (digit < 0 || digit > 9) return undefined; // a second dot included
    index = index * 10 + digit;
  }
  // past 2^53 the sum is no longer exact, and it only grows from there
  return Number.isSafeInteger(index) ? index : undefined;
}

interface Assigned {
  readonly user: string;
  expiresAt: number;
}

export class SimpleTokens {
  private readonly tokens = new Map<string, Assigned>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Auth was enabled: tokens may be assigned from now on. */
  enable(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** Auth was disabled (or the member stops): every token is forgotten. */
  disable(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.tokens.clear();
  }

  assign(user: string, prefix: string, index: number): string {
    const token = `${prefix}.${index}`;
    if (this.sweeper) this.tokens.set(token, { user, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** The user a live token belongs to; each use extends its life by the TTL. */
  user(token: string): string | undefined {
    const t = this.tokens.get(token);
    if (t === undefined) return undefined;
    const now = this.now();
    if (now >= t.expiresAt) {
      this.tokens.delete(token);
      return undefined;
    }
    t.expiresAt = now + this.ttlMs;
    return t.user;
  }

  /** A user was deleted or got a new password: their tokens stop working. */
  invalidateUser(user: string): void {
    for (const [token, t] of this.tokens) if (t.user === user) this.tokens.delete(token);
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, t] of this.tokens) if (now >= t.expiresAt) this.tokens.delete(token);
  }
}
