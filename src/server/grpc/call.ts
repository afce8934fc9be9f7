// One gRPC call on one HTTP/2 stream, with the surface the member's handlers use (the
// same one grpc-js's call objects offer them, and the gateway's stand-ins): `request`,
// `metadata`, `cancelled`, `getPeer()`, and for streams write/end, 'data', 'end',
// 'drain', 'cancelled', and `emit('error', status)` to end with a status.

import { EventEmitter } from 'node:events';
import { Code } from './codes.js';
import { type CallStatus, EncodedMessage, encodeGrpcMessage, frameMessage, MessageReader } from './framing.js';
import { encodeHeaderBlock, type HeaderList, headerValues } from './h2/hpack.js';
import type { H2Stream, StreamSink } from './h2/stream.js';

export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
}

/** What the metrics see of a call (go-grpc-prometheus's counters, etcd's client byte counts). */
export interface CallObserver {
  /** a request message of `bytes` bytes arrived */
  received(bytes: number): void;
  /** a response message of `bytes` bytes was sent */
  sent(bytes: number): void;
  handled(code: number): void;
}

/** What handlers read of a call's metadata (a subset of grpc-js's Metadata, which the gateway passes). */
export interface CallMetadata {
  get(key: string): Array<string | Buffer>;
}

/**
 * A request's metadata read straight from its HTTP/2 headers when asked: most calls
 * ask for one key (hasleader) or none, and building grpc-js's Metadata for each cost
 * about 2 % of a member's CPU under load.
 */
class HeaderMetadata implements CallMetadata {
  constructor(private readonly headers: HeaderList) {}

  get(key: string): Array<string | Buffer> {
    const values = headerValues(this.headers, key.toLowerCase());
    if (values.length === 0) return [];
    // binary values travel base64-encoded, several to a header joined by commas
    if (key.endsWith('-bin')) return values.flatMap((v) => v.split(',')).map((v) => Buffer.from(v.trim(), 'base64'));
    return values;
  }
}

/** A unary (or server-streaming) call as its handler sees it; the gateway's stand-ins offer the same. */
export interface UnaryCall<Req> {
  readonly request: Req;
  readonly metadata: CallMetadata;
  getPeer(): string;
  /** the Common Name of the client's verified TLS certificate (gRPC over mutual TLS only) */
  peerCommonName?(): string | undefined;
}

/** How a unary handler answers: an error (a status) or the response. */
export type UnaryCallback<Res> = (err: unknown, value?: Res) => void;

/**
 * A call that streams its responses: server-streaming (the request in `request`) or
 * bidi ('data' for each request, 'end' when the client is done). 'drain' follows a
 * write that returned false; 'cancelled' a client gone or a deadline passed;
 * `emit('error', status)` ends the call with that status.
 */
export interface StreamCall<Req, Res> extends EventEmitter {
  readonly request: Req;
  readonly metadata: CallMetadata;
  write(response: Res): boolean;
  /**
   * gRPC's calls only: sends messages already serialized and framed (each a flag byte, a
   * length and the message, back to back; `messageSizes` their sizes) in one write. A
   * stream of big blobs reads them straight into place (snapshot-frames.ts).
   */
  writeFramed?(frames: Buffer, messageSizes: readonly number[]): boolean;
  end(): void;
}

/** A service's handlers by method name: (call, callback) for unary RPCs, (call) for streams. */
export type ServiceImplementation = Record<string, (call: never, callback: never) => void>;

/** How the server calls any handler. */
export type Handler = (call: ServerCall, callback: UnaryCallback<unknown>) => void;

const MAX_TIMER_MS = 2 ** 31 - 1;
/** what etcd's handlers answer when the call's context expires (Go's context.DeadlineExceeded) */
const DEADLINE_EXCEEDED = 'context deadline exceeded';

const RESPONSE_HEADERS: ReadonlyArray<readonly [string, string]> = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
  ['grpc-accept-encoding', 'identity,deflate,gzip'],
];
const RESPONSE_HEADERS_BLOCK = encodeHeaderBlock(RESPONSE_HEADERS);
/** The trailers of a call that ended OK, the most common by far. */
const OK_TRAILERS_BLOCK = encodeHeaderBlock([['grpc-status', '0']]);

function statusFields(code: number, details: string): Array<readonly [string, string]> {
  const fields: Array<readonly [string, string]> = [['grpc-status', String(code)]];
  if (details !== '') fields.push(['grpc-message', encodeGrpcMessage(details)]);
  return fields;
}

/** A response that is only a status: headers and trailers in one block. */
export function trailersOnly(code: number, details: string): Buffer {
  return encodeHeaderBlock([...RESPONSE_HEADERS, ...statusFields(code, details)]);
}

function trailers(status: CallStatus): Buffer {
  if (status.code === Code.OK && status.details === '') return OK_TRAILERS_BLOCK;
  return encodeHeaderBlock(statusFields(status.code, status.details));
}

/** The status a handler failed with: grpc-js status objects, EtcdErrors, plain Errors. */
export function statusOf(err: unknown): CallStatus {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; details?: unknown; message?: unknown };
    const code = typeof e.code === 'number' ? e.code : Code.UNKNOWN;
    const details = typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : String(err);
    return { code, details };
  }
  return { code: Code.UNKNOWN, details: String(err) };
}

/** etcd's gRPC server sends messages up to math.MaxInt32 bytes. */
const MAX_SEND_MESSAGE_BYTES = 2 ** 31 - 1;

export class ServerCall extends EventEmitter implements StreamSink {
  /** the request of a unary or server-streaming call */
  request: unknown = undefined;
  cancelled = false;
  readonly metadata: CallMetadata;
  private headersSent = false;
  private done = false;
  private deadline: NodeJS.Timeout | undefined;
  private readonly reader: MessageReader;
  /** a unary call has its request: grpc-go reads no further, and neither do we */
  private requestRead = false;

  constructor(
    private readonly stream: H2Stream,
    headers: HeaderList,
    private readonly method: MethodDefinition,
    private readonly handler: Handler,
    private readonly observer: CallObserver,
    opts: { maxReceiveLength: number; encoding: string; timeoutMs: number | undefined },
  ) {
    super();
    this.metadata = new HeaderMetadata(headers);
    this.reader = new MessageReader(opts.maxReceiveLength, opts.encoding);
    // emit('error', status) is how a handler ends a stream with a status, as with grpc-js
    this.on('error', (err: unknown) => this.finish(statusOf(err)));
    const timeoutMs = opts.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs < 1) {
      // Passed already (grpc-go takes "0S" and "-1S"), or due before a timer could fire:
      // etcd's handlers find their context expired.
      this.cancel(Code.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED);
      return;
    }
    // a deadline past what a timer holds (24.8 days) is as good as none
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.deadline = setTimeout(() => this.cancel(Code.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED), timeoutMs);
    }
    if (method.requestStream) this.run();
  }

  /** The Common Name of the client's verified TLS certificate. */
  peerCommonName(): string | undefined {
    return this.stream.peerCommonName;
  }

  getPeer(): string {
    return this.stream.peer;
  }

  /** Sends one response message; false when the client's window is full (wait for 'drain'). */
  write(message: unknown): boolean {
    if (this.done) return false;
    if (message instanceof EncodedMessage) return this.writeEncoded(message);
    let bytes: Buffer;
    try {
      bytes = this.method.responseSerialize(message);
    } catch (err) {
      this.finish({ code: Code.INTERNAL, details: `Error serializing response: ${(err as Error).message}` });
      return false;
    }
    this.sendHeaders();
    this.observer.sent(bytes.length);
    return this.stream.write(frameMessage(bytes));
  }

  /** Sends messages already framed (see StreamCall.writeFramed); false when the client's window is full. */
  writeFramed(frames: Buffer, messageSizes: readonly number[]): boolean {
    if (this.done) return false;
    this.sendHeaders();
    for (const n of messageSizes) this.observer.sent(n);
    return this.stream.write(frames);
  }

  /** Sends a message its handler encoded in pieces, each queued as it is. */
  private writeEncoded(message: EncodedMessage): boolean {
    if (message.length > MAX_SEND_MESSAGE_BYTES) {
      // grpc-go's words for what etcd (its server's limit is math.MaxInt32) refuses to send
      this.finish({ code: Code.RESOURCE_EXHAUSTED, details: `grpc: trying to send message larger than max (${message.length} vs. ${MAX_SEND_MESSAGE_BYTES})` });
      return false;
    }
    this.sendHeaders();
    this.observer.sent(message.length);
    let room = this.stream.write(message.prefix());
    for (const piece of message.pieces) if (piece.length > 0) room = this.stream.write(piece);
    return room;
  }

  /** Ends a streaming response with OK. */
  end(): void {
    this.finish({ code: Code.OK, details: '' });
  }

  /** (StreamSink) request bytes */
  onData(chunk: Buffer): void {
    if (this.done || this.requestRead) return;
    let messages: Buffer[];
    try {
      messages = this.reader.push(chunk, this.method.requestStream ? Infinity : 1);
    } catch (err) {
      this.finish(statusOf(err));
      return;
    }
    for (const m of messages) {
      this.observer.received(m.length);
      const req = this.decode(m);
      if (this.done) return;
      if (!this.method.requestStream) {
        // As grpc-go: the handler runs on the first message, whatever follows it.
        this.requestRead = true;
        this.request = req;
        this.run();
        return;
      }
      this.emit('data', req);
    }
  }

  /** (StreamSink) the client is done sending */
  onHalfClose(): void {
    if (this.done || this.requestRead) return;
    if (this.method.requestStream) {
      // grpc-go's stream Recv: a message cut short is Internal "unexpected EOF"
      if (this.reader.partial) return this.finish({ code: Code.INTERNAL, details: 'unexpected EOF' });
      this.emit('end');
      return;
    }
    if (!this.reader.partial) return this.finish({ code: Code.UNKNOWN, details: 'EOF' }); // io.EOF as is
    // io.ErrUnexpectedEOF: as is from a unary call, made Internal by a stream's RecvMsg
    this.finish({ code: this.method.responseStream ? Code.INTERNAL : Code.UNKNOWN, details: 'unexpected EOF' });
  }

  private decode(bytes: Buffer): unknown {
    try {
      return this.method.requestDeserialize(bytes);
    } catch (err) {
      // grpc-go's words, which differ between unary calls and streams
      const unary = !this.method.requestStream && !this.method.responseStream;
      const prefix = unary ? 'grpc: error unmarshalling request: ' : 'grpc: failed to unmarshal the received message ';
      this.finish({ code: Code.INTERNAL, details: prefix + (err as Error).message });
      return undefined;
    }
  }

  private run(): void {
    try {
      this.handler(this, (err, value) => {
        if (err) return this.finish(statusOf(err));
        this.write(value);
        this.end();
      });
    } catch (err) {
      this.finish(statusOf(err));
    }
  }

  /** (StreamSink) the client reset the stream or went away */
  onReset(): void {
    this.cancel(Code.CANCELLED, 'the client cancelled the call');
  }

  /** (StreamSink) a response stream's queue has gone out */
  onDrain(): void {
    this.emit('drain');
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS_BLOCK, false);
  }

  /** Ends the call with a status (once); later writes and statuses are dropped. */
  private finish(status: CallStatus): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.deadline);
    this.observer.handled(status.code);
    const stream = this.stream;
    if (stream.closed) return;
    if (!this.headersSent) {
      // trailers-only: one HEADERS frame carries the status
      this.headersSent = true;
      stream.respond(trailersOnly(status.code, status.details), true);
      return;
    }
    stream.end(trailers(status));
  }

  /** The client went away or the deadline passed: handlers hear 'cancelled'. */
  private cancel(code: number, details: string): void {
    if (this.done) return;
    this.cancelled = true;
    this.finish({ code, details });
    this.emit('cancelled');
  }
}
