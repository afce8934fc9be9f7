import { describe, expect, it } from 'vitest';
import { encodeEntry, encodeMessage, type Message, Writer } from '../../src/raftpb/index.js';
import { membersJson, parseMembersJson } from '../../src/server/transport/members.js';
import {
  isLinkHeartbeat,
  LINK_HEARTBEAT,
  MAX_MESSAGE_BYTES,
  MessageDecoder,
  MessageEncoder,
  MsgAppV2Decoder,
  MsgAppV2Encoder,
  StreamCorrupt,
  type Decoded,
  type StreamDecoder,
  type StreamEncoder,
} from '../../src/server/transport/stream-codec.js';
import { app, heartbeat } from './helpers.js';

function encode(enc: StreamEncoder, msgs: readonly Message[]): Buffer {
  const out = new Writer(1); // grown as it goes
  for (const m of msgs) enc.encode(m, out);
  return Buffer.from(out.finish());
}

function decodeAll(dec: StreamDecoder, pieces: readonly Buffer[]): Message[] {
  const out: Decoded[] = [];
  for (const p of pieces) out.push(...dec.push(p));
  expect(dec.pending).toBe(0);
  return out.map((d) => ('message' in d ? d.message : expect.unreachable()));
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Consecutive MsgApps of one term, as a leader replicates: each starts where the last ended. */
function appendRun(from: bigint, to: bigint, first: number, n: number): Message[] {
  return Array.from({ length: n }, (_, i) => ({ ...app(from, to, first + i, Buffer.from(`entry ${first + i + 1}`)), term: 3, logTerm: 3, commit: first + i }));
}

describe('the message stream (etcd msg_codec)', () => {
  const msgs = [app(1n, 2n, 5, Buffer.from('hello')), heartbeat(1n, 2n, 3), app(1n, 2n, 6, Buffer.alloc(3000, 7))];

  it('is a uint64 big-endian length, then the raftpb Message', () => {
    const b = encodeMessage(msgs[0]!);
    expect(encode(new MessageEncoder(), [msgs[0]!])).toEqual(Buffer.concat([u64(b.length), b]));
  });

  it('round-trips whatever the chunking, and reads a link heartbeat as the empty MsgHeartbeat', () => {
    const bytes = encode(new MessageEncoder(), [...msgs, LINK_HEARTBEAT]);
    const key = (m: Message) => [m.type, m.from, m.to, m.index, m.commit, m.entries.map((e) => Buffer.from(e.data).toString('hex'))];
    const whole = decodeAll(new MessageDecoder(), [bytes]);
    expect(whole.map(key)).toEqual([...msgs, LINK_HEARTBEAT].map(key));
    expect(isLinkHeartbeat(whole[3]!)).toBe(true);
    for (let i = 0; i <= bytes.length; i += 37) {
      const got = decodeAll(new MessageDecoder(), [bytes.subarray(0, i), bytes.subarray(i)]);
      expect(got.map(key)).toEqual(whole.map(key));
    }
  });

  it('refuses a length past the limit before buffering it, and drops an undecodable message alone', () => {
    expect(() => new MessageDecoder().push(u64(MAX_MESSAGE_BYTES + 1))).toThrow(StreamCorrupt);
    const garbage = Buffer.from([0x0a, 0xff, 0xff]);
    const good = encodeMessage(heartbeat(1n, 2n, 9));
    const out = new MessageDecoder().push(Buffer.concat([u64(garbage.length), garbage, u64(good.length), good]));
    expect(out).toHaveLength(2);
    expect('undecodable' in out[0]!).toBe(true);
    expect(out[1]).toMatchObject({ message: { commit: 9 } });
  });
});

describe('the msgappv2 stream (etcd msgappv2_codec)', () => {
  it('sends the first MsgApp whole (type 2) and the ones continuing it as entries and commit only (type 1)', () => {
    const [first, second] = appendRun(1n, 2n, 10, 2);
    const bytes = encode(new MsgAppV2Encoder(), [first!, second!]);
    const whole = encodeMessage(first!);
    const entry = encodeEntry(second!.entries[0]!);
    expect(bytes).toEqual(Buffer.concat([Buffer.from([2]), u64(whole.length), whole, Buffer.from([1]), u64(1), u64(entry.length), entry, u64(second!.commit)]));
  });

  it('a link heartbeat is the single byte 0', () => {
    expect(encode(new MsgAppV2Encoder(), [LINK_HEARTBEAT])).toEqual(Buffer.from([0]));
  });

  it('round-trips a replication run with a term change and an empty MsgApp, at every split point', () => {
    const run = [...appendRun(1n, 2n, 10, 5), { ...app(1n, 2n, 15), term: 3, logTerm: 3, commit: 15 }, ...appendRun(1n, 2n, 15, 3).map((m) => ({ ...m, term: 4 }))];
    const bytes = encode(new MsgAppV2Encoder(), [...run, LINK_HEARTBEAT]);
    const key = (m: Message) => [m.type, m.from, m.to, m.term, m.logTerm, m.index, m.commit, m.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()])];
    for (let i = 0; i <= bytes.length; i += 13) {
      const got = decodeAll(new MsgAppV2Decoder(2n, 1n), [bytes.subarray(0, i), bytes.subarray(i)]);
      expect(got.map(key)).toEqual([...run, LINK_HEARTBEAT].map(key));
    }
  });

  it('an unknown record type or an undecodable entry ends the stream', () => {
    expect(() => new MsgAppV2Decoder(2n, 1n).push(Buffer.from([7]))).toThrow(/failed to parse type 7 in msgappv2 stream/);
    const bad = Buffer.from([0x08, 0x07]); // entry type 7 does not exist
    expect(() => new MsgAppV2Decoder(2n, 1n).push(Buffer.concat([Buffer.from([1]), u64(1), u64(bad.length), bad, u64(0)]))).toThrow(StreamCorrupt);
    expect(() => new MsgAppV2Decoder(2n, 1n).push(Buffer.concat([Buffer.from([2]), u64(MAX_MESSAGE_BYTES + 1)]))).toThrow(StreamCorrupt);
  });
});

describe('member list JSON', () => {
  it('parses what real etcd 3.4.23 serves on GET /members', () => {
    const etcd = '[{"id":13668033151171901709,"peerURLs":["http://127.0.0.1:23801"],"name":"a","clientURLs":["http://127.0.0.1:23791"]}]\n';
    expect(parseMembersJson(etcd)).toEqual([
      { id: 13668033151171901709n, name: 'a', peerUrls: ['http://127.0.0.1:23801'], clientUrls: ['http://127.0.0.1:23791'], isLearner: false },
    ]);
  });

  it('round-trips names that look like JSON keys', () => {
    const m = { id: 0xffffffffffffffffn, name: 'x","id":5,"y', peerUrls: ['http://a:1'], clientUrls: [], isLearner: true };
    expect(parseMembersJson(membersJson([m]))).toEqual([m]);
  });

  it('refuses lists that are not members', () => {
    expect(() => parseMembersJson('{}')).toThrow(/not a JSON array/);
    expect(() => parseMembersJson('[{"id":18446744073709551616}]')).toThrow(/valid id/);
    expect(() => parseMembersJson('[{"id":1,"peerURLs":[3]}]')).toThrow(/peerURLs/);
    expect(() => parseMembersJson('[{"id":1')).toThrow();
  });
});
