// One HTTP/2 stream as a gRPC call uses it (RFC 9113 §5.1, server side): the request's
// bytes come in through its sink, the response goes out as HEADERS, DATA within the
// client's flow-control windows, and trailers. A stream whose response is queued past
// the windows says so (write returns false) and tells its sink when the queue has gone
// out, so a slow reader holds at most what its writer chose to queue.

/** What a stream tells the call it carries. */
export interface StreamSink {
  /** request bytes, in order */
  onData(chunk: Buffer): void;
  /** the client ended its side */
  onHalfClose(): void;
  /** the client reset the stream, or the connection went away, before the response ended */
  onReset(): void;
  /** everything written has gone to the socket after a write returned false */
  onDrain(): void;
}

/** What a stream needs of its connection. */
export interface StreamOwner {
  readonly peer: string;
  readonly peerCommonName: string | undefined;
  /** sends a header block on the stream (HEADERS, with CONTINUATION when it is large) */
  sendHeaders(stream: H2Stream, block: Buffer, endStream: boolean): void;
  /** sends what the windows allow of the stream's queued data, and its trailers once the queue is empty */
  pump(stream: H2Stream): void;
  /** sends RST_STREAM and forgets the stream */
  reset(stream: H2Stream, code: number): void;
}

/**
 * The server's side of a stream: `open` until the response ends (trailers with
 * END_STREAM or RST_STREAM), then `closed`; whether the client has ended its side is
 * `remoteEnded`.
 */
export class H2Stream {
  sink: StreamSink | undefined;
  closed = false;
  remoteEnded = false;
  headersSent = false;
  /** how much DATA the client may still send on this stream, and how much of it to give back */
  recvWindow: number;
  recvUnacked = 0;
  /** how much DATA the server may still send on this stream */
  sendWindow: number;
  /** response bytes waiting for window (or for the socket), oldest first */
  readonly queued: Buffer[] = [];
  queuedBytes = 0;
  /** the trailers' header block, sent once the queue is empty */
  trailers: Buffer | undefined;
  /** a write returned false: the sink hears onDrain once the queue is empty */
  needDrain = false;

  constructor(
    readonly id: number,
    private readonly owner: StreamOwner,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  get peer(): string {
    return this.owner.peer;
  }

  get peerCommonName(): string | undefined {
    return this.owner.peerCommonName;
  }

  /** Sends the response headers; with `endStream` they are the whole response (trailers-only). */
  respond(block: Buffer, endStream: boolean): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.owner.sendHeaders(this, block, endStream);
  }

  /** Queues response bytes; false when they could not all go out at once (wait for onDrain). */
  write(data: Buffer): boolean {
    if (this.closed) return false;
    this.queued.push(data);
    this.queuedBytes += data.length;
    this.owner.pump(this);
    if (this.queuedBytes === 0) return true;
    this.needDrain = true;
    return false;
  }

  /** Ends the response with trailers, after whatever is queued. */
  end(trailers: Buffer): void {
    if (this.closed || this.trailers !== undefined) return;
    this.trailers = trailers;
    this.owner.pump(this);
  }

  /** Ends the stream at once with RST_STREAM `code`. */
  reset(code: number): void {
    if (!this.closed) this.owner.reset(this, code);
  }
}
