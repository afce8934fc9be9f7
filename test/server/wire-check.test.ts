// The strict wire check on its own, for what the side-by-side suite against etcd
// (test/e2e/hostile-grpc.test.ts) does not reach: gogo's Go field names for every
// request, packed and unpacked repeated scalars, groups, and the nesting bound.

import { describe, expect, it } from 'vitest';
import { type } from '../../src/server/pb.js';
import { compileWireCheck, goCamelCase, MAX_NESTING_DEPTH, WireError } from '../../src/server/wire-check.js';
import { bytesField, concat, tag, varint, varintField } from '../e2e/raw-grpc.js';

const check = (name: string) => compileWireCheck(type(`etcdserverpb.${name}`));

describe('wire check', () => {
  it('names fields as gogo does', () => {
    expect(['key', 'range_end', 'ID', 'TTL', 'peerURLs', 'prev_kv', 'request_delete_range', 'hashKV', 'x_1', '_hidden'].map(goCamelCase)).toEqual([
      'Key', 'RangeEnd', 'ID', 'TTL', 'PeerURLs', 'PrevKv', 'RequestDeleteRange', 'HashKV', 'X_1', 'XHidden',
    ]);
    expect(() => check('MemberAddRequest')(varintField(1, 1))).toThrow('proto: wrong wireType = 0 for field PeerURLs');
    expect(() => check('LeaseGrantRequest')(bytesField(2, 'x'))).toThrow('proto: wrong wireType = 2 for field ID');
    expect(() => check('WatchRequest')(bytesField(2, varintField(1, 7)))).not.toThrow();
  });

  it('takes repeated scalars packed and unpacked, and checks what is packed', () => {
    const filters = check('WatchCreateRequest');
    expect(() => filters(concat(bytesField(1, 'k'), varintField(5, 1), varintField(5, 0)))).not.toThrow();
    expect(() => filters(concat(bytesField(1, 'k'), bytesField(5, Buffer.from([1, 0]))))).not.toThrow();
    expect(() => filters(concat(bytesField(1, 'k'), bytesField(5, Buffer.from([1, 0x80]))))).toThrow(new WireError('unexpected EOF'));
  });

  it('skips nested groups of unknown fields, and refuses unterminated ones', () => {
    const range = check('RangeRequest');
    const group = concat(tag(20, 3), varintField(1, 1), tag(21, 3), bytesField(2, 'x'), tag(21, 4), tag(20, 4));
    expect(() => range(concat(bytesField(1, 'a'), group))).not.toThrow();
    expect(() => range(concat(bytesField(1, 'a'), tag(20, 3), varintField(1, 1)))).toThrow('unexpected EOF');
  });

  it('names the message a tag is illegal in, nested ones included', () => {
    const op = bytesField(2, bytesField(2, concat(bytesField(1, 'k'), tag(0, 2), varint(0))));
    expect(() => check('TxnRequest')(op)).toThrow('proto: PutRequest: illegal tag 0 (wire type 2)');
  });

  it('stops at MAX_NESTING_DEPTH messages, and protobufjs decodes everything up to it', () => {
    const nested = (levels: number): Buffer => {
      let txn = Buffer.alloc(0);
      for (let i = 0; i < levels; i++) txn = bytesField(2, bytesField(4, txn));
      return txn;
    };
    const txn = type('etcdserverpb.TxnRequest');
    const deepest = nested(MAX_NESTING_DEPTH / 2); // two messages per level
    expect(() => check('TxnRequest')(deepest)).not.toThrow();
    expect(() => txn.decode(deepest)).not.toThrow();
    expect(() => check('TxnRequest')(nested(MAX_NESTING_DEPTH / 2 + 1))).toThrow(`nested deeper than ${MAX_NESTING_DEPTH} messages`);
  });
});
