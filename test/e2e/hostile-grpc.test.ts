// Hostile gRPC input, side by side: each request below goes over a raw HTTP/2 client to
// a real etcd-ts process and to a real etcd 3.4.23, and etcd-ts must answer as etcd
// does (same status code and message, same RST_STREAM, same response bytes' meaning)
// unless the case says how and why it answers better. Never a crash, never a hang,
// never a request misread into something the client did not send.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type } from '../../src/server/pb.js';
import { cleanup, type Member, startMember } from './harness.js';
import { bytesField, concat, frame, type RawCall, rawCall, type RawResult, tag, varint, varintField } from './raw-grpc.js';

const RANGE = '/etcdserverpb.KV/Range';
const PUT = '/etcdserverpb.KV/Put';
const TXN = '/etcdserverpb.KV/Txn';
const WATCH = '/etcdserverpb.Watch/Watch';
const KEEPALIVE = '/etcdserverpb.Lease/LeaseKeepAlive';

const RESPONSE_TYPES: Record<string, string> = { [RANGE]: 'RangeResponse', [TXN]: 'TxnResponse', [PUT]: 'PutResponse' };

/** RangeRequest{key, range_end} over [a, z) */
const allKeys = concat(bytesField(1, 'a'), bytesField(2, 'z'));

/** `depth` txns nested through one success op each; the innermost runs `inner` ops. */
function nestedTxn(depth: number, inner: Buffer = Buffer.alloc(0)): Buffer {
  let txn = inner;
  for (let i = 0; i < depth; i++) txn = bytesField(2, bytesField(4, txn)); // success: [RequestOp{request_txn}]
  return txn;
}

/** A put of `key` as a RequestOp inside a TxnRequest's success branch. */
const putOp = (key: string, value: string): Buffer => bytesField(2, bytesField(2, concat(bytesField(1, key), bytesField(2, value))));

interface Case {
  name: string;
  call: RawCall;
  /** where etcd-ts answers otherwise than etcd: why, and what it answers instead */
  differs?: { why: string; check(ts: RawResult, etcd: RawResult): void };
}

const cases: Case[] = [
  // malformed protobuf: gogo's Unmarshal refuses it, grpc-go answers Internal with its words
  { name: 'key sent as a varint (wrong wire type)', call: { path: RANGE, body: frame(varintField(1, 5)) } },
  { name: 'key sent as fixed64', call: { path: RANGE, body: frame(concat(tag(1, 1), Buffer.alloc(8))) } },
  { name: 'limit sent length-delimited', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), bytesField(3, 'xx'))) } },
  { name: 'field number 0, varint', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), varintField(0, 1))) } },
  { name: 'field number 0, length-delimited', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), Buffer.from([2, 1, 0]))) } },
  { name: 'bytes cut short', call: { path: RANGE, body: frame(concat(tag(1, 2), varint(10), Buffer.from('ab'))) } },
  { name: 'varint cut short', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), Buffer.from([0x18, 0x80]))) } },
  { name: 'wire type 6', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), Buffer.from([0x7e, 0]))) } },
  { name: 'end group outside a group', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), Buffer.from([0x7c]))) } },
  { name: 'an 11-byte varint', call: { path: RANGE, body: frame(concat(bytesField(1, 'a'), Buffer.from([0x18, ...Array(10).fill(0xff), 0x01]))) } },
  { name: 'a negative length', call: { path: RANGE, body: frame(concat(tag(1, 2), varint(-1n))) } },
  { name: 'a Put whose value is a varint', call: { path: PUT, body: frame(concat(bytesField(1, 'misread'), varintField(2, 7))) } },
  {
    name: 'field 0 inside a txn\'s nested range',
    call: { path: TXN, body: frame(bytesField(2, bytesField(1, concat(bytesField(1, 'a'), varintField(0, 1))))) },
  },
  // well-formed oddities gogo reads, and so must we
  { name: 'an unknown field', call: { path: RANGE, body: frame(concat(allKeys, varintField(99, 1))) } },
  { name: 'an unknown group', call: { path: RANGE, body: frame(concat(allKeys, Buffer.from([0x7b, 0x08, 0x01, 0x7c]))) } },
  { name: 'a bool of 2', call: { path: RANGE, body: frame(concat(allKeys, varintField(8, 2))) } },
  { name: 'a 10-byte varint', call: { path: RANGE, body: frame(concat(allKeys, Buffer.from([0x18, ...Array(9).fill(0xff), 0x7f]))) } },
  // the gRPC message prefix
  { name: 'flag byte 7', call: { path: RANGE, body: frame(allKeys, 7) } },
  { name: 'flag byte 2', call: { path: RANGE, body: frame(allKeys, 2) } },
  { name: 'compressed flag without grpc-encoding', call: { path: RANGE, body: frame(allKeys, 1) } },
  { name: 'an unknown grpc-encoding', call: { path: RANGE, body: frame(allKeys), headers: { 'grpc-encoding': 'snappy' } } },
  { name: 'two messages in a unary call', call: { path: RANGE, body: concat(frame(allKeys), frame(bytesField(1, 'b'))) } },
  { name: 'a malformed second message in a unary call', call: { path: RANGE, body: concat(frame(allKeys), frame(varintField(1, 5), 7)) } },
  { name: 'no message in a unary call', call: { path: RANGE, body: Buffer.alloc(0) } },
  { name: 'a prefix cut short', call: { path: RANGE, body: Buffer.from([0, 0, 0]) } },
  { name: 'a message cut short', call: { path: RANGE, body: Buffer.from([0, 0, 0, 0, 9, 1]) } },
  // grpc-timeout: grpc-go resets the stream when it cannot read it
  ...['xx', '1', '1s', '1x', '5 S', '123456789S'].map((t) => ({
    name: `grpc-timeout ${JSON.stringify(t)}`,
    call: { path: RANGE, body: frame(allKeys), headers: { 'grpc-timeout': t } },
  })),
  { name: 'grpc-timeout "+5S"', call: { path: RANGE, body: frame(allKeys), headers: { 'grpc-timeout': '+5S' } } },
  {
    name: 'grpc-timeout "-1S" (passed already)',
    call: { path: RANGE, body: frame(allKeys), headers: { 'grpc-timeout': '-1S' } },
    differs: {
      why: 'etcd answers whichever of its handler and the deadline comes first (the range, or DeadlineExceeded); etcd-ts fails the call at once',
      check(ts, etcd) {
        // etcd's answer is a race: the handler's (OK) or the deadline's
        expect(etcd.code === 0 || etcd.message === 'context deadline exceeded', JSON.stringify(etcd)).toBe(true);
        expect(ts).toMatchObject({ code: 4, message: 'context deadline exceeded' });
      },
    },
  },
  // sort order: etcd 3.4 sorts only for ASCEND and DESCEND, keeping key order otherwise
  { name: 'sort order 7 by version', call: { path: RANGE, body: frame(concat(allKeys, varintField(5, 7), varintField(6, 1))) } },
  { name: 'sort order 7 with a limit', call: { path: RANGE, body: frame(concat(allKeys, varintField(3, 1), varintField(5, 7))) } },
  { name: 'sort order -1 by an unknown target', call: { path: RANGE, body: frame(concat(allKeys, varintField(5, -1), varintField(6, 9))) } },
  // nested txns: each level may use what its parents left of --max-txn-ops (128)
  { name: 'txns nested 48 deep', call: { path: TXN, body: frame(nestedTxn(48)) } },
  { name: 'txns nested 128 deep, a put inside', call: { path: TXN, body: frame(nestedTxn(128, putOp('deep', 'v'))) } },
  { name: 'txns nested 129 deep', call: { path: TXN, body: frame(nestedTxn(129)) } },
  { name: 'txns nested 200 deep', call: { path: TXN, body: frame(nestedTxn(200)) } },
  {
    name: 'txns nested 1000 deep',
    call: { path: TXN, body: frame(nestedTxn(1000)) },
    differs: {
      why: 'etcd decodes any depth, then refuses the txn for its op budget; etcd-ts stops decoding at 1000 nested messages',
      check(ts, etcd) {
        expect(etcd).toMatchObject({ code: 3, message: 'etcdserver: too many operations in txn request' });
        expect(ts).toMatchObject({ code: 13, message: 'grpc: error unmarshalling request: proto: RequestOp: nested deeper than 1000 messages' });
      },
    },
  },
  // padded varints: gogo reads them, protobufjs would read them differently
  {
    name: 'a key tag padded to 7 bytes',
    call: { path: RANGE, body: frame(concat(Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 1]), Buffer.from('a'))) },
    differs: {
      why: 'protobufjs reads a 32-bit varint as 5 or 10 bytes: etcd-ts refuses the padding rather than misread the request',
      check(ts, etcd) {
        expect(etcd.code).toBe(0);
        expect(ts).toMatchObject({ code: 13, message: 'grpc: error unmarshalling request: proto: RangeRequest: non-canonical varint for the tag of field 1' });
      },
    },
  },
  {
    name: 'serializable = 2^32',
    call: { path: RANGE, body: frame(concat(allKeys, tag(7, 0), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10]))) },
    differs: {
      why: 'gogo reads 64 bits of a bool, protobufjs 32: etcd-ts refuses it rather than read false',
      check(ts, etcd) {
        expect(etcd.code).toBe(0);
        expect(ts).toMatchObject({ code: 13, message: 'grpc: error unmarshalling request: proto: RangeRequest: non-canonical varint for field Serializable' });
      },
    },
  },
  // streams: grpc-go's other wording ("failed to unmarshal the received message")
  { name: 'a watch request with a wrong wire type', call: { path: WATCH, body: frame(bytesField(1, varintField(1, 5))), halfClose: false } },
  { name: 'a watch request with field 0', call: { path: WATCH, body: frame(varintField(0, 1)), halfClose: false } },
  { name: 'a watch request with flag byte 7', call: { path: WATCH, body: frame(bytesField(1, bytesField(1, 'a')), 7), halfClose: false } },
  { name: 'a watch stream ending inside a message', call: { path: WATCH, body: Buffer.from([0, 0, 0, 0, 9, 1]) } },
  { name: 'a keep-alive whose ID is bytes', call: { path: KEEPALIVE, body: frame(bytesField(1, 'zz')), halfClose: false } },
];

let ts: Member;
let etcd: Member;

beforeAll(async () => {
  [ts, etcd] = await Promise.all([startMember({ name: 'ts' }), startMember({ name: 'etcd', binary: 'etcd' })]);
  // the same writes in the same order: both stores have the same revisions
  for (const m of [ts, etcd]) {
    for (const [k, v] of [['a', '1'], ['b', '2'], ['c', '3'], ['a', '4']] as const) {
      const r = await rawCall(m.clientUrl, { path: PUT, body: frame(concat(bytesField(1, k), bytesField(2, v))) });
      expect(r.code).toBe(0);
    }
  }
});

afterAll(cleanup);

/** A response's meaning: decoded, without the headers (member and cluster IDs differ). */
function meaning(path: string, r: RawResult): unknown {
  const name = RESPONSE_TYPES[path];
  if (name === undefined || r.code !== 0) return r.messages.length;
  const t = type(`etcdserverpb.${name}`);
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'header').map(([k, x]) => [k, strip(x)]));
  };
  return r.messages.map((m) => strip(t.toObject(t.decode(m), { longs: String, bytes: String, defaults: true })));
}

describe('hostile gRPC input, etcd-ts beside etcd 3.4.23', () => {
  it.each(cases)('$name', async (c) => {
    const [got, want] = await Promise.all([rawCall(ts.clientUrl, c.call, 5000), rawCall(etcd.clientUrl, c.call, 5000)]);
    // a stream left open on purpose stays open on both sides unless the server ends it
    expect(got.hung, 'etcd-ts answered').toBe(want.hung);
    if (c.differs) c.differs.check(got, want);
    else {
      // etcd sends an empty grpc-message with OK, etcd-ts none
      expect({ code: got.code, message: got.message ?? '', rstCode: got.rstCode }).toEqual({
        code: want.code,
        message: want.message ?? '',
        rstCode: want.rstCode,
      });
      expect(meaning(c.call.path, got)).toEqual(meaning(c.call.path, want));
    }
    expect(ts.proc.exitCode, 'etcd-ts is still running').toBeNull();
  });

  it('refuses an unknown sort target that would crash etcd 3.4, and keeps serving', async () => {
    // not sent to etcd: its applier dereferences a nil sorter and the process dies
    const r = await rawCall(ts.clientUrl, { path: RANGE, body: frame(concat(allKeys, varintField(5, 1), varintField(6, 9))) });
    expect(r).toMatchObject({ code: 3, message: 'etcdserver: invalid sort option' });
    const ok = await rawCall(ts.clientUrl, { path: RANGE, body: frame(allKeys) });
    expect(ok.code).toBe(0);
  });

  it('wrote nothing for the requests it refused', async () => {
    const r = await rawCall(ts.clientUrl, { path: RANGE, body: frame(concat(bytesField(1, 'misread'))) });
    expect(meaning(RANGE, r)).toEqual([expect.objectContaining({ kvs: [], count: '0' })]);
  });
});
