// A strict pass over a request's protobuf bytes before protobufjs decodes them.
//
// protobufjs trusts the wire: it reads a field by its number whatever its wire type,
// skips field number 0, and reads a 32-bit varint as if it were 5 or 10 bytes long. So a
// malformed request would be misread rather than refused. etcd's gogo-generated
// Unmarshal refuses such bytes, and grpc-go ends the call with its error. This pass
// walks the bytes against the message's descriptor with gogo's rules and gogo's words,
// and also refuses the few encodings gogo accepts but protobufjs would read differently
// (padded varints of 6 to 9 bytes where protobufjs reads 32 bits). What passes decodes
// through protobufjs exactly as gogo would decode it.

import type protobuf from 'protobufjs';

/** Message nesting allowed in a request; protobufjs is set to decode and encode this deep. */
export const MAX_NESTING_DEPTH = 1000;

/** Why a request's bytes cannot be decoded; the message is gogo's for what gogo refuses. */
export class WireError extends Error {}

const UNEXPECTED_EOF = 'unexpected EOF';
const INT_OVERFLOW = 'proto: integer overflow';
const NEGATIVE_LENGTH = 'proto: negative length found during unmarshaling';

const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  StartGroup = 3,
  EndGroup = 4,
  Fixed32 = 5,
}

/** How protobufjs reads a field's value, which decides what it can misread. */
const enum Kind {
  /** int32, uint32, sint32, enum: read through Reader.uint32 (5 or 10 bytes) */
  Varint32,
  Bool,
  /** int64 and friends: read through a 10-byte varint reader */
  Varint64,
  Fixed64,
  Fixed32,
  Bytes,
  Message,
}

interface FieldRule {
  /** the Go field name gogo's errors use */
  readonly goName: string;
  readonly wire: Wire;
  readonly kind: Kind;
  /** a repeated scalar: its values may also come packed in one length-delimited field */
  readonly packable: boolean;
  readonly message: MessageRule | undefined;
}

interface MessageRule {
  readonly name: string;
  /** by field number */
  readonly fields: Array<FieldRule | undefined>;
}

const KINDS: Record<string, Kind> = {
  int32: Kind.Varint32,
  uint32: Kind.Varint32,
  sint32: Kind.Varint32,
  bool: Kind.Bool,
  int64: Kind.Varint64,
  uint64: Kind.Varint64,
  sint64: Kind.Varint64,
  fixed64: Kind.Fixed64,
  sfixed64: Kind.Fixed64,
  double: Kind.Fixed64,
  fixed32: Kind.Fixed32,
  sfixed32: Kind.Fixed32,
  float: Kind.Fixed32,
  string: Kind.Bytes,
  bytes: Kind.Bytes,
};

const WIRE_OF: Record<Kind, Wire> = {
  [Kind.Varint32]: Wire.Varint,
  [Kind.Bool]: Wire.Varint,
  [Kind.Varint64]: Wire.Varint,
  [Kind.Fixed64]: Wire.Fixed64,
  [Kind.Fixed32]: Wire.Fixed32,
  [Kind.Bytes]: Wire.Bytes,
  [Kind.Message]: Wire.Bytes,
};

/** Returns a check for `type`'s wire bytes that throws a WireError for what gogo (or protobufjs) cannot read right. */
export function compileWireCheck(type: protobuf.Type): (bytes: Uint8Array) => void {
  const rule = messageRule(type, new Map());
  return (bytes) => {
    scanMessage(bytes, 0, bytes.length, rule, 0);
  };
}

function messageRule(type: protobuf.Type, seen: Map<protobuf.Type, MessageRule>): MessageRule {
  const known = seen.get(type);
  if (known !== undefined) return known;
  const rule: MessageRule = { name: type.name, fields: [] };
  seen.set(type, rule); // before the fields: messages nest themselves (TxnRequest, RequestOp)
  for (const field of type.fieldsArray) {
    field.resolve();
    if (field.map) throw new Error(`${type.name}.${field.name}: map fields are not checked`);
    const resolved = field.resolvedType;
    const nested = resolved !== null && 'fieldsArray' in resolved ? messageRule(resolved as protobuf.Type, seen) : undefined;
    const kind = nested !== undefined ? Kind.Message : resolved !== null ? Kind.Varint32 : KINDS[field.type];
    if (kind === undefined) throw new Error(`${type.name}.${field.name}: unknown field type ${field.type}`);
    rule.fields[field.id] = {
      goName: goCamelCase(field.name),
      wire: WIRE_OF[kind],
      kind,
      packable: field.repeated && kind !== Kind.Bytes && kind !== Kind.Message,
      message: nested,
    };
  }
  return rule;
}

/** protoc-gen-go's CamelCase: the Go name of a proto field (range_end → RangeEnd, peerURLs → PeerURLs). */
export function goCamelCase(name: string): string {
  let out = '';
  let i = 0;
  if (name.startsWith('_')) {
    out = 'X';
    i = 1;
  }
  const lower = (c: string | undefined): boolean => c !== undefined && c >= 'a' && c <= 'z';
  for (; i < name.length; i++) {
    const c = name[i]!;
    if (c === '_' && lower(name[i + 1])) continue;
    if (c >= '0' && c <= '9') {
      out += c;
      continue;
    }
    out += lower(c) ? c.toUpperCase() : c;
    while (lower(name[i + 1])) out += name[++i];
  }
  return out;
}

// The last varint read: its low and high 32 bits and its length in bytes. Module
// state rather than an object per varint: this runs on every request.
let lo = 0;
let hi = 0;
let width = 0;

/** Reads a varint at `pos` bounded by `end`; returns the position after it. */
function readVarint(buf: Uint8Array, pos: number, end: number): number {
  if (pos >= end) throw new WireError(UNEXPECTED_EOF);
  const first = buf[pos]!;
  if (first < 0x80) {
    lo = first;
    hi = 0;
    width = 1;
    return pos + 1;
  }
  let l = 0;
  let h = 0;
  for (let i = 0; ; i++) {
    if (i === 10) throw new WireError(INT_OVERFLOW); // gogo: shift >= 64
    if (pos >= end) throw new WireError(UNEXPECTED_EOF);
    const b = buf[pos++]!;
    const bits = b & 0x7f;
    if (i < 4) l |= bits << (7 * i);
    else if (i === 4) {
      l |= bits << 28; // low 4 bits land in the low word, the rest in the high one
      h = bits >>> 4;
    } else h |= bits << (7 * i - 32);
    if (b < 0x80) {
      lo = l >>> 0;
      hi = h >>> 0;
      width = i + 1;
      return pos;
    }
  }
}

/** protobufjs reads 32-bit varints (tags, lengths, int32, enums, bools) as 1-5 or exactly 10 bytes. */
function readableAs32(): boolean {
  return width <= 5 || width === 10;
}

function nonCanonical(msg: MessageRule, what: string): WireError {
  return new WireError(`proto: ${msg.name}: non-canonical varint for ${what}`);
}

function scanMessage(buf: Uint8Array, pos: number, end: number, msg: MessageRule, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) throw new WireError(`proto: ${msg.name}: nested deeper than ${MAX_NESTING_DEPTH} messages`);
  while (pos < end) {
    pos = readVarint(buf, pos, end);
    const wireType = lo & 7;
    // gogo: fieldNum := int32(wire >> 3), so bits 3..34 of the tag
    const fieldNum = ((hi << 29) | (lo >>> 3)) | 0;
    if (wireType === Wire.EndGroup) throw new WireError(`proto: ${msg.name}: wiretype end group for non-group`);
    if (fieldNum <= 0) {
      const wire = (BigInt(hi) << 32n) | BigInt(lo);
      throw new WireError(`proto: ${msg.name}: illegal tag ${fieldNum} (wire type ${wire})`);
    }
    // protobufjs takes the field number from the low 32 bits only
    if (!readableAs32() || (hi & 7) !== 0) throw nonCanonical(msg, `the tag of field ${fieldNum}`);
    const field = msg.fields[fieldNum];
    if (field === undefined) {
      pos = skipField(buf, pos, end, wireType, msg, depth);
      continue;
    }
    if (wireType === field.wire) {
      pos = scanValue(buf, pos, end, field, msg, depth);
    } else if (wireType === Wire.Bytes && field.packable) {
      const stop = lengthDelimited(buf, pos, end, msg, field.goName);
      pos = stop - lo;
      while (pos < stop) pos = scanValue(buf, pos, stop, field, msg, depth);
    } else {
      throw new WireError(`proto: wrong wireType = ${wireType} for field ${field.goName}`);
    }
  }
}

/** Checks one value of `field` at `pos`; returns the position after it. */
function scanValue(buf: Uint8Array, pos: number, end: number, field: FieldRule, msg: MessageRule, depth: number): number {
  switch (field.kind) {
    case Kind.Varint64:
      return readVarint(buf, pos, end);
    case Kind.Varint32:
    case Kind.Bool: {
      pos = readVarint(buf, pos, end);
      // gogo's bool is "any of the 64 bits set"; protobufjs looks at the low 32
      if (!readableAs32() || (field.kind === Kind.Bool && lo === 0 && hi !== 0)) throw nonCanonical(msg, `field ${field.goName}`);
      return pos;
    }
    case Kind.Fixed64:
      return fixed(pos, 8, end);
    case Kind.Fixed32:
      return fixed(pos, 4, end);
    case Kind.Bytes:
      return lengthDelimited(buf, pos, end, msg, field.goName);
    case Kind.Message: {
      const stop = lengthDelimited(buf, pos, end, msg, field.goName);
      scanMessage(buf, stop - lo, stop, field.message!, depth + 1);
      return stop;
    }
  }
}

function fixed(pos: number, size: number, end: number): number {
  if (pos + size > end) throw new WireError(UNEXPECTED_EOF);
  return pos + size;
}

/** Reads a length prefix; returns where the value ends (the value starts `lo` bytes before). */
function lengthDelimited(buf: Uint8Array, pos: number, end: number, msg: MessageRule, what: string): number {
  pos = readVarint(buf, pos, end);
  // int(length) in Go: a tenth byte with its low bit set makes it negative
  if (width === 10 && (hi & 0x8000_0000) !== 0) throw new WireError(NEGATIVE_LENGTH);
  if (hi !== 0 || pos + lo > end) throw new WireError(UNEXPECTED_EOF);
  if (!readableAs32()) throw nonCanonical(msg, `the length of ${what}`);
  return pos + lo;
}

/** Skips a field this message does not have, as gogo's skip function does (groups included). */
function skipField(buf: Uint8Array, pos: number, end: number, wireType: number, msg: MessageRule, depth: number): number {
  switch (wireType) {
    case Wire.Varint:
      return readVarint(buf, pos, end);
    case Wire.Fixed64:
      return fixed(pos, 8, end);
    case Wire.Fixed32:
      return fixed(pos, 4, end);
    case Wire.Bytes:
      return lengthDelimited(buf, pos, end, msg, 'an unknown field');
    case Wire.StartGroup: {
      if (depth >= MAX_NESTING_DEPTH) throw new WireError(`proto: ${msg.name}: nested deeper than ${MAX_NESTING_DEPTH} messages`);
      for (;;) {
        pos = readVarint(buf, pos, end);
        if (!readableAs32()) throw nonCanonical(msg, 'a tag in a group');
        const inner = lo & 7;
        if (inner === Wire.EndGroup) return pos;
        pos = skipField(buf, pos, end, inner, msg, depth + 1);
      }
    }
    default:
      throw new WireError(`proto: illegal wireType ${wireType}`);
  }
}
