// HPACK (RFC 7541) for the server side of HTTP/2: a decoder that follows the client's
// encoder, dynamic table and Huffman strings included, and an encoder for responses that
// never touches the client's table (static-table indexes and literals without indexing),
// so that nothing the server sends depends on what the client has acknowledged.

import { ConnectionError, DEFAULT_HEADER_TABLE_SIZE, ErrorCode } from './frames.js';

/** A header block that cannot be read (RFC 9113 §4.3: COMPRESSION_ERROR, for the whole connection). */
export class HpackError extends ConnectionError {
  override name = 'HpackError';
  constructor(message: string) {
    super(message, ErrorCode.COMPRESSION_ERROR);
  }
}

/**
 * A decoded header list: names and values (byte strings held as latin1) one after the
 * other, in the order they came. `tooLarge`: the list passed the decoder's limit, and the
 * fields past it were read (to keep the table in step) but not kept.
 */
export interface HeaderList {
  fields: string[];
  tooLarge: boolean;
}

/** The first value of `name` in a decoded list. */
export function headerValue(list: HeaderList, name: string): string | undefined {
  const f = list.fields;
  for (let i = 0; i < f.length; i += 2) if (f[i] === name) return f[i + 1];
  return undefined;
}

/** Every value of `name` in a decoded list. */
export function headerValues(list: HeaderList, name: string): string[] {
  const out: string[] = [];
  const f = list.fields;
  for (let i = 0; i < f.length; i += 2) if (f[i] === name) out.push(f[i + 1]!);
  return out;
}

/** What a header field costs against a list-size limit (RFC 7541 §4.1, RFC 9113 §6.5.2). */
const FIELD_OVERHEAD = 32;

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

/** The static table's fields as the decoder hands them out, made once. */
const STATIC_ENTRIES = STATIC_TABLE.map(([name, value]) => ({ name, value }));
const NO_BLOCK: Buffer = Buffer.alloc(0);

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

/** Decodes the Huffman-coded string in src[start, end). */
function huffmanDecode(src: Buffer, start: number, end: number): string {
  // Every symbol takes at least 5 bits.
  const out = Buffer.allocUnsafe(Math.floor(((end - start) * 8) / 5));
  let outLen = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
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
 * Follows one connection's header blocks as the client's encoder wrote them (RFC 7541 §3),
 * keeping the dynamic table in step.
 */
export class HpackDecoder {
  /** Newest entry first, as the table is indexed. */
  private readonly entries: Array<{ name: string; value: string }> = [];
  private size = 0;
  private maxSize: number;
  /** the block decode() is reading, and where */
  private block: Buffer = NO_BLOCK;
  private pos = 0;

  /** `maxTableSize` is the SETTINGS_HEADER_TABLE_SIZE this side advertised. */
  constructor(private readonly maxTableSize = DEFAULT_HEADER_TABLE_SIZE) {
    this.maxSize = maxTableSize;
  }

  /**
   * Decodes one complete header block; throws an HpackError if it is malformed. Fields past
   * `maxListBytes` are not kept (the list says it is too large), but the whole block is
   * read so that the table stays the client's: the work is bounded by the block's size.
   * (The block being read and the position in it are fields, not the closures of a call:
   * every request's headers pass here.)
   */
  decode(block: Buffer, maxListBytes = Infinity): HeaderList {
    const fields: string[] = [];
    let listBytes = 0;
    let tooLarge = false;
    this.block = block;
    this.pos = 0;
    try {
      while (this.pos < block.length) {
        const b = block[this.pos]!;
        let name: string;
        let value: string;
        if (b & 0x80) {
          const entry = this.lookup(this.readInt(7));
          name = entry.name;
          value = entry.value;
        } else if (b & 0x40) {
          const index = this.readInt(6);
          name = index === 0 ? this.readString() : this.lookup(index).name;
          value = this.readString();
          this.insert(name, value);
        } else if (b & 0x20) {
          // Size updates may only open a block (§4.2).
          if (listBytes > 0) throw new HpackError('HPACK: table size update after a header field');
          const size = this.readInt(5);
          if (size > this.maxTableSize) throw new HpackError(`HPACK: table size ${size} above the ${this.maxTableSize} allowed`);
          this.maxSize = size;
          this.evict(0);
          continue;
        } else {
          // literal without indexing (0000) or never indexed (0001): the same to a server
          const index = this.readInt(4);
          name = index === 0 ? this.readString() : this.lookup(index).name;
          value = this.readString();
        }
        listBytes += name.length + value.length + FIELD_OVERHEAD;
        if (listBytes > maxListBytes) tooLarge = true;
        if (!tooLarge) fields.push(name, value);
      }
    } finally {
      this.block = NO_BLOCK; // not kept past the call
    }
    return { fields, tooLarge };
  }

  private readInt(prefixBits: number): number {
    const block = this.block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= block.length) throw new HpackError('HPACK: truncated integer');
      if (shift > 21) throw new HpackError('HPACK: integer too large');
      const b = block[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
  }

  private readString(): string {
    const block = this.block;
    if (this.pos >= block.length) throw new HpackError('HPACK: truncated string');
    const huffmanCoded = (block[this.pos]! & 0x80) !== 0;
    const len = this.readInt(7);
    if (this.pos + len > block.length) throw new HpackError('HPACK: truncated string');
    const start = this.pos;
    this.pos += len;
    return huffmanCoded ? huffmanDecode(block, start, this.pos) : block.toString('latin1', start, this.pos);
  }

  private lookup(index: number): { readonly name: string; readonly value: string } {
    if (index >= 1 && index <= STATIC_ENTRIES.length) return STATIC_ENTRIES[index - 1]!;
    const entry = this.entries[index - STATIC_ENTRIES.length - 1];
    if (entry === undefined) throw new HpackError(`HPACK: index ${index} is not in the table`);
    return entry;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + FIELD_OVERHEAD;
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
      this.size -= old.name.length + old.value.length + FIELD_OVERHEAD;
    }
  }
}

/**
 * Encodes a header block that leaves the client's dynamic table alone: static-table fields
 * and names by index, everything else as literals without indexing, no Huffman coding.
 * Names and values are latin1 (callers percent-encode what is not ASCII, as grpc-message).
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  // Upper bound: per field a 6-byte name index, two 6-byte lengths, and the strings.
  let bound = 0;
  for (const [name, value] of fields) bound += 18 + name.length + value.length;
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
  for (const [name, value] of fields) {
    const full = STATIC_FIELD_INDEX.get(name)?.get(value);
    if (full !== undefined) {
      writeInt(0x80, 7, full);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    writeInt(0x00, 4, nameIndex);
    if (nameIndex === 0) writeString(name);
    writeString(value);
  }
  return out.subarray(0, pos);
}
