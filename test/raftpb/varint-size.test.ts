// varintSize, the one size function the hand codecs share (WAL records, backend entries,
// KeyValues, sliced range responses): it must equal the length of the varint the Writer
// actually emits at every length boundary, up to the 53-bit revisions and sizes it serves.

import { describe, expect, it } from 'vitest';
import { Writer, varintSize } from '../../src/raftpb/index.js';

function encodedLength(v: number): number {
  return new Writer(16).uint53(v).finish().length;
}

describe('varintSize', () => {
  const values = [0, 1, Number.MAX_SAFE_INTEGER];
  for (let bits = 7; bits <= 52; bits += 7) values.push(2 ** bits - 1, 2 ** bits, 2 ** bits + 1);

  it.each(values)('%d takes as many bytes as the Writer writes', (v) => {
    expect(varintSize(v)).toBe(encodedLength(v));
  });

  it('grows by one byte every 7 bits, to 8 bytes at 2^53 - 1', () => {
    expect(values.map(varintSize).sort((a, b) => a - b).at(-1)).toBe(8);
    expect(varintSize(2 ** 49 - 1)).toBe(7);
    expect(varintSize(2 ** 49)).toBe(8);
  });
});
