// Issue 19's kept benchmark for the hand-written codecs: src/raftpb/codec.ts (raft's
// messages and WAL entries, byte-compatible with etcd's gogoproto marshalers) and
// src/mvcc/codec.ts (mvccpb.KeyValue, the store's records) against protobufjs on the
// same .proto files, encoding and decoding the values the hot path handles. One core,
// a few seconds; nothing else is measured.
//
//   npx tsx bench/codec/bench.ts [--ms 400] [--rounds 5]
//
// Figures and their reading: bench/codec/README.md. A check that both sides produce the
// same bytes runs first: a faster codec that wrote different bytes would prove nothing.

import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import protobuf from 'protobufjs';
import Long from 'long';
import { decodeEntry, decodeMessage, encodeEntry, encodeMessage, writeEntry } from '../../src/raftpb/codec.js';
import { Writer } from '../../src/raftpb/wire.js';
import { type Entry, EntryType, type Message, MessageType } from '../../src/raftpb/types.js';
import { decodeKeyValue, encodeKeyValue } from '../../src/mvcc/codec.js';
import type { KeyValue } from '../../src/mvcc/types.js';

const protoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');
// keepCase: the field names as the .proto files spell them (etcd's), as src/server/pb.ts loads them
const raftRoot = new protobuf.Root().loadSync(path.join(protoDir, 'raftpb/raft.proto'), { keepCase: true });
const kvRoot = new protobuf.Root().loadSync(path.join(protoDir, 'mvccpb/kv.proto'), { keepCase: true });
const PbMessage = raftRoot.lookupType('raftpb.Message');
const PbEntry = raftRoot.lookupType('raftpb.Entry');
const PbKeyValue = kvRoot.lookupType('mvccpb.KeyValue');

const u64 = (v: number | bigint): Long => Long.fromString(String(v), true);

// A put as it rides a raft entry: an InternalRaftRequest of ~300 bytes.
const entry = (index: number): Entry => ({ term: 7, index, type: EntryType.Normal, data: Buffer.alloc(300, 0x61) });
const entries = Array.from({ length: 8 }, (_, i) => entry(100_000 + i));
const msgApp: Message = {
  type: MessageType.MsgApp,
  to: 0x8e9e05c52164694dn,
  from: 0x91bc3c398fb3c146n,
  term: 7,
  logTerm: 7,
  index: 99_999,
  entries,
  commit: 99_990,
  reject: false,
  rejectHint: 0,
};
// protobufjs' side of each case includes the conversion a switch to it would need: its
// objects hold Long for 64-bit fields where etcd-ts's raft and store use numbers (indexes,
// terms, revisions) and bigint (member IDs, leases). gogoproto writes proto2's
// non-nullable fields even when zero, so the objects set every such field.
const num = (v: Long | number): number => (typeof v === 'number' ? v : v.toNumber());
const big = (v: Long | number): bigint => (typeof v === 'number' ? BigInt(v) : BigInt(v.toString()));
const EMPTY_SNAPSHOT = { data: Buffer.alloc(0), metadata: { conf_state: { auto_leave: false }, index: 0, term: 0 } };
const toPbEntry = (e: Entry): object => ({ Type: e.type, Term: e.term, Index: e.index, Data: e.data });
const toPbMessage = (m: Message): object => ({
  type: m.type,
  to: u64(m.to),
  from: u64(m.from),
  term: m.term,
  logTerm: m.logTerm,
  index: m.index,
  entries: m.entries.map(toPbEntry),
  commit: m.commit,
  snapshot: EMPTY_SNAPSHOT,
  reject: m.reject,
  rejectHint: m.rejectHint,
});
interface PbEntryObject { Type: number; Term: Long; Index: Long; Data: Uint8Array }
const fromPbEntry = (o: PbEntryObject): Entry => ({ term: num(o.Term), index: num(o.Index), type: o.Type as EntryType, data: o.Data });
const fromPbMessage = (b: Uint8Array): Message => {
  const o = PbMessage.decode(b) as unknown as Record<string, Long> & { type: number; entries: PbEntryObject[]; reject: boolean };
  return {
    type: o.type as MessageType,
    to: big(o.to!),
    from: big(o.from!),
    term: num(o.term!),
    logTerm: num(o.logTerm!),
    index: num(o.index!),
    entries: o.entries.map(fromPbEntry),
    commit: num(o.commit!),
    reject: o.reject,
    rejectHint: num(o.rejectHint!),
  };
};
const kv: KeyValue = { key: Buffer.from('/registry/pods/default/p1'), createRevision: 1_000, modRevision: 123_456, version: 42, value: Buffer.alloc(256, 0x76), lease: 0n };
// proto3 as gogoproto writes it: zero values left out (protobufjs writes any field that is set)
const toPbKv = (k: KeyValue): object => {
  const o: Record<string, unknown> = { key: k.key };
  if (k.createRevision !== 0) o.create_revision = k.createRevision;
  if (k.modRevision !== 0) o.mod_revision = k.modRevision;
  if (k.version !== 0) o.version = k.version;
  if (k.value.length > 0) o.value = k.value;
  if (k.lease !== 0n) o.lease = u64(k.lease);
  return o;
};
const fromPbKv = (b: Uint8Array): KeyValue => {
  const o = PbKeyValue.decode(b) as unknown as { key: Buffer; create_revision: Long; mod_revision: Long; version: Long; value: Buffer; lease: Long };
  return { key: o.key, createRevision: num(o.create_revision), modRevision: num(o.mod_revision), version: num(o.version), value: o.value, lease: big(o.lease) };
};

interface Case {
  name: string;
  hand: () => unknown;
  pbjs: () => unknown;
}

const handMsg = encodeMessage(msgApp);
const pbMsg = PbMessage.encode(toPbMessage(msgApp)).finish();
const handEntry = encodeEntry(entries[0]!);
const handKv = encodeKeyValue(kv);

const cases: Case[] = [
  { name: 'encode MsgApp, 8 entries × 300 B', hand: () => encodeMessage(msgApp), pbjs: () => PbMessage.encode(toPbMessage(msgApp)).finish() },
  { name: 'decode MsgApp, 8 entries × 300 B', hand: () => decodeMessage(handMsg), pbjs: () => fromPbMessage(handMsg) },
  { name: 'encode Entry (WAL record), 300 B', hand: () => encodeEntry(entries[0]!), pbjs: () => PbEntry.encode(toPbEntry(entries[0]!)).finish() },
  {
    // what the WAL does with a batch (src/wal/frame.ts): every entry into one scratch buffer
    name: 'encode 8 entries into one buffer, 300 B',
    hand: () => {
      const w = new Writer(8 * 330);
      for (const e of entries) writeEntry(w, e);
      return w.finish();
    },
    pbjs: () => {
      const w = protobuf.Writer.create();
      for (const e of entries) PbEntry.encode(toPbEntry(e), w);
      return w.finish();
    },
  },
  { name: 'decode Entry (WAL replay), 300 B', hand: () => decodeEntry(handEntry), pbjs: () => fromPbEntry(PbEntry.decode(handEntry) as unknown as PbEntryObject) },
  { name: 'encode KeyValue, 256 B value', hand: () => encodeKeyValue(kv), pbjs: () => PbKeyValue.encode(toPbKv(kv)).finish() },
  { name: 'decode KeyValue, 256 B value', hand: () => decodeKeyValue(handKv), pbjs: () => fromPbKv(handKv) },
];

/** Both codecs must write the same bytes, or the comparison is between different jobs. */
function checkSameBytes(): void {
  const pairs: Array<[string, Uint8Array, Uint8Array]> = [
    ['MsgApp', handMsg, pbMsg],
    ['Entry', handEntry, PbEntry.encode(toPbEntry(entries[0]!)).finish()],
    ['KeyValue', handKv, PbKeyValue.encode(toPbKv(kv)).finish()],
  ];
  for (const [name, a, b] of pairs) {
    if (!Buffer.from(a).equals(Buffer.from(b))) throw new Error(`${name}: the hand codec and protobufjs write different bytes`);
  }
}

/** Operations per second over `ms` milliseconds of calls (after a warm-up of the same length). */
function opsPerSec(fn: () => unknown, ms: number): number {
  let sink = 0;
  for (const deadline = performance.now() + ms; performance.now() < deadline; ) if (fn() !== undefined) sink++;
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 1_000; i++) if (fn() !== undefined) n++;
    t = performance.now();
  }
  if (sink < 0) console.log(sink); // keeps the warm-up's results alive
  return (n * 1_000) / (t - t0);
}

function main(): void {
  const { values } = parseArgs({ options: { ms: { type: 'string', default: '400' }, rounds: { type: 'string', default: '5' } } });
  const ms = Number(values.ms);
  const rounds = Number(values.rounds);
  checkSameBytes();
  console.log(`hand codec vs protobufjs ${(protobuf as unknown as { util: { Long?: unknown } }).util.Long ? '(with long)' : ''}, ${rounds} rounds of ${ms} ms each, alternating; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('case                                     hand k ops/s  protobufjs k ops/s  hand / protobufjs (median of rounds)');
  for (const c of cases) {
    const hand: number[] = [];
    const pbjs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        hand.push(opsPerSec(c.hand, ms));
        pbjs.push(opsPerSec(c.pbjs, ms));
      } else {
        pbjs.push(opsPerSec(c.pbjs, ms));
        hand.push(opsPerSec(c.hand, ms));
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratios = hand.map((h, i) => h / pbjs[i]!);
    console.log(`${c.name.padEnd(40)} ${(median(hand) / 1e3).toFixed(0).padStart(12)}  ${(median(pbjs) / 1e3).toFixed(0).padStart(18)}  ${median(ratios).toFixed(2).padStart(8)}`);
  }
}

main();
