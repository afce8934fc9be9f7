// Every integer field of every raftpb type, fed with uint64 boundary values (0, 2^32,
// 2^53-1, 2^53, 2^53+1, 2^63, 2^64-1): decoding either gives back exactly what was
// encoded or fails with ProtoDecodeError, and it fails exactly when a value has no
// exact representation (a number field at 2^53 or more, an enum value that does not
// exist). Decoded messages are then stepped into a running raft, which never throws
// anything but StepError and never takes a term it could not campaign past. Seeded
// (src/raft/sim's Rng), so a failure replays.

import { describe, expect, it } from 'vitest';
import { MAX_TERM, StepError, TERM_JUMP_LIMIT } from '../../src/raft/index.js';
import { Rng } from '../../src/raft/sim/index.js';
import {
  type Message,
  ProtoDecodeError,
  Reader,
  decodeConfChange,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeHardState,
  encodeMessage,
} from '../../src/raftpb/index.js';
import { Cluster } from '../raft/harness.js';
import {
  BOUNDARIES,
  ConfChangeSchema,
  ConfStateSchema,
  EntrySchema,
  type Field,
  HardStateSchema,
  MessageSchema,
  type RawValue,
  type Schema,
  SnapshotSchema,
  U53,
  encodeRaw,
} from './raw.js';

const decoders: ReadonlyArray<[Schema, (b: Uint8Array) => unknown]> = [
  [MessageSchema, decodeMessage],
  [EntrySchema, decodeEntry],
  [SnapshotSchema, decodeSnapshot],
  [ConfStateSchema, decodeConfState],
  [HardStateSchema, decodeHardState],
  [ConfChangeSchema, decodeConfChange],
];

/** A small, valid value for every field of `schema` (one element for repeated fields). */
function base(schema: Schema, rng: Rng): RawValue {
  const v: RawValue = {};
  for (const f of schema.fields) {
    let x: RawValue[string];
    if (typeof f.kind === 'object') x = base(f.kind, rng);
    else if (f.kind === 'bytes') x = new Uint8Array(rng.int(3)).map(() => rng.int(256));
    else if (f.kind === 'enum') x = BigInt(rng.int(f.count!));
    else if (f.kind === 'bool') x = BigInt(rng.int(2));
    else x = BigInt(1 + rng.int(5));
    v[f.name] = f.repeated ? [x as bigint | RawValue] : x;
  }
  return v;
}

type Path = ReadonlyArray<string | number>;

/** The path of every integer field under `schema` (repeated fields: their first element). */
function integerPaths(schema: Schema, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const f of schema.fields) {
    const at = f.repeated ? [...prefix, f.name, 0] : [...prefix, f.name];
    if (typeof f.kind === 'object') out.push(...integerPaths(f.kind, at));
    else if (f.kind !== 'bytes') out.push(at);
  }
  return out;
}

function setAt(v: RawValue, path: Path, x: bigint): RawValue {
  const copy = structuredClone(v);
  let o: Record<string | number, unknown> = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path.at(-1)!] = x;
  return copy;
}

/** Whether every value has an exact representation in the decoded types. */
function representable(schema: Schema, v: RawValue): boolean {
  return schema.fields.every((f) => {
    const x = v[f.name];
    if (x === undefined) return true;
    const items = f.repeated ? (x as unknown[]) : [x];
    return items.every((item) => {
      if (typeof f.kind === 'object') return representable(f.kind, item as RawValue);
      if (f.kind === 'number') return (item as bigint) < U53;
      if (f.kind === 'enum') return (item as bigint) < BigInt(f.count!);
      return true;
    });
  });
}

/** Asserts that `decoded` holds exactly the values of `v`. */
function expectExact(schema: Schema, v: RawValue, decoded: Record<string, unknown>, where: string): void {
  for (const f of schema.fields) {
    const x = v[f.name];
    const got = decoded[f.name];
    const at = `${where}.${f.name}`;
    if (x === undefined) continue;
    if (f.repeated) {
      const items = x as unknown[];
      expect((got as unknown[]).length, at).toBe(items.length);
      items.forEach((item, i) => expectOne(f, item, (got as unknown[])[i], `${at}[${i}]`));
    } else if (schema === MessageSchema && f.name === 'snapshot' && got === undefined) {
      // raft's empty snapshot (index 0, no data) is left out of the decoded message
      const s = x as { data: Uint8Array; metadata: { index: bigint } };
      expect(s.metadata.index === 0n && s.data.length === 0, at).toBe(true);
    } else {
      expectOne(f, x, got, at);
    }
  }
}

function expectOne(f: Field, x: unknown, got: unknown, at: string): void {
  if (typeof f.kind === 'object') expectExact(f.kind, x as RawValue, got as Record<string, unknown>, at);
  else if (f.kind === 'bytes') expect(Buffer.from(got as Uint8Array).equals(Buffer.from(x as Uint8Array)), at).toBe(true);
  else if (f.kind === 'bool') expect(got, at).toBe((x as bigint) !== 0n);
  else if (f.kind === 'bigint') expect(got, at).toBe(x);
  else {
    // number and enum fields: the decoded number is exactly the uint64 sent
    expect(typeof got, at).toBe('number');
    expect(BigInt(got as number), at).toBe(x);
  }
}

/** Decodes `bytes`: exact when every value is representable, ProtoDecodeError when one is not. */
function checkDecode(schema: Schema, decode: (b: Uint8Array) => unknown, v: RawValue): unknown {
  const bytes = encodeRaw(schema, v);
  if (!representable(schema, v)) {
    expect(() => decode(bytes)).toThrow(ProtoDecodeError);
    return undefined;
  }
  const decoded = decode(bytes) as Record<string, unknown>;
  expectExact(schema, v, decoded, schema.name);
  return decoded;
}

const peerTypes = [3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18, 2];

describe('raftpb decoding at uint64 boundaries', () => {
  for (const [schema, decode] of decoders) {
    it(`${schema.name}: every integer field at every boundary decodes exactly or fails`, () => {
      const rng = new Rng(1234);
      let cases = 0;
      let refused = 0;
      for (const path of integerPaths(schema)) {
        for (const x of BOUNDARIES) {
          const v = setAt(base(schema, rng), path, x);
          if (checkDecode(schema, decode, v) === undefined) refused++;
          cases++;
        }
      }
      // ConfState holds only IDs and a bool: every uint64 is representable there
      expect(refused > 0).toBe(schema !== ConfStateSchema);
      expect(cases).toBeGreaterThan(refused);
    });
  }

  it('random combinations of boundary values (seeded) decode exactly or fail', () => {
    const rng = new Rng(99);
    for (const [schema, decode] of decoders) {
      const paths = integerPaths(schema);
      for (let i = 0; i < 300; i++) {
        let v = base(schema, rng);
        for (let k = 1 + rng.int(4); k > 0; k--) v = setAt(v, paths[rng.int(paths.length)]!, BOUNDARIES[rng.int(BOUNDARIES.length)]!);
        checkDecode(schema, decode, v);
      }
    }
  });

  it('a varint past 64 bits, or a length or tag past 32 bits, is an error, not a wrapped value', () => {
    const ten = (last: number) => new Uint8Array([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, last]);
    // 2^63 is the largest power of two in ten bytes; 2^64 used to decode as term 0
    expect(() => decodeHardState(ten(0x02))).toThrow(/varint overflows 64 bits/);
    expect(() => decodeHardState(ten(0x01))).toThrow(/HardState\.term 9223372036854775808 is above 2\^53-1/);
    expect(() => decodeMessage(new Uint8Array([0x10, ...ten(0x02).subarray(1)]))).toThrow(/overflows 64 bits/);
    expect(() => decodeHardState(new Uint8Array([0x08, ...Array(10).fill(0x80), 0x00]))).toThrow(/longer than 10 bytes/);
    // a length of 2^32 + 1 used to be read as 1
    expect(() => decodeEntry(new Uint8Array([0x22, 0x81, 0x80, 0x80, 0x80, 0x10, 0x07]))).toThrow(/varint 4294967297 is above 2\^32-1/);
    // an entry type of 2^32 + 1 used to be read as ConfChange
    expect(() => decodeEntry(new Uint8Array([0x08, 0x81, 0x80, 0x80, 0x80, 0x10]))).toThrow(ProtoDecodeError);
    // a value padded with zero continuation bytes is still exactly that value
    expect(decodeHardState(new Uint8Array([0x08, 0x85, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).toEqual({ term: 5, vote: 0n, commit: 0 });
    expect(new Reader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).uint64()).toBe(2n ** 64n - 1n);
  });

  it('member IDs 2^63 and 2^64-1 round-trip whole and stay distinct', () => {
    const ids = [2n ** 63n, 2n ** 64n - 1n, 2n ** 63n - 1n];
    for (const id of ids) {
      const m: Message = { type: 8, to: id, from: ids.find((x) => x !== id)!, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
      const back = decodeMessage(encodeMessage(m));
      expect(back.to).toBe(id);
      expect(back.from).toBe(m.from);
      expect(back.to === back.from).toBe(false);
      expect(decodeHardState(encodeHardState({ term: 1, vote: id, commit: 0 })).vote).toBe(id);
      expect(decodeConfChange(encodeConfChange({ id, type: 0, nodeId: id, context: new Uint8Array(0) }))).toMatchObject({ id, nodeId: id });
    }
    // as numbers, 2^63 and 2^63-1 would be the same value; as bigints they are not
    expect(Number(ids[0]) === Number(ids[2])).toBe(true);
    expect(new Set(ids.map((id) => decodeMessage(encodeMessage({ type: 8, to: id, from: 1n, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 })).to)).size).toBe(3);
  });
});

describe('raft stepped with decoded boundary messages', () => {
  it('never throws but StepError, and never takes a term it could not campaign past', () => {
    const rng = new Rng(4242);
    const paths = integerPaths(MessageSchema);
    let cluster = fresh();
    let stepped = 0;
    let refused = 0;
    for (const type of peerTypes) {
      for (const path of paths) {
        for (const x of BOUNDARIES) {
          // a message a peer could plausibly send to member 2, then one field at a boundary
          const v = base(MessageSchema, rng);
          Object.assign(v, { type: BigInt(type), to: 2n, from: BigInt([1, 3][rng.int(2)]!), term: BigInt(cluster.term(2n) + rng.int(2)) });
          let m: Message;
          try {
            m = decodeMessage(encodeRaw(MessageSchema, setAt(v, path, x)));
          } catch (err) {
            expect(err).toBeInstanceOf(ProtoDecodeError);
            continue;
          }
          const before = cluster.term(2n);
          try {
            cluster.node(2n).rn.step(m);
            stepped++;
          } catch (err) {
            if (!(err instanceof StepError)) throw err;
            refused++;
          }
          cluster.stabilize();
          for (const n of cluster.nodes.values()) {
            const term = n.rn.status().hardState.term;
            expect(term <= TERM_JUMP_LIMIT || term <= before + 1, `term ${term} after ${JSON.stringify(path)}=${x}`).toBe(true);
            expect(term < MAX_TERM).toBe(true);
          }
        }
      }
      // after each message type's volley the cluster still elects and commits
      cluster.heal();
      cluster.tickAll(40);
      const l = cluster.leader();
      expect(l, `a leader after the ${type} volley`).toBeDefined();
      cluster.propose(l!.id, `after ${type}`);
      cluster.stabilize();
      expect(cluster.node(1n).applied.at(-1)).toBe(`after ${type}`);
      cluster = fresh();
    }
    expect(stepped).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });
});

function fresh(): Cluster {
  const c = new Cluster([1n, 2n, 3n], { preVote: true, checkQuorum: true });
  c.stabilize();
  c.elect(1n);
  c.propose(1n, 'x');
  c.stabilize();
  return c;
}
