// grpc-go clients dialled with a URL endpoint (etcdctl --endpoints http://IP:2379, as every
// deployment guide writes it) open each connection they make to one endpoint with the target
// "passthrough:///http://IP:2379" and send `:authority: http://IP:2379`. Go's HTTP/2 server,
// and so etcd, accepts that; Node's (nghttp2) refuses any authority holding "/" with
// RST_STREAM PROTOCOL_ERROR before the gRPC server sees the request, and has no switch for it.
//
// So the client's frames are read before Node's session reads them. Until the first request
// the frames are checked (see first-request.ts). The first request's header block is held
// until it is whole: when its `:authority` is fine it is passed on as it came and from then
// on every byte passes untouched, unparsed (a grpc-go channel uses one authority for all its
// calls), and the listener gives Node's session the bare socket (grpc-connection.ts). When it
// has a scheme, the connection goes to the session through a shim (AuthorityFixingConnection)
// and every header block from then on is rewritten: the HPACK state of the client's encoder is
// followed with a decoder of our own, the scheme is cut from `:authority`, and each block is
// encoded again without the dynamic table, so Node's HPACK decoder never needs the client's
// table. Everything the server sends passes through untouched.

import { Duplex } from 'node:stream';
import type net from 'node:net';
import { FirstRequestGuard } from './first-request.js';
import {
  CLIENT_PREFACE,
  ConnectionError,
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameType,
  frameHeader,
  frameTypeName,
  NODE_HEADER_TABLE_SIZE,
  NODE_MAX_FRAME_SIZE,
} from './h2.js';

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/**
 * Far above what Node accepts for one header list (maxHeaderListSize 64 KiB), so that Node
 * still answers ordinary oversized headers itself; only a block that would make us buffer or
 * expand without bound (a few bytes of HPACK can reference a 4 KiB table entry over and over)
 * ends the connection here.
 */
const MAX_HEADER_LIST_BYTES = 1 << 20;

/** The client's frames could not be followed: the connection has to go. */
export class AuthorityRewriteError extends ConnectionError {
  override name = 'AuthorityRewriteError';
}

/** Whatever went wrong following a client's frames, it is that one connection's problem, not the gRPC server's. */
export function asConnectionError(err: unknown): ConnectionError {
  return err instanceof ConnectionError ? err : new ConnectionError(String(err));
}

/** A header block the HPACK decoder cannot read (RFC 9113 §4.3: COMPRESSION_ERROR). */
class HpackError extends AuthorityRewriteError {
  constructor(message: string) {
    super(message, ErrorCode.COMPRESSION_ERROR);
  }
}

/**
 * The authority the gRPC server can be given for one a client sent: a value holding "/" loses its
 * "scheme://" and anything from the next "/" on ("http://127.0.0.1:2379/" → "127.0.0.1:2379").
 * Values without "/" are returned as they are.
 */
export function stripAuthorityScheme(authority: string): string {
  if (!authority.includes('/')) return authority;
  const schemeEnd = authority.indexOf('://');
  const rest = schemeEnd >= 0 ? authority.slice(schemeEnd + 3) : authority;
  const slash = rest.indexOf('/');
  return slash >= 0 ? rest.slice(0, slash) : rest;
}

// ---------------------------------------------------------------------------------------
// HPACK (RFC 7541)

/** One header field; names and values are byte strings held as latin1. */
export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "never indexed" (sensitive): an intermediary must keep it so. */
  sensitive: boolean;
}

/** RFC 7541 Appendix A. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** First static index of each name, and the index of each exact (name, value) pair. */
const STATIC_NAME_INDEX = new Map<string, number>();
const STATIC_FIELD_INDEX = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
  let byValue = STATIC_FIELD_INDEX.get(name);
  if (byValue === undefined) STATIC_FIELD_INDEX.set(name, (byValue = new Map()));
  byValue.set(value, i + 1);
});

/**
 * Code lengths of RFC 7541 Appendix B for symbols 0..255 and EOS (256). The code is
 * canonical (codes of one length are consecutive, in symbol order, each length's first code
 * following the previous length's last), so the lengths are all a decoder needs.
 */
const HUFFMAN_CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const HUFFMAN_EOS = 256;
const HUFFMAN_MAX_BITS = 30;

/** Per code length: its first code, how many codes it has, where its symbols start. */
const huffman = (() => {
  const count = new Array<number>(HUFFMAN_MAX_BITS + 1).fill(0);
  for (const len of HUFFMAN_CODE_LENGTHS) count[len]!++;
  const symbols = HUFFMAN_CODE_LENGTHS.map((len, sym) => ({ len, sym }))
    .sort((a, b) => a.len - b.len || a.sym - b.sym)
    .map((e) => e.sym);
  const firstCode = new Array<number>(HUFFMAN_MAX_BITS + 1).fill(0);
  const offset = new Array<number>(HUFFMAN_MAX_BITS + 1).fill(0);
  let code = 0;
  let seen = 0;
  for (let len = 1; len <= HUFFMAN_MAX_BITS; len++) {
    firstCode[len] = code;
    offset[len] = seen;
    code = (code + count[len]!) * 2;
    seen += count[len]!;
  }
  return { count, firstCode, offset, symbols };
})();

function huffmanDecode(src: Buffer): string {
  // Every symbol takes at least 5 bits.
  const out = Buffer.allocUnsafe(Math.floor((src.length * 8) / 5));
  let outLen = 0;
  let code = 0;
  let len = 0;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const idx = code - huffman.firstCode[len]!;
      if (idx >= 0 && idx < huffman.count[len]!) {
        const sym = huffman.symbols[huffman.offset[len]! + idx]!;
        if (sym === HUFFMAN_EOS) throw new HpackError('HPACK: Huffman string contains EOS');
        out[outLen++] = sym;
        code = 0;
        len = 0;
      } else if (len === HUFFMAN_MAX_BITS) {
        throw new HpackError('HPACK: invalid Huffman code');
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('HPACK: invalid Huffman padding');
  return out.toString('latin1', 0, outLen);
}

/**
 * Follows one connection's header blocks as the peer's encoder wrote them (RFC 7541 §3),
 * keeping the dynamic table in step.
 */
export class HpackDecoder {
  /** Newest entry first, as the table is indexed. */
  private readonly entries: Array<{ name: string; value: string }> = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize` is the SETTINGS_HEADER_TABLE_SIZE this side advertised. */
  constructor(private readonly maxTableSize = NODE_HEADER_TABLE_SIZE) {
    this.maxSize = maxTableSize;
  }

  /** Decodes one complete header block; throws AuthorityRewriteError if it is malformed. */
  decode(block: Buffer, maxListBytes = MAX_HEADER_LIST_BYTES): HeaderField[] {
    const fields: HeaderField[] = [];
    let listBytes = 0;
    let pos = 0;
    const readInt = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      for (let shift = 0; ; shift += 7) {
        if (pos >= block.length) throw new HpackError('HPACK: truncated integer');
        if (shift > 21) throw new HpackError('HPACK: integer too large');
        const b = block[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (pos >= block.length) throw new HpackError('HPACK: truncated string');
      const huffmanCoded = (block[pos]! & 0x80) !== 0;
      const len = readInt(7);
      if (pos + len > block.length) throw new HpackError('HPACK: truncated string');
      const raw = block.subarray(pos, pos + len);
      pos += len;
      return huffmanCoded ? huffmanDecode(raw) : raw.toString('latin1');
    };
    const emit = (name: string, value: string, sensitive: boolean): void => {
      listBytes += name.length + value.length + 32;
      if (listBytes > maxListBytes) throw new HpackError('HPACK: header list too large');
      fields.push({ name, value, sensitive });
    };

    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const { name, value } = this.lookup(readInt(7));
        emit(name, value, false);
      } else if (b & 0x40) {
        const index = readInt(6);
        const name = index === 0 ? readString() : this.lookup(index).name;
        const value = readString();
        this.insert(name, value);
        emit(name, value, false);
      } else if (b & 0x20) {
        // Size updates may only open a block (§4.2).
        if (fields.length > 0) throw new HpackError('HPACK: table size update after a header field');
        const size = readInt(5);
        if (size > this.maxTableSize) throw new HpackError(`HPACK: table size ${size} above the ${this.maxTableSize} allowed`);
        this.maxSize = size;
        this.evict(0);
      } else {
        const sensitive = (b & 0x10) !== 0;
        const index = readInt(4);
        const name = index === 0 ? readString() : this.lookup(index).name;
        emit(name, readString(), sensitive);
      }
    }
    return fields;
  }

  private lookup(index: number): { name: string; value: string } {
    if (index >= 1 && index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1]!;
      return { name, value };
    }
    const entry = this.entries[index - STATIC_TABLE.length - 1];
    if (entry === undefined) throw new HpackError(`HPACK: index ${index} is not in the table`);
    return entry;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + 32;
    // An entry larger than the table empties it and is not added (§4.4).
    this.evict(Math.min(entrySize, this.maxSize + 1));
    if (entrySize <= this.maxSize) {
      this.entries.unshift({ name, value });
      this.size += entrySize;
    }
  }

  /** Drops the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.maxSize) {
      const old = this.entries.pop()!;
      this.size -= old.name.length + old.value.length + 32;
    }
  }
}

/**
 * Encodes a header block that leaves the peer's dynamic table alone: static-table fields and
 * names by index, everything else as literals without indexing (or never indexed, when the
 * client marked the field sensitive), no Huffman coding.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  // Upper bound: per field a 6-byte name index, two 6-byte lengths, and the strings.
  let bound = 0;
  for (const f of fields) bound += 18 + f.name.length + f.value.length;
  const out = Buffer.allocUnsafe(bound);
  let pos = 0;
  const writeInt = (first: number, prefixBits: number, value: number): void => {
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      out[pos++] = first | value;
      return;
    }
    out[pos++] = first | mask;
    value -= mask;
    while (value >= 0x80) {
      out[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[pos++] = value;
  };
  const writeString = (s: string): void => {
    writeInt(0x00, 7, s.length);
    pos += out.write(s, pos, 'latin1');
  };
  for (const { name, value, sensitive } of fields) {
    const full = sensitive ? undefined : STATIC_FIELD_INDEX.get(name)?.get(value);
    if (full !== undefined) {
      writeInt(0x80, 7, full);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    writeInt(sensitive ? 0x10 : 0x00, 4, nameIndex);
    if (nameIndex === 0) writeString(name);
    writeString(value);
  }
  return out.subarray(0, pos);
}

// ---------------------------------------------------------------------------------------
// HTTP/2 frames (RFC 9113 §4, §6)

/** A HEADERS frame and its CONTINUATION frames, up to END_HEADERS. */
interface PendingHeaders {
  streamId: number;
  endStream: boolean;
  /** The 5 bytes of stream dependency and weight, when the HEADERS frame had PRIORITY. */
  priority: Buffer | undefined;
  fragments: Buffer[];
  bytes: number;
}

/**
 * What the rewriter does with the client's bytes: before the first request's header block
 * is whole it checks every frame and holds that block back as it came; then it either
 * passes everything on untouched or rewrites every header block.
 */
type Mode =
  | { kind: 'first-request'; guard: FirstRequestGuard; heldFrames: Buffer[] }
  | { kind: 'rewrite' }
  | { kind: 'pass' };

export interface RewriterOptions {
  /** The SETTINGS_MAX_FRAME_SIZE the server advertised. */
  maxFrameSize?: number;
  /** The SETTINGS_HEADER_TABLE_SIZE the server advertised. */
  headerTableSize?: number;
  /** How many bytes of frames a client may send before its first request. */
  maxBytesBeforeFirstRequest?: number;
  /**
   * The listener sent the client a SETTINGS frame of its own before the gRPC server's session
   * took the connection (grpc-go sends no request before the server's SETTINGS): the client's
   * first SETTINGS ACK answers that frame and is cut from the stream, since nghttp2 refuses an
   * ACK of settings it never sent.
   */
  cutSettingsAck?: boolean;
}

/**
 * Mends a client's HTTP/2 byte stream (from its first byte, the preface) for the gRPC server,
 * in constant work per byte: see the comment at the top of this file. Bytes that are passed
 * on go as slices of the input chunks wherever the frames allow.
 */
export class AuthorityRewriter {
  private readonly decoder: HpackDecoder;
  private readonly maxFrameSize: number;
  private mode: Mode;
  /** Preface bytes still to check. */
  private prefaceLeft = CLIENT_PREFACE.length;
  /** A frame header split across chunks. */
  private headerBuf = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** Payload bytes of the current frame not read yet. */
  private payloadLeft = 0;
  /** The current frame when it is HEADERS or CONTINUATION, whose payload is held back. */
  private current: { type: number; flags: number; streamId: number; length: number; parts: Buffer[] } | undefined;
  private pending: PendingHeaders | undefined;
  /** The preface was wrong: not HTTP/2, and left for nghttp2 to say so. */
  private notHttp2 = false;
  /** The client's ACK of the listener's SETTINGS is still to come, and to be cut. */
  private settingsAckToCut: boolean;

  constructor(opts: RewriterOptions = {}) {
    this.settingsAckToCut = opts.cutSettingsAck ?? false;
    this.maxFrameSize = opts.maxFrameSize ?? NODE_MAX_FRAME_SIZE;
    this.decoder = new HpackDecoder(opts.headerTableSize ?? NODE_HEADER_TABLE_SIZE);
    this.mode = { kind: 'first-request', guard: new FirstRequestGuard(opts.maxBytesBeforeFirstRequest), heldFrames: [] };
  }

  /**
   * The client has completed its side of the handshake (preface and SETTINGS), or sent its
   * first request, after which the connection may stay idle as long as it likes.
   */
  get handshakeDone(): boolean {
    return this.mode.kind !== 'first-request' || this.mode.guard.handshakeDone;
  }

  /**
   * The first request went untouched and the ACK to cut (if any) is cut: every byte from
   * here on passes as it is, so the connection needs this rewriter no more.
   */
  get passingAll(): boolean {
    return this.mode.kind === 'pass' && !this.settingsAckToCut;
  }

  /** The first request's authority had a scheme: every header block is rewritten. */
  get rewriting(): boolean {
    return this.mode.kind === 'rewrite';
  }

  /** A PING came before the first request: only the gRPC server's session answers it. */
  get pingReceived(): boolean {
    return this.mode.kind === 'first-request' && this.mode.guard.pingReceived;
  }

  /** The bytes to give the gRPC server for `chunk`; throws a ConnectionError on what must end the connection. */
  transform(chunk: Buffer): Buffer[] {
    if (this.passingAll || this.notHttp2) return [chunk];
    const out: Buffer[] = [];
    let pos = 0;
    // Start of the run of bytes to be forwarded as one slice of `chunk`.
    let runStart = 0;
    const flushRun = (end: number): void => {
      if (end > runStart) out.push(runStart === 0 && end === chunk.length ? chunk : chunk.subarray(runStart, end));
    };

    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      const offset = CLIENT_PREFACE.length - this.prefaceLeft;
      if (!chunk.subarray(0, n).equals(CLIENT_PREFACE.subarray(offset, offset + n))) {
        this.notHttp2 = true;
        return [chunk];
      }
      this.prefaceLeft -= n;
      pos = n;
    }

    while (pos < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - pos);
        const bytes = chunk.subarray(pos, pos + n);
        pos += n;
        this.payloadLeft -= n;
        const frame = this.current;
        if (frame === undefined) {
          // Passed through in the current run.
          if (this.mode.kind === 'first-request') this.mode.guard.payload(bytes);
          continue;
        }
        // Header block bytes are held back, never part of a run.
        frame.parts.push(bytes);
        runStart = pos;
        if (this.payloadLeft === 0) {
          this.current = undefined;
          out.push(...this.headerFrame(frame.type, frame.flags, frame.streamId, Buffer.concat(frame.parts, frame.length)));
          if (this.passingAll) break;
        }
        continue;
      }

      // A frame header: whole in this chunk, or finished from earlier bytes.
      let header: Buffer;
      const headerStart = pos;
      if (this.headerHave === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
        header = chunk.subarray(pos, pos + FRAME_HEADER_BYTES);
        pos += FRAME_HEADER_BYTES;
      } else {
        const n = Math.min(FRAME_HEADER_BYTES - this.headerHave, chunk.length - pos);
        chunk.copy(this.headerBuf, this.headerHave, pos, pos + n);
        this.headerHave += n;
        pos += n;
        if (this.headerHave < FRAME_HEADER_BYTES) {
          // Bytes of a header held back here are forwarded once the type is known.
          flushRun(headerStart);
          runStart = pos;
          break;
        }
        header = this.headerBuf;
        this.headerHave = 0;
      }
      const length = header.readUIntBE(0, 3);
      const type = header[3]!;
      const flags = header[4]!;
      const streamId = header.readUInt32BE(5) & 0x7fffffff;

      if (this.mode.kind === 'first-request' && !this.mode.guard.done) this.mode.guard.frameHeader(length, type, flags, streamId);
      if (this.pending !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.pending.streamId)) {
        throw new AuthorityRewriteError(`HTTP/2: ${frameTypeName(type)} in the middle of stream ${this.pending.streamId}'s header block`);
      }
      // Header blocks are held until the first request is decided, and rewritten after a
      // first request that needed it; after a clean one they pass like any frame.
      if ((type === FrameType.HEADERS || type === FrameType.CONTINUATION) && this.mode.kind !== 'pass') {
        if (length > this.maxFrameSize) {
          throw new AuthorityRewriteError(`HTTP/2: frame of ${length} bytes above the ${this.maxFrameSize} allowed`, ErrorCode.FRAME_SIZE_ERROR);
        }
        flushRun(headerStart);
        runStart = pos;
        this.current = { type, flags, streamId, length, parts: [] };
        this.payloadLeft = length;
        if (length === 0) {
          this.current = undefined;
          out.push(...this.headerFrame(type, flags, streamId, Buffer.alloc(0)));
          if (this.passingAll) break;
        }
        continue;
      }
      if (this.settingsAckToCut && type === FrameType.SETTINGS && flags & FLAG_ACK && length === 0) {
        // The ACK of the listener's SETTINGS: its header (whole or in pieces) is left out.
        this.settingsAckToCut = false;
        flushRun(headerStart);
        runStart = pos;
        if (this.passingAll) break;
        continue;
      }
      // Any other frame is passed on: a header that came in pieces is sent as one copy, the
      // payload stays in the current run of `chunk`.
      if (header === this.headerBuf) {
        flushRun(headerStart);
        out.push(Buffer.from(header));
        runStart = pos;
      }
      this.payloadLeft = length;
    }
    // Everything after the first request's header block, when that went untouched, is passed on as it is.
    flushRun(chunk.length);
    return out;
  }

  /** Takes one complete HEADERS or CONTINUATION frame; returns the frames to send for it. */
  private headerFrame(type: number, flags: number, streamId: number, payload: Buffer): Buffer[] {
    if (this.mode.kind === 'first-request') this.mode.heldFrames.push(frameHeader(payload.length, type, flags, streamId), payload);
    if (type === FrameType.HEADERS) {
      if (streamId === 0) throw new AuthorityRewriteError('HTTP/2: HEADERS on stream 0');
      let start = 0;
      let end = payload.length;
      if (flags & FLAG_PADDED) {
        if (payload.length < 1) throw new AuthorityRewriteError('HTTP/2: HEADERS too short for its padding');
        end -= payload[0]!;
        start = 1;
      }
      let priority: Buffer | undefined;
      if (flags & FLAG_PRIORITY) {
        priority = Buffer.from(payload.subarray(start, start + 5));
        start += 5;
      }
      if (end < start) throw new AuthorityRewriteError('HTTP/2: HEADERS padding longer than the frame');
      this.pending = { streamId, endStream: (flags & FLAG_END_STREAM) !== 0, priority, fragments: [payload.subarray(start, end)], bytes: end - start };
    } else {
      if (this.pending === undefined) throw new AuthorityRewriteError(`HTTP/2: CONTINUATION on stream ${streamId} without HEADERS`);
      this.pending.fragments.push(payload);
      this.pending.bytes += payload.length;
    }
    if (this.pending.bytes > MAX_HEADER_LIST_BYTES) throw new AuthorityRewriteError('HTTP/2: header block too large');
    if ((flags & FLAG_END_HEADERS) === 0) return [];
    const block = this.pending;
    this.pending = undefined;
    const fields = this.decoder.decode(Buffer.concat(block.fragments, block.bytes));
    let mended = false;
    for (const field of fields) {
      if (field.name !== ':authority') continue;
      const stripped = stripAuthorityScheme(field.value);
      mended ||= stripped !== field.value;
      field.value = stripped;
    }
    if (this.mode.kind === 'first-request') {
      const held = this.mode.heldFrames;
      if (!mended) {
        // Node decodes the block as the client encoded it, so its HPACK table stays the
        // client's, and nothing after needs to be looked at.
        this.mode = { kind: 'pass' };
        return held;
      }
      this.mode = { kind: 'rewrite' };
    }
    return this.encodeFrames(block, encodeHeaderBlock(fields));
  }

  /** HEADERS then as many CONTINUATION frames as the block needs, none above maxFrameSize. */
  private encodeFrames(block: PendingHeaders, encoded: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    const prio = block.priority;
    let pos = 0;
    let first = true;
    do {
      const room = this.maxFrameSize - (first && prio !== undefined ? prio.length : 0);
      const piece = encoded.subarray(pos, pos + room);
      pos += piece.length;
      const last = pos >= encoded.length;
      let flags = last ? FLAG_END_HEADERS : 0;
      if (first) {
        if (block.endStream) flags |= FLAG_END_STREAM;
        if (prio !== undefined) flags |= FLAG_PRIORITY;
        const len = piece.length + (prio?.length ?? 0);
        frames.push(frameHeader(len, FrameType.HEADERS, flags, block.streamId));
        if (prio !== undefined) frames.push(prio);
      } else {
        frames.push(frameHeader(piece.length, FrameType.CONTINUATION, flags, block.streamId));
      }
      frames.push(piece);
      first = false;
    } while (pos < encoded.length);
    return frames;
  }
}

// ---------------------------------------------------------------------------------------
// The connection the gRPC server is given

/** How long a client has to send its preface and SETTINGS when the listener does not say. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectionOptions {
  /**
   * How long the client has to finish its side of the handshake (preface and SETTINGS).
   * grpc-go's server gives 120 s; the listener gives what it gives a TLS handshake.
   */
  handshakeTimeoutMs?: number;
  /**
   * Ends the connection for `err` (the gRPC server's session sends a GOAWAY with its code
   * first). By default the socket is just destroyed.
   */
  refuse?: (err: ConnectionError) => void;
  /**
   * A rewriter that has already followed the client's first bytes, read from the socket
   * before this connection took it over; `received` is what it made of them, passed on first.
   */
  rewriter?: AuthorityRewriter;
  received?: readonly Buffer[];
  /** The client closed its side before this connection took the socket over: `received` is all. */
  ended?: boolean;
}

/**
 * The client's HTTP/2 connection as the gRPC server should see it: reads are the socket's bytes run
 * through an AuthorityRewriter, writes go to the socket unchanged. A client that breaks the
 * protocol before its first request, sends more than allowed then, does not finish its
 * handshake in time, or sends frames the rewriter cannot follow, is refused: from then on
 * nothing more is read from it.
 */
export class AuthorityFixingConnection extends Duplex {
  private readonly rewriter: AuthorityRewriter;
  /** Completes the write waiting for the socket to drain. */
  private onDrain: (() => void) | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private refused = false;
  private readonly onRefused: ((err: ConnectionError) => void) | undefined;

  constructor(
    readonly socket: net.Socket,
    opts: ConnectionOptions & RewriterOptions = {},
  ) {
    super({ allowHalfOpen: true });
    this.rewriter = opts.rewriter ?? new AuthorityRewriter(opts);
    this.onRefused = opts.refuse;
    for (const b of opts.received ?? []) this.push(b);
    if (opts.ended) this.push(null);
    if (!this.rewriter.handshakeDone) {
      const ms = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
      this.handshakeTimer = setTimeout(() => {
        this.refuse(new ConnectionError(`HTTP/2: no preface and SETTINGS from the client within ${ms} ms`, ErrorCode.SETTINGS_TIMEOUT));
      }, ms);
    }
    // Node's HTTP/2 session turns Nagle off on its socket, but that is its own wrapper of this
    // stream, which does not reach the real one.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.refused) return;
      let out: Buffer[];
      try {
        out = this.rewriter.transform(chunk);
      } catch (err) {
        this.refuse(asConnectionError(err));
        return;
      }
      if (this.handshakeTimer !== undefined && this.rewriter.handshakeDone) {
        clearTimeout(this.handshakeTimer);
        this.handshakeTimer = undefined;
      }
      for (const b of out) {
        if (!this.push(b)) socket.pause();
      }
    });
    socket.on('end', () => this.push(null));
    // A reset is for the socket's owner to log, if it wants; 'close' follows and ends this
    // stream, and so the gRPC server's session.
    socket.on('error', () => {});
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.onDrain?.());
  }

  /** Ends the connection for `err`: nothing more is read from the client. */
  refuse(err: ConnectionError): void {
    if (this.refused) return;
    this.refused = true;
    clearTimeout(this.handshakeTimer);
    this.socket.pause();
    if (this.onRefused !== undefined) this.onRefused(err);
    else this.destroy();
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  override _read(): void {
    if (!this.refused) this.socket.resume();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.socket.cork();
    let flushed = true;
    for (const { chunk } of chunks) flushed = this.socket.write(chunk);
    this.socket.uncork();
    this.afterWrite(flushed, callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.afterWrite(this.socket.write(chunk), callback);
  }

  /** Completes a write at once, or when the socket drains if it is holding too much. */
  private afterWrite(flushed: boolean, callback: (error?: Error | null) => void): void {
    if (flushed) {
      callback();
      return;
    }
    this.onDrain = () => {
      this.onDrain = undefined;
      callback();
    };
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.handshakeTimer);
    this.socket.destroy();
    const done = this.onDrain;
    this.onDrain = undefined;
    done?.();
    callback(error);
  }
}
