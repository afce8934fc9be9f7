import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  ConfChangeType,
  EntryType,
  MessageType,
  ProtoDecodeError,
  decodeConfChange,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  type Message,
} from '../../src/raftpb/index.js';

// protobufjs reads our bytes through the .proto file: an independent check that the
// hand-written codec speaks the schema (field numbers, wire types) it claims to.
const root = protobuf.loadSync('proto/raftpb/raft.proto');
const PbMessage = root.lookupType('raftpb.Message');
const PbHardState = root.lookupType('raftpb.HardState');

const big = 0xfedcba9876543210n;

describe('raftpb codec', () => {
  it('round-trips a message with entries, snapshot and context', () => {
    const m: Message = {
      type: MessageType.MsgApp,
      to: big,
      from: 2n,
      term: 2 ** 40 + 3,
      logTerm: 7,
      index: 2 ** 52 + 1,
      entries: [
        { term: 7, index: 8, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
        { term: 7, index: 9, type: EntryType.ConfChange, data: new Uint8Array(0) },
      ],
      commit: 300,
      snapshot: {
        data: new Uint8Array([9]),
        metadata: {
          index: 5,
          term: 1,
          confState: { voters: [1n, big], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
      },
      reject: true,
      rejectHint: 77,
      context: new Uint8Array([0xaa]),
    };
    const back = decodeMessage(encodeMessage(m));
    expect(back).toEqual(m);
  });

  it('is readable by protobufjs through proto/raftpb/raft.proto', () => {
    const bytes = encodeMessage({
      type: MessageType.MsgHeartbeat,
      to: big,
      from: 1n,
      term: 12,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 99,
      reject: false,
      rejectHint: 0,
    });
    const o = PbMessage.toObject(PbMessage.decode(bytes), { longs: String, enums: String });
    expect(o.type).toBe('MsgHeartbeat');
    expect(o.to).toBe(big.toString());
    expect(o.term).toBe('12');
    expect(o.commit).toBe('99');
    const hs = PbHardState.toObject(PbHardState.decode(encodeHardState({ term: 4, vote: big, commit: 2 ** 33 })), {
      longs: String,
    });
    expect(hs).toEqual({ term: '4', vote: big.toString(), commit: String(2 ** 33) });
  });

  it('reads what protobufjs writes', () => {
    const bytes = PbHardState.encode(PbHardState.fromObject({ term: 5, vote: '18446744073709551615', commit: 3 })).finish();
    expect(decodeHardState(bytes)).toEqual({ term: 5, vote: 2n ** 64n - 1n, commit: 3 });
  });

  it('nests entries of every length-varint size (1, 2 and 3 bytes, and at the boundaries) readably for protobufjs', () => {
    const sizes = [0, 1, 119, 120, 121, 122, 127, 128, 200, 16_370, 16_375, 16_376, 16_377, 16_384, 70_000];
    const m: Message = {
      type: MessageType.MsgApp,
      to: big,
      from: 2n ** 64n - 1n,
      term: 2 ** 40,
      logTerm: 2 ** 40,
      index: 2 ** 33,
      entries: sizes.map((n, i) => ({ term: 2 ** 40, index: 2 ** 33 + i + 1, type: EntryType.Normal, data: new Uint8Array(n).fill(i + 1) })),
      commit: 2 ** 33,
      reject: false,
      rejectHint: 0,
    };
    const bytes = encodeMessage(m);
    expect(decodeMessage(bytes)).toEqual(m);
    const o = PbMessage.toObject(PbMessage.decode(bytes), { longs: String, bytes: Array }) as { from: string; entries: Array<{ Index: string; Data?: number[] }> };
    expect(o.from).toBe((2n ** 64n - 1n).toString());
    expect(o.entries.map((e) => e.Data?.length ?? 0)).toEqual(sizes);
    expect(o.entries.map((e) => e.Index)).toEqual(sizes.map((_, i) => String(2 ** 33 + i + 1)));
  });

  it('round-trips entries and conf changes', () => {
    const e = { term: 3, index: 4, type: EntryType.ConfChangeV2, data: new Uint8Array([5]) };
    expect(decodeEntry(encodeEntry(e))).toEqual(e);
    const cc = { id: 9n, type: ConfChangeType.AddLearnerNode, nodeId: big, context: new Uint8Array([1]) };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
  });

  it('turns garbage into ProtoDecodeError, never another exception', () => {
    const valid = encodeMessage({
      type: MessageType.MsgApp,
      to: 1n,
      from: 2n,
      term: 1,
      logTerm: 1,
      index: 1,
      entries: [{ term: 1, index: 2, type: EntryType.Normal, data: new Uint8Array(10) }],
      commit: 1,
      reject: false,
      rejectHint: 0,
    });
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 5000; i++) {
      const buf = valid.slice(0, Math.floor(rand() * (valid.length + 1)));
      const flips = Math.floor(rand() * 3);
      for (let j = 0; j < flips && buf.length > 0; j++) buf[Math.floor(rand() * buf.length)] ^= 1 << Math.floor(rand() * 8);
      try {
        decodeMessage(buf);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtoDecodeError);
      }
    }
    expect(() => decodeMessage(new Uint8Array([0x08, 0x63]))).toThrow(/unknown message type 99/);
    expect(() => decodeHardState(new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(
      /above 2\^53/,
    );
  });
});
