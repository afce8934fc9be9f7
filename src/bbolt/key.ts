// A key as the writer takes it: its bytes, or a string of their hex digits (lowercase, two
// a byte) after one leading character that is not part of the key. The store keeps its
// revision records under such LevelDB keys (its bucket's prefix, then etcd's revision key
// in hex: src/mvcc/revision.ts), which classic-level hands back as strings far more
// cheaply than as Buffers; the writer takes them as they come (slicing the prefix off cost
// a string and a pair a record) and turns them into bytes only as it copies them into a
// page.

export type BoltKey = Buffer | string;

/** Each ASCII code's hex digit value; 255 for a code that is not one. */
const HEX_VALUE = new Uint8Array(128).fill(255);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i;

/** The key's length in bytes. */
export function keyLength(k: BoltKey): number {
  return typeof k === 'string' ? (k.length - 1) >> 1 : k.length;
}

/** Copies the key's bytes into `buf` at `at`; returns how many. Throws on a string key that is not hex. */
export function writeKey(buf: Buffer, at: number, k: BoltKey): number {
  if (typeof k !== 'string') {
    buf.set(k, at);
    return k.length;
  }
  // by hand: Buffer.write(…, 'hex') of a slice costs a string and a call into C++ a key
  const n = (k.length - 1) >> 1;
  for (let i = 0; i < n; i++) {
    const hi = HEX_VALUE[k.charCodeAt(1 + 2 * i)] ?? 255;
    const lo = HEX_VALUE[k.charCodeAt(2 + 2 * i)] ?? 255;
    if ((hi | lo) > 15) throw new Error(`bbolt: key ${JSON.stringify(k)} is not a prefix and hex digits`);
    buf[at + i] = (hi << 4) | lo;
  }
  return n;
}

/** The key's hex digits, for messages. */
export function keyHex(k: BoltKey): string {
  return typeof k === 'string' ? k.slice(1) : k.toString('hex');
}

/** bbolt's byte order of two keys (lowercase hex digits sort as their bytes do; string keys share their prefix). */
export function compareKeys(a: BoltKey, b: BoltKey): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(typeof a === 'string' ? Buffer.from(keyHex(a), 'hex') : a, typeof b === 'string' ? Buffer.from(keyHex(b), 'hex') : b);
}
