// txn compares converted from the request share one V8 map, however many are converted.
// They were spread from a shared base ({...base, target, value}); once V8 had optimized
// the conversion, that gave nearly every Compare a map of its own, and the store's compare
// and the auth check then read them megamorphically (2,060 maps in 20 whole-member
// simulator seeds). %HaveSameMap is V8's own word on it, allowed for one function here.

import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { txnFromPb } from '../../src/server/convert.js';
import type { Compare } from '../../src/mvcc/types.js';

describe('txn compares', () => {
  it('share one map for every target, after thousands of conversions', () => {
    setFlagsFromString('--allow-natives-syntax');
    // compiled after the flag: the parser reads %-calls only while it is on
    const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: Compare, b: Compare) => boolean;
    setFlagsFromString('--no-allow-natives-syntax');
    const convert = (target: number): Compare =>
      txnFromPb({
        compare: [
          { key: Buffer.from('k'), range_end: Buffer.alloc(0), result: 0, target, version: 1, create_revision: 2, mod_revision: 3, value: Buffer.from('v'), lease: 5 },
        ],
        success: [],
        failure: [],
      }).compare[0]!;
    const all: Compare[] = [];
    for (let round = 0; round < 2000; round++) for (let target = 0; target < 5; target++) all.push(convert(target));
    const last = all.slice(-50);
    expect(new Set(last.map((c) => c.target))).toEqual(new Set(['version', 'create', 'mod', 'value', 'lease']));
    expect(last.filter((c) => !sameMap(c, last[0]!)).length).toBe(0);
  });
});
