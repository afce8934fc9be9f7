// raftpb messages with every integer field as a bigint, so that tests can put any
// uint64 on the wire (2^53, 2^63, 2^64-1: values our own encoder never writes, since
// terms and indexes are numbers) and see what the decoders and raft make of them.
// The schemas follow proto/raftpb/raft.proto: field numbers and wire types.

import { WireType, Writer } from '../../src/raftpb/index.js';

export type Scalar = 'number' | 'bigint' | 'enum' | 'bool';

export interface Field {
  readonly no: number;
  /** the property name the decoders give this field */
  readonly name: string;
  readonly kind: Scalar | 'bytes' | Schema;
  readonly repeated?: boolean;
  /** enums: how many values are defined (0 .. count-1) */
  readonly count?: number;
}

export interface Schema {
  readonly name: string;
  readonly fields: readonly Field[];
}

export const ConfStateSchema: Schema = {
  name: 'ConfState',
  fields: [
    { no: 1, name: 'voters', kind: 'bigint', repeated: true },
    { no: 2, name: 'learners', kind: 'bigint', repeated: true },
    { no: 3, name: 'votersOutgoing', kind: 'bigint', repeated: true },
    { no: 4, name: 'learnersNext', kind: 'bigint', repeated: true },
    { no: 5, name: 'autoLeave', kind: 'bool' },
  ],
};

export const SnapshotMetadataSchema: Schema = {
  name: 'SnapshotMetadata',
  fields: [
    { no: 1, name: 'confState', kind: ConfStateSchema },
    { no: 2, name: 'index', kind: 'number' },
    { no: 3, name: 'term', kind: 'number' },
  ],
};

export const SnapshotSchema: Schema = {
  name: 'Snapshot',
  fields: [
    { no: 1, name: 'data', kind: 'bytes' },
    { no: 2, name: 'metadata', kind: SnapshotMetadataSchema },
  ],
};

export const EntrySchema: Schema = {
  name: 'Entry',
  fields: [
    { no: 1, name: 'type', kind: 'enum', count: 3 },
    { no: 2, name: 'term', kind: 'number' },
    { no: 3, name: 'index', kind: 'number' },
    { no: 4, name: 'data', kind: 'bytes' },
  ],
};

export const MessageSchema: Schema = {
  name: 'Message',
  fields: [
    { no: 1, name: 'type', kind: 'enum', count: 19 },
    { no: 2, name: 'to', kind: 'bigint' },
    { no: 3, name: 'from', kind: 'bigint' },
    { no: 4, name: 'term', kind: 'number' },
    { no: 5, name: 'logTerm', kind: 'number' },
    { no: 6, name: 'index', kind: 'number' },
    { no: 7, name: 'entries', kind: EntrySchema, repeated: true },
    { no: 8, name: 'commit', kind: 'number' },
    { no: 9, name: 'snapshot', kind: SnapshotSchema },
    { no: 10, name: 'reject', kind: 'bool' },
    { no: 11, name: 'rejectHint', kind: 'number' },
    { no: 12, name: 'context', kind: 'bytes' },
  ],
};

export const HardStateSchema: Schema = {
  name: 'HardState',
  fields: [
    { no: 1, name: 'term', kind: 'number' },
    { no: 2, name: 'vote', kind: 'bigint' },
    { no: 3, name: 'commit', kind: 'number' },
  ],
};

export const ConfChangeSchema: Schema = {
  name: 'ConfChange',
  fields: [
    { no: 1, name: 'id', kind: 'bigint' },
    { no: 2, name: 'type', kind: 'enum', count: 4 },
    { no: 3, name: 'nodeId', kind: 'bigint' },
    { no: 4, name: 'context', kind: 'bytes' },
  ],
};

/** A value for a schema: scalars as bigint, bytes as Uint8Array, nested messages as RawValue, repeated as arrays. */
export type RawValue = { [name: string]: bigint | Uint8Array | RawValue | Array<bigint | RawValue> | undefined };

/** Encodes `v` by `schema`, every integer as a full uint64 varint. Absent fields are left out. */
export function encodeRaw(schema: Schema, v: RawValue): Uint8Array {
  const w = new Writer();
  writeRaw(w, schema, v);
  return w.finish();
}

function writeRaw(w: Writer, schema: Schema, v: RawValue): void {
  for (const f of schema.fields) {
    const x = v[f.name];
    if (x === undefined) continue;
    for (const item of f.repeated ? (x as unknown[]) : [x]) {
      if (typeof f.kind === 'object') {
        const nested = f.kind;
        w.message(f.no, (sub) => writeRaw(sub, nested, item as RawValue));
      } else if (f.kind === 'bytes') {
        w.tag(f.no, WireType.Bytes).bytes(item as Uint8Array);
      } else {
        w.tag(f.no, WireType.Varint).uint64(item as bigint);
      }
    }
  }
}

export const U53 = 2n ** 53n;

/** The boundary values every integer field is fed with. */
export const BOUNDARIES: readonly bigint[] = [0n, 2n ** 32n, U53 - 1n, U53, U53 + 1n, 2n ** 63n, 2n ** 64n - 1n];

/** A MsgHeartbeat (or any type) as raw fields; everything not given is zero/empty. */
export function rawMessage(p: { type: number; from: bigint; to: bigint; term: bigint; logTerm?: bigint; index?: bigint; commit?: bigint }): Uint8Array {
  return encodeRaw(MessageSchema, {
    type: BigInt(p.type),
    to: p.to,
    from: p.from,
    term: p.term,
    logTerm: p.logTerm ?? 0n,
    index: p.index ?? 0n,
    commit: p.commit ?? 0n,
    reject: 0n,
    rejectHint: 0n,
  });
}
