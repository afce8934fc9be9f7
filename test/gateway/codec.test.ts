// The gateway's JSON reading and writing, checked against what etcd 3.4.23's gateway
// answered for the same input (curl against /usr/bin/etcd; the expected strings below
// are its "error" fields and bodies, copied).

import Long from 'long';
import { describe, expect, it } from 'vitest';
import { Base64Error, decodeBase64Std } from '../../src/server/gateway/base64.js';
import { JsonStream, JsonSyntaxError, decodeNext, parseJson } from '../../src/server/gateway/json.js';
import {
  RequestDecodeError,
  goEnumName,
  goJsonString,
  lowerCamelName,
  requestFromJson,
  responseToJson,
} from '../../src/server/gateway/jsonpb.js';
import { root, type } from '../../src/server/pb.js';

function syntaxError(body: string): string {
  try {
    decodeNext(Buffer.from(body));
  } catch (err) {
    if (err instanceof JsonSyntaxError) return err.message;
    throw err;
  }
  return 'OK';
}

/** What the gateway says about a RangeRequest body: 'OK' or the error text. */
function rangeError(body: string): string {
  try {
    const node = decodeNext(Buffer.from(body))?.node;
    requestFromJson(type('etcdserverpb.RangeRequest'), node);
    return 'OK';
  } catch (err) {
    if (err instanceof JsonSyntaxError || err instanceof RequestDecodeError) return err.message;
    throw err;
  }
}

describe('JSON syntax errors, in encoding/json words', () => {
  it.each([
    ['not json', "invalid character 'o' in literal null (expecting 'u')"],
    ['{"key":"Zm9v"', 'unexpected EOF'],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b":2}', `invalid character '"' after object key:value pair`],
    ['[1 2]', "invalid character '2' after array element"],
    ['{1}', "invalid character '1' looking for beginning of object key string"],
    ['{"a":"\\x"}', "invalid character 'x' in string escape code"],
    ['{"a":-a}', "invalid character 'a' in numeric literal"],
    ['{"a":1.a}', "invalid character 'a' after decimal point in numeric literal"],
    ['{"a":1ea}', "invalid character 'a' in exponent of numeric literal"],
    ['{"a":tru', 'unexpected EOF'],
    ['{"a":"\t"}', "invalid character '\\t' in string literal"],
    ['{"a":"\\u12G4"}', "invalid character 'G' in \\u hexadecimal character escape"],
    ['{"a":01}', "invalid character '1' after object key:value pair"],
    ['{"a":[1,]}', "invalid character ']' looking for beginning of value"],
    ["{'a':1}", "invalid character '\\'' looking for beginning of object key string"],
    ['xx', "invalid character 'x' looking for beginning of value"],
    ['{"key":"Zm9v"} garbage', 'OK'],
  ])('%s', (body, expected) => {
    expect(syntaxError(body)).toBe(expected);
  });

  it('refuses nesting deeper than Go allows instead of overflowing the stack', () => {
    expect(syntaxError('['.repeat(20000))).toBe('exceeded max depth');
    expect(syntaxError(`${'['.repeat(500)}${']'.repeat(500)}`)).toBe('OK');
  });

  it('json.Unmarshal mode: the end of input and trailing bytes', () => {
    expect(() => parseJson('')).toThrow('unexpected end of JSON input');
    expect(() => parseJson('12a')).toThrow("invalid character 'a' after top-level value");
    expect(parseJson(' 7 ')).toEqual({ kind: 'number', raw: '7' });
  });

  it('keeps number literals and raw string text', () => {
    expect(parseJson('{"n":18446744073709551615,"s":"a\\nb"}')).toEqual({
      kind: 'object',
      fields: new Map<string, unknown>([
        ['n', { kind: 'number', raw: '18446744073709551615' }],
        ['s', { kind: 'string', value: 'a\nb', raw: 'a\\nb' }],
      ]),
    });
  });
});

describe('JsonStream: a body of JSON messages arriving in pieces', () => {
  it('hands out each value once complete, whatever the split', () => {
    const body = Buffer.from('{"ID":1}{"ID":"2"} \n {"create_request":{"key":"eA=="}}');
    for (let cut = 0; cut <= body.length; cut++) {
      const s = new JsonStream();
      const steps = [s.push(body.subarray(0, cut)), s.push(body.subarray(cut)), s.end()];
      expect(steps.flatMap((st) => st.values.map((n) => n.kind))).toEqual(['object', 'object', 'object']);
      expect(steps.map((st) => st.error)).toEqual([undefined, undefined, undefined]);
    }
  });

  it('waits for a number that may go on, and reports a truncated value at the end', () => {
    const s = new JsonStream();
    expect(s.push(Buffer.from('12'))).toEqual({ values: [] });
    expect(s.push(Buffer.from('3 {"a":'))).toEqual({ values: [{ kind: 'number', raw: '123' }] });
    expect(s.end().error?.message).toBe('unexpected EOF');
  });

  it('reports a syntax error as soon as it is certain, after the values before it, and reads no further', () => {
    const s = new JsonStream();
    const step = s.push(Buffer.from('{"ID":1}xx'));
    expect(step.values).toHaveLength(1);
    expect(step.error?.message).toBe("invalid character 'x' looking for beginning of value");
    expect(s.push(Buffer.from('{"ID":2}'))).toEqual({ values: [] });
    expect(s.end()).toEqual({ values: [] });
  });
});

describe('base64 as Go decodes it', () => {
  it.each([
    ['Zm9', 0],
    ['!!!', 0],
    ['Zm9vZm9', 4],
    ['Zm9v=', 4],
    ['Zg=', 3],
    ['Zg==x', 4],
    ['Zg=x', 2],
    ['=', 0],
    ['Z===', 1],
    ['Zm9vY', 4],
    ['Zm9vYg', 4],
    ['é', 0],
  ])('%s is refused at byte %i', (text, offset) => {
    expect(() => decodeBase64Std(text)).toThrow(new Base64Error(offset));
  });

  it.each([
    ['Zm9v\nYmFy', 'foobar'],
    ['Zg==', 'f'],
    ['Zm\r\n9v', 'foo'],
    ['Zm9v\n', 'foo'],
    ['Zh==', 'f'],
    ['Zg==\n\n', 'f'],
    ['Zg=\n=', 'f'],
    ['', ''],
  ])('%j decodes', (text, want) => {
    expect(decodeBase64Std(text).toString()).toBe(want);
  });
});

describe('jsonpb request decoding', () => {
  it.each([
    ['{"key":"Zm9v","limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
    ['{"key":"Zm9v","limit":"1e2"}', 'json: cannot unmarshal number 1e2 into Go value of type int64'],
    ['{"key":"Zm9v","limit":"abc"}', "invalid character 'a' looking for beginning of value"],
    ['{"key":"Zm9v","limit":"12a"}', "invalid character 'a' after top-level value"],
    ['{"key":"Zm9v","limit":""}', 'unexpected end of JSON input'],
    ['{"key":"Zm9v","limit":"true"}', 'json: cannot unmarshal bool into Go value of type int64'],
    ['{"key":"Zm9v","limit":"18446744073709551616"}', 'json: cannot unmarshal number 18446744073709551616 into Go value of type int64'],
    ['{"key":"Zm9v","limit":{}}', 'json: cannot unmarshal object into Go value of type int64'],
    ['{"key":"Zm9v","limit":[]}', 'json: cannot unmarshal array into Go value of type int64'],
    ['{"key":"Zm9v","limit":" 7 "}', 'OK'],
    ['{"key":"Zm9v","limit":"-0"}', 'OK'],
    ['{"key":"Zm9v","sort_order":"BAD"}', 'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":"1"}', 'unknown value "1" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":true}', 'json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":7}', 'OK'],
    ['{"key":"Zm9v","serializable":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['{"key":"Zm9v","keys_only":1}', 'json: cannot unmarshal number into Go value of type bool'],
    ['{"key":"Zm9v","keysOnly":"x"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['{"key":"Zm9v","serializable":null}', 'OK'],
    ['{"key":123}', 'json: cannot unmarshal number into Go value of type []uint8'],
    ['{"key":{}}', 'json: cannot unmarshal object into Go value of type []uint8'],
    ['{"key":["Zm9v"]}', 'json: cannot unmarshal string into Go value of type uint8'],
    ['{"key":[300]}', 'json: cannot unmarshal number 300 into Go value of type uint8'],
    ['{"key":[[1]]}', 'json: cannot unmarshal array into Go value of type uint8'],
    ['{"key":"!!!"}', 'illegal base64 data at input byte 0'],
    ['[]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
    ['"x"', 'json: cannot unmarshal string into Go value of type map[string]json.RawMessage'],
    ['null', 'OK'],
    ['{"key":"Zm9v","bogus":1}', 'OK'],
  ])('%s', (body, expected) => {
    expect(rangeError(body)).toBe(expected);
  });

  it('reads proto names, lowerCamel names, quoted and bare integers, enum names and numbers', () => {
    const node = parseJson(
      '{"key":"Zm9v","rangeEnd":"Zm9w","limit":"18","revision":7,"sort_order":"DESCEND","sort_target":2,"max_create_revision":"-5"}',
    );
    const req = requestFromJson(type('etcdserverpb.RangeRequest'), node);
    expect(req).toEqual({
      key: Buffer.from('foo'),
      range_end: Buffer.from('fop'),
      limit: Long.fromString('18'),
      revision: Long.fromString('7'),
      sort_order: 2,
      sort_target: 2,
      max_create_revision: Long.fromString('-5'),
    });
  });

  it('reads byte lists, uint64 beyond 2^53, nested and repeated messages and oneofs', () => {
    expect(requestFromJson(type('etcdserverpb.RangeRequest'), parseJson('{"key":[102,null,111]}'))).toEqual({
      key: Buffer.from([102, 0, 111]),
    });
    const member = requestFromJson(type('etcdserverpb.MemberRemoveRequest'), parseJson('{"ID":"18446744073709551615"}'));
    expect((member.ID as Long).toString()).toBe('18446744073709551615');
    expect(() => requestFromJson(type('etcdserverpb.MemberRemoveRequest'), parseJson('{"ID":"-1"}'))).toThrow(
      'json: cannot unmarshal number -1 into Go value of type uint64',
    );
    const txn = requestFromJson(
      type('etcdserverpb.TxnRequest'),
      parseJson('{"compare":[{"key":"YQ==","target":"CREATE","create_revision":0}],"success":[{"request_put":{"key":"YQ==","value":"Yg=="}}]}'),
    );
    expect(txn).toEqual({
      compare: [{ key: Buffer.from('a'), target: 1, create_revision: Long.ZERO }],
      success: [{ request_put: { key: Buffer.from('a'), value: Buffer.from('b') } }],
    });
    expect(() => requestFromJson(type('etcdserverpb.TxnRequest'), parseJson('{"compare":{}}'))).toThrow(
      'json: cannot unmarshal object into Go value of type []json.RawMessage',
    );
  });

  it('names enums and fields as Go and protoc do', () => {
    expect(goEnumName(root.lookupEnum('etcdserverpb.RangeRequest.SortOrder'))).toBe('etcdserverpb.RangeRequest_SortOrder');
    expect(goEnumName(root.lookupEnum('etcdserverpb.AlarmType'))).toBe('etcdserverpb.AlarmType');
    expect(goEnumName(root.lookupEnum('mvccpb.Event.EventType'))).toBe('mvccpb.Event_EventType');
    expect(lowerCamelName('range_end')).toBe('rangeEnd');
    expect(lowerCamelName('ID')).toBe('ID');
    expect(lowerCamelName('max_create_revision')).toBe('maxCreateRevision');
  });
});

describe('jsonpb response rendering', () => {
  const header = { cluster_id: Long.fromString('15118495548433857066', true), member_id: Long.fromString('13668033151171901709', true), revision: 3, raft_term: 2 };

  it('renders a range response exactly as etcd 3.4.23 did', () => {
    const json = responseToJson(type('etcdserverpb.RangeResponse'), {
      header,
      kvs: [{ key: Buffer.from('foo'), create_revision: 2, mod_revision: 3, version: 2, value: Buffer.from('bar'), lease: 0 }],
      more: false,
      count: 1,
    });
    expect(json).toBe(
      '{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"3","raft_term":"2"},' +
        '"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmFy"}],"count":"1"}',
    );
  });

  it('names enums, omits zero values, keeps uint32 a number and an empty submessage present', () => {
    expect(
      responseToJson(type('etcdserverpb.WatchResponse'), {
        header: { ...header, revision: 7 },
        events: [{ type: 1, kv: { key: Buffer.from('foo'), mod_revision: 7 } }],
      }),
    ).toBe(
      '{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"7","raft_term":"2"},' +
        '"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"7"}}]}',
    );
    expect(responseToJson(type('etcdserverpb.HashResponse'), { header: {}, hash: 3805115563 })).toBe('{"header":{},"hash":3805115563}');
    expect(responseToJson(type('etcdserverpb.AlarmResponse'), { alarms: [] })).toBe('{}');
    expect(responseToJson(type('etcdserverpb.WatchResponse'), { watch_id: -1 })).toBe('{"watch_id":"-1"}');
  });

  it('escapes strings as Go does', () => {
    expect(goJsonString('<a&b>\u2028\b\f\\b"')).toBe('"\\u003ca\\u0026b\\u003e\\u2028\\u0008\\u000c\\\\b\\""');
  });
});
