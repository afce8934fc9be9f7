// A key as the writer takes it: its bytes, or a string of their hex digits (lowercase, two
// a byte). The store keeps its revision records under hex keys, which it reads back as
// strings far more cheaply than as Buffers (src/mvcc/revision.ts); the writer turns them
// into bytes only as it copies them into a page.

export type BoltKey = Buffer | string;

/** The key's length in bytes. */
export function keyLength(k: BoltKey): number {
  return typeof k === 'string' ? k.length >> 1 : k.length;
}

/** Copies the key's bytes into `buf` at `at`; returns how many. */
export function writeKey(buf: Buffer, at: number, k: BoltKey): number {
  if (typeof k === 'string') return buf.write(k, at, 'hex');
  buf.set(k, at);
  return k.length;
}

/** The key's hex digits, for messages. */
export function keyHex(k: BoltKey): string {
  return typeof k === 'string' ? k : k.toString('hex');
}

/** bbolt's byte order of two keys (lowercase hex digits sort as their bytes do). */
export function compareKeys(a: BoltKey, b: BoltKey): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(typeof a === 'string' ? Buffer.from(a, 'hex') : a, typeof b === 'string' ? Buffer.from(b, 'hex') : b);
}
