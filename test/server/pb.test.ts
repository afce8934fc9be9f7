import { describe, expect, it } from 'vitest';
import { int64, toBigInt, toNumber, uint64 } from '../../src/server/pb.js';

describe('64-bit conversions at the gRPC boundary', () => {
  it('round-trips signed and unsigned extremes through Long', () => {
    for (const v of [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 0x1234567890abcdefn, 2n ** 32n, 2n ** 31n]) {
      expect(toBigInt(int64(v))).toBe(v);
    }
    for (const v of [0n, 1n, 2n ** 64n - 1n, 0xfedcba9876543210n, 2n ** 32n]) expect(toBigInt(uint64(v), true)).toBe(v);
    expect(int64(-1n).toString()).toBe('-1');
    expect(uint64(2n ** 64n - 1n).toString()).toBe('18446744073709551615');
  });

  it('reads numbers, strings and absent values', () => {
    expect(toNumber(undefined)).toBe(0);
    expect(toNumber('42')).toBe(42);
    expect(toBigInt('18446744073709551615', true)).toBe(2n ** 64n - 1n);
    expect(toBigInt(7)).toBe(7n);
  });
});
