// Every Message is built by raftpb's newMessage, whoever builds it (raft sending or
// forwarding, the wire decoders, a snapshot sender): one hidden class for raft's hot
// functions. Messages of other shapes are not wrong, only slower, so what is checked here
// is the shape itself: the same fields in the same order, and (through V8's
// %HaveSameMap, allowed for this file's functions) the same map for raft's own messages.

import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  type Message,
  MessageType,
  Writer,
  decodeMessage,
  encodeMessage,
  newMessage,
  withSnapshot,
} from '../../src/raftpb/index.js';
import { LINK_HEARTBEAT, MsgAppV2Decoder, MsgAppV2Encoder } from '../../src/server/transport/stream-codec.js';
import { Cluster, enc } from './harness.js';

const fields = Object.keys(newMessage(MessageType.MsgHup, 0n, 0n, 0, 0, 0, [], 0, undefined, false, 0, undefined));

/** Every kind of message a three-member cluster sends: votes, appends, heartbeats, forwarded proposals and reads, snapshots. */
function traffic(): Message[] {
  const c = new Cluster([1n, 2n, 3n], { checkQuorum: true, preVote: true });
  c.stabilize();
  c.elect(1n);
  c.propose(1n, 'first of the term');
  c.stabilize();
  for (let i = 0; i < 5; i++) c.propose(2n, `forwarded ${i}`);
  c.node(3n).rn.readIndex(enc('read'));
  c.stabilize();
  c.isolate(3n);
  for (let i = 0; i < 5; i++) c.propose(1n, `while 3 is away ${i}`);
  c.stabilize();
  const leader = c.node(1n);
  leader.storage.createSnapshot(leader.storage.lastIndex(), undefined, enc('state'));
  leader.storage.compact(leader.storage.lastIndex());
  c.heal();
  c.tickAll(3);
  c.stabilize();
  return c.sent;
}

describe('one shape for every Message', () => {
  it('raft sends, forwards and snapshots with every field, in one order', () => {
    const sent = traffic();
    const types = new Set(sent.map((m) => m.type));
    // the traffic covered what it is here for
    for (const t of [MessageType.MsgApp, MessageType.MsgHeartbeat, MessageType.MsgPreVote, MessageType.MsgSnap, MessageType.MsgProp, MessageType.MsgReadIndex]) {
      expect(types, `a ${t} was sent`).toContain(t);
    }
    for (const m of sent) expect(Object.keys(m)).toEqual(fields);
  });

  it('messages decoded from the wire have the same fields in the same order, with or without snapshot and context', () => {
    for (const m of traffic()) expect(Object.keys(decodeMessage(encodeMessage(m)))).toEqual(fields);
    expect(Object.keys(LINK_HEARTBEAT)).toEqual(fields);
    const app = newMessage(MessageType.MsgApp, 2n, 1n, 3, 3, 7, [{ term: 3, index: 8, type: 0, data: enc('x') }], 8, undefined, false, 0, undefined);
    const w = new Writer(64);
    new MsgAppV2Encoder().encode(app, w);
    const [got] = new MsgAppV2Decoder(2n, 1n).push(Buffer.from(w.finish()));
    expect(got !== undefined && 'message' in got ? Object.keys(got.message) : got).toEqual(fields);
  });

  it("raft's messages, forwarded ones and re-snapshotted ones share one V8 map", () => {
    setFlagsFromString('--allow-natives-syntax');
    // compiled after the flag: the parser reads %-calls only while it is on
    const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: Message, b: Message) => boolean;
    setFlagsFromString('--no-allow-natives-syntax');
    traffic(); // a first run: every field has seen every kind of value it will hold
    const sent = traffic();
    const reference = sent.find((m) => m.type === MessageType.MsgApp)!;
    const forwarded = sent.filter((m) => m.type === MessageType.MsgProp && m.from !== 0n && m.to === 1n);
    expect(forwarded.length).toBeGreaterThan(0);
    const snap = sent.find((m) => m.type === MessageType.MsgSnap)!;
    for (const m of [...forwarded, snap, withSnapshot(reference, snap.snapshot!)]) {
      expect(sameMap(m, reference), `${m.type} from ${m.from} to ${m.to}`).toBe(true);
    }
  });
});
