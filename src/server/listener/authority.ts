// grpc-go clients dialled with a URL endpoint (etcdctl --endpoints http://IP:2379, as every
// deployment guide writes it) open each connection they make to one endpoint with the target
// "passthrough:///http://IP:2379" and send `:authority: http://IP:2379`. Go's HTTP/2 server,
// and so etcd, accepts that; Node's (nghttp2) refuses any authority holding "/" with
// RST_STREAM PROTOCOL_ERROR before the gRPC server sees the request, and has no switch for it.
//
// So such a connection is handed to the gRPC server through a shim that reads the client's
// frames and rewrites their header blocks: the HPACK state of the client's encoder is
// followed with a decoder of our own, the scheme is cut from `:authority`, and each block is
// encoded again without the dynamic table, so Node's HPACK decoder never needs the client's
// table. Every other frame, and everything the server sends, passes through untouched.

import { Duplex } from 'node:stream';
import type net from 'node:net';
import type { ConnectionInjector } from '../grpc/server.js';

/** The 24 bytes every HTTP/2 client connection starts with (RFC 9113 §3.4). */
const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;

const FRAME_HEADERS = 0x1;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/**
 * What Node's HTTP/2 server (so the gRPC server's) advertises and never changes: the largest frame a
 * client may send, and the dynamic table its HPACK encoder may use.
 */
const NODE_MAX_FRAME_SIZE = 16384;
const NODE_HEADER_TABLE_SIZE = 4096;
/**
 * Far above what Node accepts for one header list (maxHeaderListSize 64 KiB), so that Node
 * still answers ordinary oversized headers itself; only a block that would make us buffer or
 * expand without bound (a few bytes of HPACK can reference a 4 KiB table entry over and over)
 * ends the connection here.
 */
const MAX_HEADER_LIST_BYTES = 1 << 20;

/** The client's frames could not be followed: the connection has to go. */
export class AuthorityRewriteError extends Error {
  override name = 'AuthorityRewriteError';
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
        if (sym === HUFFMAN_EOS) throw new AuthorityRewriteError('HPACK: Huffman string contains EOS');
        out[outLen++] = sym;
        code = 0;
        len = 0;
      } else if (len === HUFFMAN_MAX_BITS) {
        throw new AuthorityRewriteError('HPACK: invalid Huffman code');
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== 2 ** len - 1) throw new AuthorityRewriteError('HPACK: invalid Huffman padding');
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
        if (pos >= block.length) throw new AuthorityRewriteError('HPACK: truncated integer');
        if (shift > 21) throw new AuthorityRewriteError('HPACK: integer too large');
        const b = block[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (pos >= block.length) throw new AuthorityRewriteError('HPACK: truncated string');
      const huffmanCoded = (block[pos]! & 0x80) !== 0;
      const len = readInt(7);
      if (pos + len > block.length) throw new AuthorityRewriteError('HPACK: truncated string');
      const raw = block.subarray(pos, pos + len);
      pos += len;
      return huffmanCoded ? huffmanDecode(raw) : raw.toString('latin1');
    };
    const emit = (name: string, value: string, sensitive: boolean): void => {
      listBytes += name.length + value.length + 32;
      if (listBytes > maxListBytes) throw new AuthorityRewriteError('HPACK: header list too large');
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
        if (fields.length > 0) throw new AuthorityRewriteError('HPACK: table size update after a header field');
        const size = readInt(5);
        if (size > this.maxTableSize) throw new AuthorityRewriteError(`HPACK: table size ${size} above the ${this.maxTableSize} allowed`);
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
    if (entry === undefined) throw new AuthorityRewriteError(`HPACK: index ${index} is not in the table`);
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

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

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
 * Rewrites a client's HTTP/2 byte stream (from its first byte, the preface) for the gRPC server: every
 * header block is decoded and encoded again with `:authority` fixed; all other bytes are
 * passed on as they came, as slices of the input chunks where the frames allow.
 */
export class AuthorityRewriter {
  private readonly decoder: HpackDecoder;
  /** Preface bytes still to check; after a wrong preface nothing is parsed any more. */
  private prefaceLeft = CLIENT_PREFACE.length;
  private passthroughOnly = false;
  /** A frame header split across chunks. */
  private headerBuf = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** Payload bytes of the current frame not read yet. */
  private payloadLeft = 0;
  /** The current frame when it is HEADERS or CONTINUATION, whose payload is held back. */
  private current: { type: number; flags: number; streamId: number; length: number; parts: Buffer[] } | undefined;
  private pending: PendingHeaders | undefined;

  constructor(private readonly maxFrameSize = NODE_MAX_FRAME_SIZE, headerTableSize = NODE_HEADER_TABLE_SIZE) {
    this.decoder = new HpackDecoder(headerTableSize);
  }

  /** The bytes to give the gRPC server for `chunk`; throws AuthorityRewriteError on malformed input. */
  transform(chunk: Buffer): Buffer[] {
    if (this.passthroughOnly) return [chunk];
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
        // Not HTTP/2 after all: nghttp2 will say so to the client.
        this.passthroughOnly = true;
        return [chunk];
      }
      this.prefaceLeft -= n;
      pos = n;
    }

    while (pos < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - pos);
        pos += n;
        this.payloadLeft -= n;
        const frame = this.current;
        if (frame === undefined) continue; // passed through in the current run
        // Header block bytes are held back, never part of a run.
        frame.parts.push(chunk.subarray(pos - n, pos));
        runStart = pos;
        if (this.payloadLeft === 0) {
          this.current = undefined;
          out.push(...this.headerFrame(frame.type, frame.flags, frame.streamId, Buffer.concat(frame.parts, frame.length)));
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

      if (this.pending !== undefined && (type !== FRAME_CONTINUATION || streamId !== this.pending.streamId)) {
        throw new AuthorityRewriteError(`HTTP/2: frame of type ${type} in the middle of stream ${this.pending.streamId}'s header block`);
      }
      if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
        if (length > this.maxFrameSize) throw new AuthorityRewriteError(`HTTP/2: frame of ${length} bytes above the ${this.maxFrameSize} allowed`);
        flushRun(headerStart);
        this.current = { type, flags, streamId, length, parts: [] };
        this.payloadLeft = length;
        if (length === 0) {
          this.current = undefined;
          out.push(...this.headerFrame(type, flags, streamId, Buffer.alloc(0)));
        }
        runStart = pos;
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
    flushRun(chunk.length);
    return out;
  }

  /** Takes one complete HEADERS or CONTINUATION frame; returns the frames to send for it. */
  private headerFrame(type: number, flags: number, streamId: number, payload: Buffer): Buffer[] {
    if (type === FRAME_HEADERS) {
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
    for (const field of fields) {
      if (field.name === ':authority') field.value = stripAuthorityScheme(field.value);
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
        frames.push(frameHeader(len, FRAME_HEADERS, flags, block.streamId));
        if (prio !== undefined) frames.push(prio);
      } else {
        frames.push(frameHeader(piece.length, FRAME_CONTINUATION, flags, block.streamId));
      }
      frames.push(piece);
      first = false;
    } while (pos < encoded.length);
    return frames;
  }
}

// ---------------------------------------------------------------------------------------
// The connection the gRPC server is given

/**
 * The client's HTTP/2 connection as the gRPC server should see it: reads are the socket's bytes run
 * through an AuthorityRewriter, writes go to the socket unchanged. Client frames that cannot
 * be followed destroy the socket, after `onMalformed` is told why.
 */
export class AuthorityFixingConnection extends Duplex {
  private readonly rewriter = new AuthorityRewriter();
  /** Completes the write waiting for the socket to drain. */
  private onDrain: (() => void) | undefined;

  constructor(
    readonly socket: net.Socket,
    onMalformed?: (err: Error) => void,
  ) {
    super({ allowHalfOpen: true });
    // Node's HTTP/2 session turns Nagle off on its socket, but that is its own wrapper of this
    // stream, which does not reach the real one.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let out: Buffer[];
      try {
        out = this.rewriter.transform(chunk);
      } catch (err) {
        // Whatever went wrong, it is this one connection's problem, not the gRPC server's.
        onMalformed?.(err instanceof Error ? err : new Error(String(err)));
        this.destroy();
        return;
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
    this.socket.resume();
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
    this.socket.destroy();
    const done = this.onDrain;
    this.onDrain = undefined;
    done?.();
    callback(error);
  }
}

/**
 * Hands a client's HTTP/2 connection to the gRPC server through an AuthorityFixingConnection, and
 * carries the client's address over to the session the gRPC server gets, so that call.getPeer()
 * still names the client. `onMalformed` hears why a connection was cut for bad frames.
 */
export function injectGrpcConnection(
  injector: ConnectionInjector,
  socket: net.Socket,
  onMalformed?: (err: Error) => void,
): void {
  const conn = new AuthorityFixingConnection(socket, onMalformed);
  injector.injectConnection(conn as unknown as net.Socket);
  exposePeerAddress(conn, socket);
}

/**
 * Node's HTTP/2 session wraps a stream that is not a real socket in a socket of its own
 * (JSStreamSocket) whose addresses are empty. Node leaves the session on the stream it was
 * given (under its kBoundSession key, which is a plain "undefined" property in some Node 20
 * releases); through the session's socket proxy, the wrapper's cached peer and local names
 * are set. If Node ever stops exposing the session so, peers are just unnamed.
 */
function exposePeerAddress(conn: Duplex, socket: net.Socket): void {
  const holder = conn as unknown as Record<PropertyKey, unknown>;
  const session = Reflect.ownKeys(conn)
    .map((key) => holder[key])
    .find((v): v is { socket: Record<string, unknown> } => typeof v === 'object' && v !== null && typeof (v as { goaway?: unknown }).goaway === 'function');
  try {
    const wrapper = session?.socket;
    if (wrapper === undefined || wrapper.remoteAddress !== undefined) return;
    wrapper._peername = { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily };
    wrapper._sockname = { address: socket.localAddress, port: socket.localPort, family: socket.localFamily };
  } catch {
    // The session may already be gone, and with it the need for a name.
  }
}

/**
 * What the start of an HTTP/2 connection says about the shim: `undecided` until the first
 * header block is complete, then whether its `:authority` needs mending. A grpc-go channel
 * uses one authority for all its calls, so a connection whose first call is fine is handed
 * to the gRPC server untouched and pays nothing; anything unparsable goes through the shim, which
 * refuses it properly.
 */
export function inspectFirstHeaders(head: Buffer): 'undecided' | 'clean' | 'mend' {
  let pos = CLIENT_PREFACE.length;
  const block: Buffer[] = [];
  let inBlock = false;
  while (pos + FRAME_HEADER_BYTES <= head.length) {
    const length = head.readUIntBE(pos, 3);
    const type = head[pos + 3]!;
    const flags = head[pos + 4]!;
    const start = pos + FRAME_HEADER_BYTES;
    if (start + length > head.length) return length > MAX_HEADER_LIST_BYTES ? 'mend' : 'undecided';
    let payload = head.subarray(start, start + length);
    pos = start + length;
    if (type === FRAME_HEADERS && !inBlock) {
      let from = 0;
      let padding = 0;
      if (flags & FLAG_PADDED) {
        if (payload.length < 1) return 'mend';
        padding = payload[0]!;
        from = 1;
      }
      if (flags & FLAG_PRIORITY) from += 5;
      if (from + padding > payload.length) return 'mend';
      payload = payload.subarray(from, payload.length - padding);
      inBlock = true;
    } else if (type === FRAME_CONTINUATION && inBlock) {
      // a continuation carries only header block bytes
    } else if (inBlock || type === FRAME_CONTINUATION) {
      return 'mend'; // interleaved or stray continuation: let the shim refuse it
    } else {
      continue; // SETTINGS, WINDOW_UPDATE, PRIORITY... before the first request
    }
    block.push(payload);
    if (flags & FLAG_END_HEADERS) {
      try {
        const fields = new HpackDecoder(NODE_HEADER_TABLE_SIZE).decode(Buffer.concat(block), MAX_HEADER_LIST_BYTES);
        const authority = fields.find((f) => f.name === ':authority')?.value;
        return authority !== undefined && stripAuthorityScheme(authority) !== authority ? 'mend' : 'clean';
      } catch {
        return 'mend';
      }
    }
  }
  return head.length > MAX_HEADER_LIST_BYTES ? 'mend' : 'undecided';
}

/** An empty SETTINGS frame: sent to clients that wait for the server's preface. */
export const EMPTY_SETTINGS_FRAME = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

/**
 * `head` without the client's first SETTINGS acknowledgement (the answer to
 * EMPTY_SETTINGS_FRAME, which the gRPC server never sent and must not see), or undefined when
 * that acknowledgement has not arrived yet.
 */
export function withoutFirstSettingsAck(head: Buffer): Buffer | undefined {
  let pos = CLIENT_PREFACE.length;
  while (pos + FRAME_HEADER_BYTES <= head.length) {
    const length = head.readUIntBE(pos, 3);
    if (head[pos + 3] === 0x4 && (head[pos + 4]! & 0x1) !== 0 && length === 0) {
      return Buffer.concat([head.subarray(0, pos), head.subarray(pos + FRAME_HEADER_BYTES)]);
    }
    pos += FRAME_HEADER_BYTES + length;
  }
  return undefined;
}
