// etcd's gateway marshals with golang/protobuf's jsonpb {OrigName: true}: proto field names,
// 64-bit integers as decimal strings, bytes as padded base64, enums by name, zero values
// and empty lists left out. Requests are read by jsonpb's Unmarshal, which also takes the
// lowerCamel names, numbers or strings for integers, names or numbers for enums, ignores
// unknown fields, and fails with encoding/json's messages, reproduced here word for word.

import Long from 'long';
import protobuf from 'protobufjs/light.js';
import { Base64Error, decodeBase64Std } from './base64.js';
import { type JsonNode, JsonSyntaxError, parseJson } from './json.js';

/** A request the gateway cannot turn into a message; the message is Go's. */
export class RequestDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestDecodeError';
  }
}

/** protoc's JSON name: underscores dropped, the letter after each upper-cased. */
export function lowerCamelName(name: string): string {
  let out = '';
  let upper = false;
  for (const ch of name) {
    if (ch === '_') upper = true;
    else {
      out += upper ? ch.toUpperCase() : ch;
      upper = false;
    }
  }
  return out;
}

const jsonNames = new WeakMap<protobuf.Field, string>();

function jsonNameOf(field: protobuf.Field): string {
  let name = jsonNames.get(field);
  if (name === undefined) {
    name = lowerCamelName(field.name);
    jsonNames.set(field, name);
  }
  return name;
}

/** The Go type name protoc-gen-go gives an enum: package, then nested names joined by '_'. */
export function goEnumName(e: protobuf.Enum): string {
  const names = [e.name];
  let p = e.parent;
  while (p instanceof protobuf.Type) {
    names.unshift(p.name);
    p = p.parent;
  }
  const pkg = p && p.fullName !== '' ? p.fullName.split('.').pop() : '';
  return pkg ? `${pkg}.${names.join('_')}` : names.join('_');
}

// ---- JSON → message ----

/** encoding/json's complaint; a node's kind is its word for the JSON value ("object", "bool"...). */
function typeError(n: JsonNode, goType: string): RequestDecodeError {
  return new RequestDecodeError(`json: cannot unmarshal ${n.kind} into Go value of type ${goType}`);
}

interface IntKind {
  goType: string;
  min: bigint;
  max: bigint;
  long: boolean;
  unsigned: boolean;
}

const INT_KINDS: Record<string, IntKind> = {};
for (const [names, goType, bits, unsigned] of [
  [['int64', 'sint64', 'sfixed64'], 'int64', 64, false],
  [['uint64', 'fixed64'], 'uint64', 64, true],
  [['int32', 'sint32', 'sfixed32'], 'int32', 32, false],
  [['uint32', 'fixed32'], 'uint32', 32, true],
] as const) {
  const min = unsigned ? 0n : -(1n << BigInt(bits - 1));
  const max = unsigned ? (1n << BigInt(bits)) - 1n : (1n << BigInt(bits - 1)) - 1n;
  for (const n of names) INT_KINDS[n] = { goType, min, max, long: bits === 64, unsigned };
}

const BYTE: IntKind = { goType: 'uint8', min: 0n, max: 255n, long: false, unsigned: true };

/**
 * An integer as jsonpb reads it: quotes around it are dropped and the rest read by
 * json.Unmarshal, so `"12"`, `12` and `" 12 "` are 12, `"abc"` is a syntax error, and
 * anything but a base-10 integer in range is refused. Undefined for null.
 */
function decodeInt(n: JsonNode, kind: IntKind, goType: string): Long | number | undefined {
  let v = n;
  if (v.kind === 'string') {
    try {
      v = parseJson(v.raw);
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw new RequestDecodeError(err.message);
      throw err;
    }
  }
  return intFromJson(v, kind, goType);
}

/** encoding/json's integer decoding: a base-10 literal in range (strconv.ParseInt/ParseUint). */
function intFromJson(v: JsonNode, kind: IntKind, goType: string): Long | number | undefined {
  if (v.kind === 'null') return undefined;
  if (v.kind !== 'number') throw typeError(v, goType);
  const raw = v.raw;
  const ok = /^-?[0-9]+$/.test(raw) && BigInt(raw) >= kind.min && BigInt(raw) <= kind.max;
  // strconv.ParseUint has no sign, not even "-0"
  if (!ok || (kind.unsigned && raw.startsWith('-'))) {
    throw new RequestDecodeError(`json: cannot unmarshal number ${raw} into Go value of type ${goType}`);
  }
  return kind.long ? Long.fromString(raw, kind.unsigned) : Number(raw);
}

function decodeScalar(field: protobuf.Field, n: JsonNode): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return decodeObject(t, n);
  if (t instanceof protobuf.Enum) {
    if (n.kind === 'string') {
      // jsonpb looks the text up as written, escapes and all. (protobufjs also maps
      // numbers back to names in `values`, hence the type check.)
      const value: unknown = t.values[n.raw];
      if (typeof value !== 'number') throw new RequestDecodeError(`unknown value ${JSON.stringify(n.raw)} for enum ${goEnumName(t)}`);
      return value;
    }
    return decodeInt(n, INT_KINDS['int32']!, goEnumName(t));
  }
  const int = INT_KINDS[field.type];
  if (int) return decodeInt(n, int, int.goType);
  switch (field.type) {
    case 'bytes':
      // encoding/json also takes a []byte as a list of byte values.
      if (n.kind === 'array') return Buffer.from(n.items.map((item) => (intFromJson(item, BYTE, 'uint8') as number | undefined) ?? 0));
      if (n.kind !== 'string') throw typeError(n, '[]uint8');
      try {
        return decodeBase64Std(n.value);
      } catch (err) {
        if (err instanceof Base64Error) throw new RequestDecodeError(err.message);
        throw err;
      }
    case 'string':
      if (n.kind !== 'string') throw typeError(n, 'string');
      return n.value;
    case 'bool':
      if (n.kind !== 'bool') throw typeError(n, 'bool');
      return n.value;
    default:
      // etcd's API has no floating point or map fields.
      throw new RequestDecodeError(`gateway: field ${field.fullName} has unsupported type ${field.type}`);
  }
}

function decodeObject(type: protobuf.Type, n: JsonNode): Record<string, unknown> {
  if (n.kind === 'null') return {};
  if (n.kind !== 'object') throw typeError(n, 'map[string]json.RawMessage');
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    // The proto name wins over the lowerCamel one; null leaves the field unset.
    const v = n.fields.get(field.name) ?? n.fields.get(jsonNameOf(field));
    if (v === undefined || v.kind === 'null') continue;
    if (field.repeated) {
      if (v.kind !== 'array') throw typeError(v, '[]json.RawMessage');
      out[field.name] = v.items.map((item) => (item.kind === 'null' ? zeroOf(field) : decodeScalar(field, item)));
    } else {
      const value = decodeScalar(field, v);
      if (value !== undefined) out[field.name] = value;
    }
  }
  return out;
}

/** What a null list element becomes: the element type's zero value. */
function zeroOf(field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Type) return {};
  if (field.type === 'bytes') return Buffer.alloc(0);
  if (field.type === 'string') return '';
  if (field.type === 'bool') return false;
  return 0;
}

/**
 * A request message from its JSON (undefined = an empty body), as a plain object that
 * protobufjs encodes: Long for 64-bit integers, Buffer for bytes, numbers for enums.
 * Throws RequestDecodeError with jsonpb's message.
 */
export function requestFromJson(type: protobuf.Type, node: JsonNode | undefined): Record<string, unknown> {
  return node === undefined ? {} : decodeObject(type, node);
}

// ---- message → JSON ----

/**
 * Go's encoding/json string: like JSON.stringify, but HTML-safe (<, >, & escaped), with
 * U+2028/U+2029 escaped and \b, \f written as \u escapes.
 */
export function goJsonString(s: string): string {
  return goJsonEscape(JSON.stringify(s));
}

/** JSON.stringify's output (of any value) with its strings escaped as Go's encoding/json escapes them. */
export function goJsonEscape(json: string): string {
  if (!/[<>&\u2028\u2029]|\\[bf]/.test(json)) return json;
  return json.replace(/[<>&\u2028\u2029]|\\\\|\\b|\\f/g, (m) => {
    switch (m) {
      case '\\\\':
        return m;
      case '\\b':
        return '\\u0008';
      case '\\f':
        return '\\u000c';
      default:
        return `\\u${m.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === 0 || v === false || v === '') return true;
  if (Long.isLong(v)) return (v as Long).isZero();
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length === 0;
  return false;
}

function renderScalar(field: protobuf.Field, v: unknown): string {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return renderMessage(t, v as Record<string, unknown>);
  if (t instanceof protobuf.Enum) {
    const name = t.valuesById[v as number];
    return name !== undefined ? goJsonString(name) : String(v);
  }
  if (field.type === 'bytes') return `"${Buffer.from(v as Uint8Array).toString('base64')}"`;
  if (field.type === 'string') return goJsonString(v as string);
  if (field.type === 'bool') return v ? 'true' : 'false';
  if (INT_KINDS[field.type]?.long) return `"${String(v)}"`;
  return String(v);
}

/**
 * jsonpb's rendering of a decoded message: fields in declaration order; a field counts as
 * set when it came off the wire (an own property); zero scalars and empty lists are left
 * out, except a oneof member, which is shown whatever its value, as Go shows a set oneof.
 */
export function renderMessage(type: protobuf.Type, msg: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const field of type.fieldsArray) {
    if (!hasOwn(msg, field.name)) continue;
    const v = msg[field.name];
    if (v === null || v === undefined) continue;
    if (field.repeated) {
      const list = v as unknown[];
      if (list.length === 0) continue;
      parts.push(`${goJsonString(field.name)}:[${list.map((item) => renderScalar(field, item)).join(',')}]`);
      continue;
    }
    const isMessage = field.resolvedType instanceof protobuf.Type;
    if (!isMessage && field.partOf === null && isZero(v)) continue;
    parts.push(`${goJsonString(field.name)}:${renderScalar(field, v)}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * A handler's response as etcd's gateway shows it: encoded and decoded as a gRPC client
 * would receive it, then rendered by jsonpb's rules.
 */
export function responseToJson(type: protobuf.Type, resp: object): string {
  const decoded = type.decode(type.encode(resp).finish()) as unknown as Record<string, unknown>;
  return renderMessage(type, decoded);
}
