// raftpb encoding, byte-compatible with etcd's gogoproto marshalers: fields go out
// in field-number order and non-nullable fields are written even when zero.
// Decoding is total: malformed input raises ProtoDecodeError, never anything else.

import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type MessageType,
  type Snapshot,
  type SnapshotMetadata,
  emptyConfState,
  emptySnapshot,
  isMessageType,
  newMessage,
} from './types.js';
import { ProtoDecodeError, Reader, WireType, Writer, expectWireType } from './wire.js';

const empty = new Uint8Array(0);

// ---- Entry ----

export function writeEntry(w: Writer, e: Entry): void {
  w.tag(1, WireType.Varint).uint32(e.type);
  w.tag(2, WireType.Varint).uint53(e.term);
  w.tag(3, WireType.Varint).uint53(e.index);
  // Data is nullable in etcd: its empty entries (a new leader's no-op) carry no
  // field 4 at all, and WAL bytes must match etcd's
  if (e.data.length > 0) w.tag(4, WireType.Bytes).bytes(e.data);
}

export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(e.data.length + 24);
  writeEntry(w, e);
  return w.finish();
}

function readEntry(r: Reader): Entry {
  let term = 0;
  let index = 0;
  let type: EntryType = EntryType.Normal;
  let data: Uint8Array = empty;
  while (!r.done()) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1: {
        expectWireType(wt, WireType.Varint);
        const t = r.uint32();
        if (t !== 0 && t !== 1 && t !== 2) throw new ProtoDecodeError(`unknown entry type ${t}`);
        type = t;
        break;
      }
      case 2:
        expectWireType(wt, WireType.Varint);
        term = r.uint53('Entry.term');
        break;
      case 3:
        expectWireType(wt, WireType.Varint);
        index = r.uint53('Entry.index');
        break;
      case 4:
        expectWireType(wt, WireType.Bytes);
        data = r.bytes();
        break;
      default:
        r.skip(wt);
    }
  }
  return { term, index, type, data };
}

export function decodeEntry(buf: Uint8Array): Entry {
  return readEntry(new Reader(buf));
}

// ---- HardState ----

export function encodeHardState(h: HardState): Uint8Array {
  const w = new Writer(32);
  w.tag(1, WireType.Varint).uint53(h.term);
  w.tag(2, WireType.Varint).uint64(h.vote);
  w.tag(3, WireType.Varint).uint53(h.commit);
  return w.finish();
}

export function decodeHardState(buf: Uint8Array): HardState {
  const r = new Reader(buf);
  let term = 0;
  let vote = 0n;
  let commit = 0;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1 || f === 2 || f === 3) expectWireType(wt, WireType.Varint);
    if (f === 1) term = r.uint53('HardState.term');
    else if (f === 2) vote = r.uint64();
    else if (f === 3) commit = r.uint53('HardState.commit');
    else r.skip(wt);
  }
  return { term, vote, commit };
}

// ---- ConfState ----

function writeConfState(w: Writer, c: ConfState): void {
  for (const id of c.voters) w.tag(1, WireType.Varint).uint64(id);
  for (const id of c.learners) w.tag(2, WireType.Varint).uint64(id);
  for (const id of c.votersOutgoing) w.tag(3, WireType.Varint).uint64(id);
  for (const id of c.learnersNext) w.tag(4, WireType.Varint).uint64(id);
  w.tag(5, WireType.Varint).bool(c.autoLeave);
}

export function encodeConfState(c: ConfState): Uint8Array {
  const w = new Writer();
  writeConfState(w, c);
  return w.finish();
}

function readConfState(r: Reader): ConfState {
  const voters: bigint[] = [];
  const learners: bigint[] = [];
  const votersOutgoing: bigint[] = [];
  const learnersNext: bigint[] = [];
  let autoLeave = false;
  while (!r.done()) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        r.repeatedUint64(wt, voters);
        break;
      case 2:
        r.repeatedUint64(wt, learners);
        break;
      case 3:
        r.repeatedUint64(wt, votersOutgoing);
        break;
      case 4:
        r.repeatedUint64(wt, learnersNext);
        break;
      case 5:
        expectWireType(wt, WireType.Varint);
        autoLeave = r.bool();
        break;
      default:
        r.skip(wt);
    }
  }
  return { voters, learners, votersOutgoing, learnersNext, autoLeave };
}

export function decodeConfState(buf: Uint8Array): ConfState {
  return readConfState(new Reader(buf));
}

// ---- Snapshot ----

function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.message(1, (sub) => writeConfState(sub, m.confState));
  w.tag(2, WireType.Varint).uint53(m.index);
  w.tag(3, WireType.Varint).uint53(m.term);
}

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  let confState: ConfState = emptyConfState;
  let index = 0;
  let term = 0;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.Bytes);
      confState = readConfState(r.sub());
    } else if (f === 2) {
      expectWireType(wt, WireType.Varint);
      index = r.uint53('SnapshotMetadata.index');
    } else if (f === 3) {
      expectWireType(wt, WireType.Varint);
      term = r.uint53('SnapshotMetadata.term');
    } else r.skip(wt);
  }
  return { confState, index, term };
}

function writeSnapshot(w: Writer, s: Snapshot): void {
  w.tag(1, WireType.Bytes).bytes(s.data);
  w.message(2, (sub) => writeSnapshotMetadata(sub, s.metadata));
}

function readSnapshot(r: Reader): Snapshot {
  let data: Uint8Array = empty;
  let metadata: SnapshotMetadata = emptySnapshot.metadata;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.Bytes);
      data = r.bytes();
    } else if (f === 2) {
      expectWireType(wt, WireType.Bytes);
      metadata = readSnapshotMetadata(r.sub());
    } else r.skip(wt);
  }
  return { data, metadata };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new Writer(s.data.length + 64);
  writeSnapshot(w, s);
  return w.finish();
}

export function decodeSnapshot(buf: Uint8Array): Snapshot {
  return readSnapshot(new Reader(buf));
}

// ---- Message ----

/** Bytes the encoding of `m` is likely to take (a starting size for a Writer). */
export function messageSizeHint(m: Message): number {
  let size = 64;
  for (const e of m.entries) size += e.data.length + 24;
  if (m.snapshot) size += m.snapshot.data.length;
  return size;
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(messageSizeHint(m));
  writeMessage(w, m);
  return w.finish();
}

export function writeMessage(w: Writer, m: Message): void {
  w.tag(1, WireType.Varint).uint32(m.type);
  w.tag(2, WireType.Varint).uint64(m.to);
  w.tag(3, WireType.Varint).uint64(m.from);
  w.tag(4, WireType.Varint).uint53(m.term);
  w.tag(5, WireType.Varint).uint53(m.logTerm);
  w.tag(6, WireType.Varint).uint53(m.index);
  for (const e of m.entries) w.message(7, (sub) => writeEntry(sub, e));
  w.tag(8, WireType.Varint).uint53(m.commit);
  w.message(9, (sub) => writeSnapshot(sub, m.snapshot ?? emptySnapshot));
  w.tag(10, WireType.Varint).bool(m.reject);
  w.tag(11, WireType.Varint).uint53(m.rejectHint);
  if (m.context !== undefined) w.tag(12, WireType.Bytes).bytes(m.context);
}

export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  let type: MessageType | undefined;
  let to = 0n;
  let from = 0n;
  let term = 0;
  let logTerm = 0;
  let index = 0;
  const entries: Entry[] = [];
  let commit = 0;
  let snapshot: Snapshot | undefined;
  let reject = false;
  let rejectHint = 0;
  let context: Uint8Array | undefined;
  while (!r.done()) {
    const [f, wt] = r.tag();
    expectWireType(wt, f === 7 || f === 9 || f === 12 ? WireType.Bytes : f <= 12 ? WireType.Varint : wt);
    switch (f) {
      case 1: {
        const t = r.uint32();
        if (!isMessageType(t)) throw new ProtoDecodeError(`unknown message type ${t}`);
        type = t;
        break;
      }
      case 2:
        to = r.uint64();
        break;
      case 3:
        from = r.uint64();
        break;
      case 4:
        term = r.uint53('Message.term');
        break;
      case 5:
        logTerm = r.uint53('Message.logTerm');
        break;
      case 6:
        index = r.uint53('Message.index');
        break;
      case 7:
        entries.push(readEntry(r.sub()));
        break;
      case 8:
        commit = r.uint53('Message.commit');
        break;
      case 9: {
        const s = readSnapshot(r.sub());
        if (s.metadata.index !== 0 || s.data.length > 0) snapshot = s;
        break;
      }
      case 10:
        reject = r.bool();
        break;
      case 11:
        rejectHint = r.uint53('Message.rejectHint');
        break;
      case 12:
        context = r.bytes();
        break;
      default:
        r.skip(wt);
    }
  }
  if (type === undefined) type = 0; // proto2 default: MsgHup
  return newMessage(type, to, from, term, logTerm, index, entries, commit, snapshot, reject, rejectHint, context);
}

// ---- ConfChange ----

export function encodeConfChange(c: ConfChange): Uint8Array {
  const w = new Writer(c.context.length + 32);
  w.tag(1, WireType.Varint).uint64(c.id);
  w.tag(2, WireType.Varint).uint32(c.type);
  w.tag(3, WireType.Varint).uint64(c.nodeId);
  w.tag(4, WireType.Bytes).bytes(c.context);
  return w.finish();
}

export function decodeConfChange(buf: Uint8Array): ConfChange {
  const r = new Reader(buf);
  let id = 0n;
  let type: ConfChangeType = ConfChangeType.AddNode;
  let nodeId = 0n;
  let context: Uint8Array = empty;
  while (!r.done()) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        expectWireType(wt, WireType.Varint);
        id = r.uint64();
        break;
      case 2: {
        expectWireType(wt, WireType.Varint);
        const t = r.uint32();
        if (t > 3) throw new ProtoDecodeError(`unknown conf change type ${t}`);
        type = t as ConfChangeType;
        break;
      }
      case 3:
        expectWireType(wt, WireType.Varint);
        nodeId = r.uint64();
        break;
      case 4:
        expectWireType(wt, WireType.Bytes);
        context = r.bytes();
        break;
      default:
        r.skip(wt);
    }
  }
  return { id, type, nodeId, context };
}
