// Passwords recently checked right against a bcrypt hash. bcryptjs, in JavaScript, takes
// several times as long as etcd's Go bcrypt at the same cost (a third of a second at
// cost 10 on a busy machine), and clients such as etcdctl authenticate on every run:
// a repeat of a check that succeeded is answered from here. Only successes are kept, so
// wrong passwords always pay the full bcrypt cost, and an entry names the hash it was
// checked against, so a new password (a new hash) never matches an old entry. Entries
// are keyed HMACs under a per-process random key, never the passwords themselves.

import { createHmac, randomBytes } from 'node:crypto';

const MAX_ENTRIES = 1024;

export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  /** in insertion order: the oldest is dropped first */
  private readonly entries = new Set<string>();

  private id(hash: Buffer, password: string): string {
    return createHmac('sha256', this.key).update(hash).update(Buffer.of(0)).update(password).digest('base64');
  }

  has(hash: Buffer, password: string): boolean {
    return this.entries.has(this.id(hash, password));
  }

  add(hash: Buffer, password: string): void {
    const id = this.id(hash, password);
    this.entries.delete(id);
    this.entries.add(id);
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.values().next().value!);
  }
}
