// JSON as etcd's gateway reads it (Go's encoding/json): a parser that keeps number
// literals and raw string text (jsonpb re-reads quoted numbers as literals, and 64-bit
// integers must not pass through a JS double), and reports syntax errors in Go's words,
// which the gateway sends back to the client verbatim.

export type JsonNode =
  | { readonly kind: 'object'; readonly fields: ReadonlyMap<string, JsonNode> }
  | { readonly kind: 'array'; readonly items: readonly JsonNode[] }
  /** `raw` is the literal between the quotes, escapes untouched */
  | { readonly kind: 'string'; readonly value: string; readonly raw: string }
  | { readonly kind: 'number'; readonly raw: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'null' };

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    /** the input ended inside the value (more bytes might complete it) */
    readonly truncated = false,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/**
 * How the text is read, which decides what running out of input and trailing bytes mean:
 * 'decoder' is json.Decoder (one value of a stream; bytes after it are the next value's),
 * 'unmarshal' is json.Unmarshal (the whole text is one value).
 */
export type ParseMode = 'decoder' | 'unmarshal';

/** Go's limit on nesting (encoding/json maxNestingDepth). */
const MAX_DEPTH = 10000;

const enum C {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  LBracket = 0x5b,
  Backslash = 0x5c,
  RBracket = 0x5d,
  LBrace = 0x7b,
  RBrace = 0x7d,
}

export function isJsonSpace(c: number): boolean {
  return c === C.Space || c === C.Tab || c === C.Lf || c === C.Cr;
}

/** Go's quoteChar: how a byte is shown in "invalid character ..." messages. */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === C.Quote) return `'"'`;
  if (c === C.Backslash) return "'\\\\'";
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r' };
  if (named[c] !== undefined) return `'${named[c]}'`;
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  // A byte above 0x7f is shown as the rune of the same number (Go converts byte to rune).
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `'\\u00${c.toString(16).padStart(2, '0')}'`;
  return `'${String.fromCharCode(c)}'`;
}

class Parser {
  pos: number;

  constructor(
    private readonly src: Buffer,
    start: number,
    private readonly mode: ParseMode,
  ) {
    this.pos = start;
  }

  private eof(): JsonSyntaxError {
    return new JsonSyntaxError(this.mode === 'decoder' ? 'unexpected EOF' : 'unexpected end of JSON input', true);
  }

  private invalid(context: string): JsonSyntaxError {
    return new JsonSyntaxError(`invalid character ${quoteChar(this.src[this.pos]!)} ${context}`);
  }

  private skipSpace(): void {
    while (this.pos < this.src.length && isJsonSpace(this.src[this.pos]!)) this.pos++;
  }

  /** The next non-space byte, or a throw at the end of the input. */
  private peek(): number {
    this.skipSpace();
    if (this.pos >= this.src.length) throw this.eof();
    return this.src[this.pos]!;
  }

  /**
   * One value, containers handled with an explicit stack so that deep nesting is an error
   * value rather than a blown JS stack.
   */
  value(): JsonNode {
    type Frame =
      | { kind: 'object'; fields: Map<string, JsonNode>; key: string | undefined }
      | { kind: 'array'; items: JsonNode[] };
    const stack: Frame[] = [];
    let done: JsonNode | undefined;

    for (;;) {
      // Read the start of a value.
      const c = this.peek();
      let node: JsonNode | undefined;
      if (c === C.LBrace || c === C.LBracket) {
        if (stack.length >= MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
        this.pos++;
        const close = c === C.LBrace ? C.RBrace : C.RBracket;
        if (this.peek() === close) {
          this.pos++;
          node = c === C.LBrace ? { kind: 'object', fields: new Map() } : { kind: 'array', items: [] };
        } else if (c === C.LBrace) {
          stack.push({ kind: 'object', fields: new Map(), key: this.objectKey() });
          continue;
        } else {
          stack.push({ kind: 'array', items: [] });
          continue;
        }
      } else {
        node = this.scalar();
      }

      // Attach it to its container, closing containers that end here.
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          done = node;
          break;
        }
        if (top.kind === 'object') {
          top.fields.set(top.key!, node);
          const n = this.peek();
          if (n === C.Comma) {
            this.pos++;
            top.key = this.objectKey();
            break;
          }
          if (n !== C.RBrace) throw this.invalid('after object key:value pair');
          this.pos++;
          node = { kind: 'object', fields: top.fields };
        } else {
          top.items.push(node);
          const n = this.peek();
          if (n === C.Comma) {
            this.pos++;
            break;
          }
          if (n !== C.RBracket) throw this.invalid('after array element');
          this.pos++;
          node = { kind: 'array', items: top.items };
        }
        stack.pop();
      }
      if (done !== undefined) return done;
    }
  }

  /** A key and its colon; leaves the position at the value. */
  private objectKey(): string {
    if (this.peek() !== C.Quote) throw this.invalid('looking for beginning of object key string');
    const key = this.string().value;
    if (this.peek() !== C.Colon) throw this.invalid('after object key');
    this.pos++;
    return key;
  }

  private scalar(): JsonNode {
    const c = this.src[this.pos]!;
    if (c === C.Quote) return this.string();
    if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) return this.number();
    if (c === 0x74) return this.literal('true', { kind: 'bool', value: true });
    if (c === 0x66) return this.literal('false', { kind: 'bool', value: false });
    if (c === 0x6e) return this.literal('null', { kind: 'null' });
    throw this.invalid('looking for beginning of value');
  }

  private literal(word: string, node: JsonNode): JsonNode {
    for (let i = 1; i < word.length; i++) {
      this.pos++;
      if (this.pos >= this.src.length) throw this.eof();
      if (this.src[this.pos] !== word.charCodeAt(i)) throw this.invalid(`in literal ${word} (expecting '${word[i]}')`);
    }
    this.pos++;
    return node;
  }

  private string(): { kind: 'string'; value: string; raw: string } {
    const src = this.src;
    const start = this.pos;
    let i = start + 1;
    let escaped = false;
    // Locals rather than fields in this loop: values can be megabytes of base64.
    for (;;) {
      if (i >= src.length) {
        this.pos = i;
        throw this.eof();
      }
      const c = src[i]!;
      if (c === C.Quote) break;
      if (c < 0x20) {
        this.pos = i;
        throw this.invalid('in string literal');
      }
      if (c === C.Backslash) {
        escaped = true;
        this.pos = i + 1;
        this.escape();
        i = this.pos;
      }
      i++;
    }
    this.pos = i + 1;
    const raw = src.toString('utf8', start + 1, i);
    // Validated above, so JSON.parse only has escapes to undo.
    return { kind: 'string', value: escaped ? (JSON.parse(`"${raw}"`) as string) : raw, raw };
  }

  /** Checks the escape whose first byte after the backslash is at pos; leaves pos on its last byte. */
  private escape(): void {
    if (this.pos >= this.src.length) throw this.eof();
    const e = this.src[this.pos]!;
    if (e === 0x75) {
      for (let k = 0; k < 4; k++) {
        this.pos++;
        if (this.pos >= this.src.length) throw this.eof();
        if (!isHex(this.src[this.pos]!)) throw this.invalid('in \\u hexadecimal character escape');
      }
    } else if (!'"\\/bfnrt'.includes(String.fromCharCode(e))) {
      throw this.invalid('in string escape code');
    }
  }

  private number(): JsonNode {
    const start = this.pos;
    const at = (): number => {
      if (this.pos >= this.src.length) {
        // A number may end at the end of the input only once it is complete.
        return -1;
      }
      return this.src[this.pos]!;
    };
    const digits = (): void => {
      while (isDigit(at())) this.pos++;
    };
    if (at() === C.Minus) {
      this.pos++;
      if (at() === -1) throw this.eof();
      if (!isDigit(at())) throw this.invalid('in numeric literal');
    }
    if (at() === C.Zero) this.pos++;
    else digits();
    if (at() === C.Dot) {
      this.pos++;
      if (at() === -1) throw this.eof();
      if (!isDigit(at())) throw this.invalid('after decimal point in numeric literal');
      digits();
    }
    if (at() === 0x65 || at() === 0x45) {
      this.pos++;
      if (at() === C.Plus || at() === C.Minus) this.pos++;
      if (at() === -1) throw this.eof();
      if (!isDigit(at())) throw this.invalid('in exponent of numeric literal');
      digits();
    }
    return { kind: 'number', raw: this.src.toString('latin1', start, this.pos) };
  }

  /** json.Unmarshal refuses anything but space after the value. */
  end(): void {
    this.skipSpace();
    if (this.pos < this.src.length) throw this.invalid('after top-level value');
  }
}

function isDigit(c: number): boolean {
  return c >= C.Zero && c <= C.Nine;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** json.Unmarshal of a whole text. Throws JsonSyntaxError. */
export function parseJson(text: Buffer | string): JsonNode {
  const p = new Parser(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, 0, 'unmarshal');
  const node = p.value();
  p.end();
  return node;
}

/**
 * json.Decoder's next value in `src` from `start`: the value and where it ended, or
 * undefined when only space is left. Throws JsonSyntaxError.
 */
export function decodeNext(src: Buffer, start = 0): { node: JsonNode; end: number } | undefined {
  let i = start;
  while (i < src.length && isJsonSpace(src[i]!)) i++;
  if (i >= src.length) return undefined;
  const p = new Parser(src, i, 'decoder');
  const node = p.value();
  return { node, end: p.pos };
}

/** What a piece of a streamed body completed: values, and the syntax error that follows them, if any. */
export interface JsonStreamStep {
  values: JsonNode[];
  error?: JsonSyntaxError;
}

/**
 * The values of a request body that arrives in pieces (a stream of JSON messages, as
 * json.Decoder reads it). A value is handed out once complete; a syntax error is
 * reported once certain (for a truncated value, when the body ends), after the values
 * before it. Nothing is read past an error.
 */
export class JsonStream {
  private pending: Buffer = Buffer.alloc(0);
  /** Re-parse an incomplete value only once the buffer has grown this far (linear total work). */
  private retryAt = 0;
  private failed = false;

  /** Bytes held for a value not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): JsonStreamStep {
    if (this.failed) return { values: [] };
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length < this.retryAt) return { values: [] };
    return this.drain(false);
  }

  /** The body ended: the values left, and an error for a truncated last value. */
  end(): JsonStreamStep {
    if (this.failed) return { values: [] };
    return this.drain(true);
  }

  private drain(ended: boolean): JsonStreamStep {
    const values: JsonNode[] = [];
    let pos = 0;
    for (;;) {
      let next: { node: JsonNode; end: number } | undefined;
      try {
        next = decodeNext(this.pending, pos);
      } catch (err) {
        if (!(err instanceof JsonSyntaxError)) throw err;
        if (!ended && err.truncated) break;
        this.failed = true;
        this.pending = Buffer.alloc(0);
        return { values, error: err };
      }
      if (next === undefined) {
        pos = this.pending.length;
        break;
      }
      // A number running to the end of what arrived may still be growing.
      if (!ended && next.node.kind === 'number' && next.end === this.pending.length) break;
      values.push(next.node);
      pos = next.end;
    }
    this.pending = this.pending.subarray(pos);
    this.retryAt = this.pending.length * 2;
    return { values };
  }
}
