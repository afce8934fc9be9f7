// Unsigned 64-bit big-endian integers held as JavaScript numbers (exact up to 2^53), as
// etcd's revision keys and rafthttp's length prefixes carry them.

const TWO_32 = 0x1_0000_0000;

/** Writes `v` (0 ≤ v ≤ 2^53) as eight big-endian bytes at `offset`. */
export function writeUint64BE(out: Uint8Array, offset: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  const lo = v >>> 0;
  out[offset] = hi >>> 24;
  out[offset + 1] = (hi >>> 16) & 0xff;
  out[offset + 2] = (hi >>> 8) & 0xff;
  out[offset + 3] = hi & 0xff;
  out[offset + 4] = lo >>> 24;
  out[offset + 5] = (lo >>> 16) & 0xff;
  out[offset + 6] = (lo >>> 8) & 0xff;
  out[offset + 7] = lo & 0xff;
}
