// The hand-encoded RangeResponse (src/server/api/range-encoder.ts) decodes, with
// protobufjs, to what the protobufjs-encoded response of the same range decodes to.

import { describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/mvcc/index.js';
import { RangeResponseEncoder } from '../../src/server/api/range-encoder.js';
import { rangeRespToPb } from '../../src/server/convert.js';
import { type, uint64 } from '../../src/server/pb.js';

const RangeResponse = type('etcdserverpb.RangeResponse');
const header = { cluster_id: uint64(0xfedcba9876543210n), member_id: uint64(3n), revision: 2 ** 40 + 7, raft_term: uint64(9n) };

function kv(i: number, over: Partial<KeyValue> = {}): KeyValue {
  return { key: Buffer.from(`k${i}`), createRevision: i + 1, modRevision: i + 2, version: 1 + (i % 3), value: Buffer.from(`v${i}`), lease: 0n, ...over };
}

/** What protobufjs makes of bytes, as comparable JSON. */
function decoded(bytes: Uint8Array): unknown {
  return RangeResponse.toObject(RangeResponse.decode(bytes), { longs: String, bytes: String, defaults: true });
}

function encodedBytes(slices: KeyValue[][], more: boolean, count: number): Buffer {
  const enc = new RangeResponseEncoder();
  for (const s of slices) enc.add(s);
  const msg = enc.finish(header, more, count);
  const body = Buffer.concat(msg.pieces);
  expect(body.length).toBe(msg.length);
  const prefix = msg.prefix();
  expect(prefix[0]).toBe(0);
  expect(prefix.readUInt32BE(1)).toBe(msg.length);
  return body;
}

describe('RangeResponseEncoder', () => {
  it('encodes as protobufjs does: extremes of every field, empty keys and values, big values across pieces', () => {
    const kvs = [
      kv(0),
      kv(1, { lease: 7n }),
      kv(2, { lease: -2n }),
      kv(3, { lease: 2n ** 63n - 1n, createRevision: 2 ** 53 - 1, modRevision: 2 ** 53 - 1, version: 2 ** 31 }),
      kv(4, { value: Buffer.alloc(0) }),
      kv(5, { key: Buffer.alloc(0) }),
      kv(6, { value: Buffer.alloc(3 << 20, 0xab) }),
      ...Array.from({ length: 5000 }, (_, i) => kv(7 + i, { value: Buffer.alloc(i % 300, i) })),
    ];
    for (const [more, count] of [
      [false, kvs.length],
      [true, 123_456_789_012],
      [false, 0],
    ] as const) {
      const ours = encodedBytes([kvs.slice(0, 3), [], kvs.slice(3)], more, count);
      const theirs = RangeResponse.encode(rangeRespToPb({ revision: header.revision, kvs, more, count }, header)).finish();
      expect(decoded(ours)).toEqual(decoded(theirs));
    }
  });

  it('forgets what it was given before a reset', () => {
    const enc = new RangeResponseEncoder();
    enc.add([kv(1), kv(2)]);
    enc.reset();
    enc.add([kv(3)]);
    const msg = enc.finish(header, false, 1);
    expect(decoded(Buffer.concat(msg.pieces))).toEqual(decoded(RangeResponse.encode(rangeRespToPb({ revision: 1, kvs: [kv(3)], more: false, count: 1 }, header)).finish()));
  });
});
