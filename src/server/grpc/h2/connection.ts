// The server side of one HTTP/2 connection (RFC 9113) for gRPC: settings, streams and
// their states, flow control both ways, PING and keepalive, GOAWAY. It reads the socket
// itself and writes frames in one batch per turn of the event loop.
//
// A client that breaks the protocol, or a limit below, gets a GOAWAY with the error code
// RFC 9113 gives it and the connection is closed; nothing a client sends makes the server
// hold more than one frame, one header block (MAX_HEADER_BLOCK_BYTES) and what its calls
// buffer of their own messages. The limits are Node's (nghttp2's) where Node had one:
//   - frames above SETTINGS_MAX_FRAME_SIZE (16384): FRAME_SIZE_ERROR;
//   - more than MAX_BYTES_BEFORE_FIRST_REQUEST of frames before the first request (etcd, through
//     grpc-go, takes any amount; nothing limits a client that never asks for anything else);
//   - a header block above MAX_HEADER_BLOCK_BYTES (a CONTINUATION flood): ENHANCE_YOUR_CALM;
//     a header list above MAX_HEADER_LIST_BYTES decoded only resets its stream;
//   - RST_STREAM faster than RESET_RATE_PER_S after a burst of RESET_BURST (rapid reset,
//     CVE-2023-44487), more than MAX_REFUSED_STREAMS streams refused past
//     --max-concurrent-streams, more than MAX_EMPTY_FRAMES frames that carry nothing, and
//     more than MAX_QUEUED_ACKS acknowledgements queued for a client that does not read
//     (SETTINGS and PING floods): ENHANCE_YOUR_CALM.
// And grpc-go's keepalive enforcement, as etcd's server has it: a client that pings more
// often than --grpc-keepalive-min-time while it has calls open (or at all within
// PING_WITHOUT_CALLS_MS while it has none), with no response sent in between, earns a
// strike; past MAX_PING_STRIKES it gets a GOAWAY ENHANCE_YOUR_CALM "too_many_pings", which
// tells gRPC clients to ping less.

import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  frame,
  frameHeader,
  FrameType,
  frameTypeName,
  goawayFrame,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW,
  Setting,
  settingsFrame,
  uint32Frame,
} from './frames.js';
import { type HeaderList, HpackDecoder } from './hpack.js';
import { FrameReader } from './reader.js';
import { H2Stream, type StreamOwner } from './stream.js';
import { probe } from '../../probe.js';

/** What a client may send before its first HEADERS frame; a real client needs well under 1 KiB. */
export const MAX_BYTES_BEFORE_FIRST_REQUEST = 16 * 1024;
/** One header block as sent (HEADERS and its CONTINUATION frames). */
export const MAX_HEADER_BLOCK_BYTES = 1 << 20;
/** One header list decoded, as SETTINGS_MAX_HEADER_LIST_SIZE counts it (Node's default). */
export const MAX_HEADER_LIST_BYTES = 64 * 1024;
export const RESET_BURST = 1000;
export const RESET_RATE_PER_S = 33;
export const MAX_REFUSED_STREAMS = 100;
export const MAX_EMPTY_FRAMES = 1000;
export const MAX_QUEUED_ACKS = 1000;
/**
 * The windows the client's DATA gets: calls read their requests as they come, so the
 * windows only pace the client, and wide ones spare a round trip per 64 KiB of a large Put.
 */
const STREAM_RECV_WINDOW = 1 << 20;
const CONNECTION_RECV_WINDOW = 16 << 20;
/** Response bytes handed to the socket and not yet written, past which streams wait for 'drain'. */
const SEND_BUFFER_BYTES = 256 * 1024;
/** Server keepalive, as etcd's defaults: probe an idle client every 2 h, 20 s to answer. */
export const KEEPALIVE_TIME_MS = 2 * 60 * 60 * 1000;
export const KEEPALIVE_TIMEOUT_MS = 20 * 1000;
/** grpc-go's enforcement for a server that sets no policy of its own (etcd's gRPC proxy); a member sets --grpc-keepalive-min-time */
export const KEEPALIVE_MIN_TIME_MS = 5 * 60 * 1000;
/** grpc-go's: a client with no call open should not ping at all, so one ping per 2 h is its due */
const PING_WITHOUT_CALLS_MS = 2 * 60 * 60 * 1000;
const MAX_PING_STRIKES = 2;

export interface ConnectionOptions {
  /** --max-concurrent-streams: streams beyond it are refused with REFUSED_STREAM */
  maxConcurrentStreams: number;
  /** how long the client has to send its preface and SETTINGS */
  handshakeTimeoutMs: number;
  /** a new stream and its request headers; the callee sets `stream.sink` */
  onStream(stream: H2Stream, headers: HeaderList): void;
  /** hears why a connection was closed for what the client sent */
  onRefused?: (err: ConnectionError) => void;
  /** --grpc-keepalive-interval: how often the client is probed with a PING; 0: never (etcd's: when either is 0) */
  keepaliveTimeMs?: number;
  /** --grpc-keepalive-timeout: how long it has to answer before the connection is closed; 0: never probed */
  keepaliveTimeoutMs?: number;
  /** --grpc-keepalive-min-time: the shortest interval between a client's pings while it has calls open */
  keepaliveMinTimeMs?: number;
}

/** A header block arriving in pieces (HEADERS without END_HEADERS, then CONTINUATION). */
interface PendingBlock {
  streamId: number;
  endStream: boolean;
  parts: Buffer[];
  bytes: number;
}

const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0);
const KEEPALIVE_PING = Buffer.from('etcd-ts!', 'latin1');

export class H2Connection implements StreamOwner {
  readonly peer: string;
  readonly peerCommonName: string | undefined;
  private readonly streams = new Map<number, H2Stream>();
  private readonly reader: FrameReader;
  private readonly decoder = new HpackDecoder();
  private lastStreamId = 0;
  private pendingBlock: PendingBlock | undefined;
  private settingsReceived = false;
  private firstRequestSeen = false;
  private bytesBeforeFirstRequest = 0;
  // what the client allows the server
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  // what the server allows the client
  private recvWindow = CONNECTION_RECV_WINDOW;
  private recvUnacked = 0;
  /** streams with data queued, waiting for the connection window or the socket */
  private readonly blocked = new Set<H2Stream>();
  // abuse counters
  private resetTokens = RESET_BURST;
  private resetTokensAt = Date.now();
  private refusedStreams = 0;
  private emptyFrames = 0;
  private queuedAcks = 0;
  // output: frames gathered during a turn, written together
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveTimeout: NodeJS.Timeout | undefined;
  /** when the client last pinged (0: never), its strikes, and whether a response went out since */
  private lastPingAt = 0;
  private pingStrikes = 0;
  private respondedSincePing = false;
  /** a GOAWAY was sent or the socket is gone: nothing more is read */
  private dead = false;

  constructor(
    private readonly socket: Duplex,
    private readonly opts: ConnectionOptions,
  ) {
    const s = socket as Duplex & { remoteAddress?: string; remotePort?: number };
    this.peer = s.remoteAddress !== undefined ? `${s.remoteAddress}:${s.remotePort}` : 'unknown';
    this.peerCommonName = commonName(socket);
    this.reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE, (type, flags, id, payload) => this.onFrame(type, flags, id, payload));
    (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const settings: Array<[number, number]> = [
      [Setting.INITIAL_WINDOW_SIZE, STREAM_RECV_WINDOW],
      [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES],
    ];
    if (opts.maxConcurrentStreams < 2 ** 32 - 1) settings.unshift([Setting.MAX_CONCURRENT_STREAMS, opts.maxConcurrentStreams]);
    this.queue(settingsFrame(settings));
    this.queue(uint32Frame(FrameType.WINDOW_UPDATE, 0, CONNECTION_RECV_WINDOW - DEFAULT_WINDOW));
    this.handshakeTimer = setTimeout(
      () => this.fail(new ConnectionError(`HTTP/2: no preface and SETTINGS from the client within ${opts.handshakeTimeoutMs} ms`, ErrorCode.SETTINGS_TIMEOUT)),
      opts.handshakeTimeoutMs,
    );
    const keepaliveTimeMs = opts.keepaliveTimeMs ?? KEEPALIVE_TIME_MS;
    if (keepaliveTimeMs > 0 && (opts.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS) > 0) {
      this.keepaliveTimer = setInterval(() => this.probe(), keepaliveTimeMs);
      this.keepaliveTimer.unref();
    }
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('drain', () => this.onSocketDrain());
    // a reset is the socket owner's to log; 'close' follows
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
    socket.resume();
  }

  /** How many streams are open (the call has not ended). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Closes the connection at once: calls in flight are cancelled, their clients see Unavailable. */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- reading

  private onBytes(chunk: Buffer): void {
    if (this.dead) return;
    try {
      this.reader.push(chunk, () => this.dead);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.fail(err);
      return;
    }
    this.flush();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.settingsReceived && (type !== FrameType.SETTINGS || flags & Flag.ACK)) {
      throw new ConnectionError(`HTTP/2: the client's first frame is ${frameTypeName(type)}, not SETTINGS`);
    }
    if (this.pendingBlock !== undefined && (type !== FrameType.CONTINUATION || id !== this.pendingBlock.streamId)) {
      throw new ConnectionError(`HTTP/2: ${frameTypeName(type)} in the middle of stream ${this.pendingBlock.streamId}'s header block`);
    }
    if (!this.firstRequestSeen && type !== FrameType.HEADERS) {
      this.bytesBeforeFirstRequest += FRAME_HEADER_BYTES + payload.length;
      if (this.bytesBeforeFirstRequest > MAX_BYTES_BEFORE_FIRST_REQUEST) {
        throw new ConnectionError(
          `HTTP/2: ${this.bytesBeforeFirstRequest} bytes of frames before the first request, above the ${MAX_BYTES_BEFORE_FIRST_REQUEST} allowed`,
          ErrorCode.ENHANCE_YOUR_CALM,
        );
      }
    }
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, id, payload);
      case FrameType.HEADERS:
        return this.onHeaders(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError('HTTP/2: PRIORITY on stream 0');
        if (payload.length !== 5) throw new ConnectionError(`HTTP/2: PRIORITY of ${payload.length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        return; // gRPC's streams are not prioritized
      case FrameType.RST_STREAM:
        return this.onRstStream(id, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError('HTTP/2: PUSH_PROMISE from a client');
      case FrameType.PING:
        return this.onPing(flags, id, payload);
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(`HTTP/2: GOAWAY on stream ${id}`);
        if (payload.length < 8) throw new ConnectionError(`HTTP/2: GOAWAY of ${payload.length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        return; // the client will close; its streams in flight finish or see the socket go
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      default:
        return; // unknown types are ignored (§5.5)
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError('HTTP/2: DATA on stream 0');
    if (id > this.lastStreamId) throw new ConnectionError(`HTTP/2: DATA on idle stream ${id}`);
    // the whole frame counts against the windows, padding included (§6.9.1)
    this.recvWindow -= payload.length;
    if (this.recvWindow < 0) throw new ConnectionError('HTTP/2: DATA beyond the connection window', ErrorCode.FLOW_CONTROL_ERROR);
    this.recvUnacked += payload.length;
    if (this.recvUnacked >= CONNECTION_RECV_WINDOW / 2) {
      this.queue(uint32Frame(FrameType.WINDOW_UPDATE, 0, this.recvUnacked));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    const data = unpad(flags, payload, 'DATA');
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (data.length === 0 && !endStream) this.countEmptyFrame();
    const stream = this.streams.get(id);
    // a stream this server has ended: the client's frames in flight are dropped
    if (stream === undefined) return;
    if (stream.remoteEnded) return this.reset(stream, ErrorCode.STREAM_CLOSED);
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return this.reset(stream, ErrorCode.FLOW_CONTROL_ERROR);
    if (endStream) stream.remoteEnded = true;
    else {
      stream.recvUnacked += payload.length;
      if (stream.recvUnacked >= STREAM_RECV_WINDOW / 2) {
        this.queue(uint32Frame(FrameType.WINDOW_UPDATE, id, stream.recvUnacked));
        stream.recvWindow += stream.recvUnacked;
        stream.recvUnacked = 0;
      }
    }
    if (data.length > 0) stream.sink?.onData(data);
    if (endStream && !stream.closed) stream.sink?.onHalfClose();
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || id % 2 === 0) throw new ConnectionError(`HTTP/2: HEADERS on stream ${id}`);
    let fragment = unpad(flags, payload, 'HEADERS');
    if (flags & Flag.PRIORITY) {
      if (fragment.length < 5) throw new ConnectionError('HTTP/2: HEADERS too short for its priority', ErrorCode.FRAME_SIZE_ERROR);
      fragment = fragment.subarray(5);
    }
    this.firstRequestSeen = true;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) return this.onHeaderBlock(id, endStream, fragment);
    if (fragment.length === 0) this.countEmptyFrame();
    this.pendingBlock = { streamId: id, endStream, parts: [Buffer.from(fragment)], bytes: fragment.length };
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const block = this.pendingBlock;
    if (block === undefined) throw new ConnectionError(`HTTP/2: CONTINUATION on stream ${id} without HEADERS`);
    block.bytes += payload.length;
    if (block.bytes > MAX_HEADER_BLOCK_BYTES) {
      throw new ConnectionError(`HTTP/2: header block above ${MAX_HEADER_BLOCK_BYTES} bytes`, ErrorCode.ENHANCE_YOUR_CALM);
    }
    if (payload.length === 0 && (flags & Flag.END_HEADERS) === 0) this.countEmptyFrame();
    block.parts.push(Buffer.from(payload));
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.pendingBlock = undefined;
    this.onHeaderBlock(block.streamId, block.endStream, Buffer.concat(block.parts, block.bytes));
  }

  private onHeaderBlock(id: number, endStream: boolean, block: Buffer): void {
    // decoded whatever becomes of the stream: the client's table moves on with every block
    const headers = this.decoder.decode(block, MAX_HEADER_LIST_BYTES);
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // trailers from the client: gRPC sends none, but they are how a request may end (§8.1)
      if (!endStream || existing.remoteEnded) return this.reset(existing, ErrorCode.PROTOCOL_ERROR);
      existing.remoteEnded = true;
      existing.sink?.onHalfClose();
      return;
    }
    if (id <= this.lastStreamId) throw new ConnectionError(`HTTP/2: HEADERS on closed stream ${id}`, ErrorCode.STREAM_CLOSED);
    this.lastStreamId = id;
    const stream = new H2Stream(id, this, this.peerInitialWindow, STREAM_RECV_WINDOW);
    if (this.streams.size >= this.opts.maxConcurrentStreams) {
      this.queueAck(uint32Frame(FrameType.RST_STREAM, id, ErrorCode.REFUSED_STREAM));
      if (++this.refusedStreams > MAX_REFUSED_STREAMS) {
        throw new ConnectionError(`HTTP/2: more than ${MAX_REFUSED_STREAMS} streams refused past the limit of ${this.opts.maxConcurrentStreams}`, ErrorCode.ENHANCE_YOUR_CALM);
      }
      return;
    }
    if (headers.tooLarge) {
      this.queueAck(uint32Frame(FrameType.RST_STREAM, id, ErrorCode.ENHANCE_YOUR_CALM));
      return;
    }
    this.streams.set(id, stream);
    stream.remoteEnded = endStream;
    this.opts.onStream(stream, headers);
    if (endStream && !stream.closed) stream.sink?.onHalfClose();
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError('HTTP/2: RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(`HTTP/2: RST_STREAM of ${payload.length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
    if (id > this.lastStreamId) throw new ConnectionError(`HTTP/2: RST_STREAM on idle stream ${id}`);
    const now = Date.now();
    this.resetTokens = Math.min(RESET_BURST, this.resetTokens + ((now - this.resetTokensAt) / 1000) * RESET_RATE_PER_S);
    this.resetTokensAt = now;
    if (--this.resetTokens < 0) throw new ConnectionError('HTTP/2: too many streams reset by the client', ErrorCode.ENHANCE_YOUR_CALM);
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    this.forget(stream);
    stream.sink?.onReset();
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(`HTTP/2: SETTINGS on stream ${id}`);
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError('HTTP/2: SETTINGS ACK with a payload', ErrorCode.FRAME_SIZE_ERROR);
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(`HTTP/2: SETTINGS of ${payload.length} bytes, not a multiple of 6`, ErrorCode.FRAME_SIZE_ERROR);
    let windowGrew = false;
    for (let pos = 0; pos < payload.length; pos += 6) {
      const setting = payload.readUInt16BE(pos);
      const value = payload.readUInt32BE(pos + 2);
      switch (setting) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(`HTTP/2: SETTINGS_ENABLE_PUSH of ${value}`);
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionError(`HTTP/2: SETTINGS_INITIAL_WINDOW_SIZE of ${value}`, ErrorCode.FLOW_CONTROL_ERROR);
          // every open stream's window moves by the change (§6.9.2)
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(`HTTP/2: stream ${s.id}'s window above 2^31-1`, ErrorCode.FLOW_CONTROL_ERROR);
          }
          windowGrew ||= delta > 0;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) throw new ConnectionError(`HTTP/2: SETTINGS_MAX_FRAME_SIZE of ${value}`);
          this.peerMaxFrameSize = value;
          break;
        default:
          // HEADER_TABLE_SIZE: responses never use the table; MAX_CONCURRENT_STREAMS: no
          // server push; MAX_HEADER_LIST_SIZE: responses are a few fields; others unknown
          break;
      }
    }
    if (!this.settingsReceived) {
      this.settingsReceived = true;
      clearTimeout(this.handshakeTimer);
    }
    this.queueAck(SETTINGS_ACK);
    if (windowGrew) for (const s of this.streams.values()) this.pump(s);
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(`HTTP/2: PING on stream ${id}`);
    if (payload.length !== 8) throw new ConnectionError(`HTTP/2: PING of ${payload.length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
    if (flags & Flag.ACK) {
      if (payload.equals(KEEPALIVE_PING)) {
        clearTimeout(this.keepaliveTimeout);
        this.keepaliveTimeout = undefined;
      }
      return;
    }
    this.queueAck(frame(FrameType.PING, Flag.ACK, 0, payload));
    this.enforceKeepalive();
  }

  /** grpc-go's handlePing policy (see the top of the file), with its thresholds and words. */
  private enforceKeepalive(): void {
    const now = Date.now();
    const since = now - this.lastPingAt;
    this.lastPingAt = now;
    if (this.respondedSincePing) {
      this.respondedSincePing = false;
      this.pingStrikes = 0;
      return;
    }
    const due = this.streams.size === 0 ? PING_WITHOUT_CALLS_MS : (this.opts.keepaliveMinTimeMs ?? KEEPALIVE_MIN_TIME_MS);
    if (since < due) this.pingStrikes++;
    if (this.pingStrikes > MAX_PING_STRIKES) throw new ConnectionError('too_many_pings', ErrorCode.ENHANCE_YOUR_CALM);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(`HTTP/2: WINDOW_UPDATE of ${payload.length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError('HTTP/2: WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError('HTTP/2: WINDOW_UPDATE takes the connection window above 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
      this.pumpBlocked();
      return;
    }
    if (id > this.lastStreamId) throw new ConnectionError(`HTTP/2: WINDOW_UPDATE on idle stream ${id}`);
    const stream = this.streams.get(id);
    if (stream === undefined) return; // ended already
    if (increment === 0) return this.reset(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.reset(stream, ErrorCode.FLOW_CONTROL_ERROR);
    this.pump(stream);
  }

  private countEmptyFrame(): void {
    if (++this.emptyFrames > MAX_EMPTY_FRAMES) throw new ConnectionError(`HTTP/2: more than ${MAX_EMPTY_FRAMES} frames that carry nothing`, ErrorCode.ENHANCE_YOUR_CALM);
  }

  // ---- writing (StreamOwner)

  sendHeaders(stream: H2Stream, block: Buffer, endStream: boolean): void {
    this.respondedSincePing = true;
    const max = this.peerMaxFrameSize;
    const first = block.subarray(0, max);
    let flags = block.length <= max ? Flag.END_HEADERS : 0;
    if (endStream) flags |= Flag.END_STREAM;
    this.queue(frameHeader(first.length, FrameType.HEADERS, flags, stream.id));
    this.queue(first);
    for (let pos = max; pos < block.length; pos += max) {
      const piece = block.subarray(pos, pos + max);
      this.queue(frameHeader(piece.length, FrameType.CONTINUATION, pos + max >= block.length ? Flag.END_HEADERS : 0, stream.id));
      this.queue(piece);
    }
    if (endStream) this.endLocally(stream);
  }

  pump(stream: H2Stream): void {
    while (stream.queuedBytes > 0) {
      if (this.outBytes + this.socketBuffered() >= SEND_BUFFER_BYTES || this.sendWindow <= 0) {
        this.blocked.add(stream);
        return;
      }
      const n = Math.min(stream.queuedBytes, stream.sendWindow, this.sendWindow, this.peerMaxFrameSize);
      if (n <= 0) return; // the stream's own window: its WINDOW_UPDATE pumps it again
      this.queue(frameHeader(n, FrameType.DATA, 0, stream.id));
      this.respondedSincePing = true;
      this.takeQueued(stream, n);
      stream.sendWindow -= n;
      this.sendWindow -= n;
    }
    this.blocked.delete(stream);
    if (stream.trailers !== undefined) {
      this.sendHeaders(stream, stream.trailers, true);
      return;
    }
    if (stream.needDrain) {
      stream.needDrain = false;
      stream.sink?.onDrain();
    }
  }

  reset(stream: H2Stream, code: number): void {
    this.queueAck(uint32Frame(FrameType.RST_STREAM, stream.id, code));
    this.forget(stream);
    // the call ends as cancelled, as if the client had gone
    stream.sink?.onReset();
  }

  /** The server has ended its side: a client still sending is told to stop, as grpc-go does. */
  private endLocally(stream: H2Stream): void {
    if (!stream.remoteEnded) this.queue(uint32Frame(FrameType.RST_STREAM, stream.id, ErrorCode.NO_ERROR));
    this.forget(stream);
  }

  private forget(stream: H2Stream): void {
    stream.closed = true;
    stream.queued.length = 0;
    stream.queuedBytes = 0;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
  }

  /** Moves `n` bytes of the stream's queue to the output, as views of the queued buffers. */
  private takeQueued(stream: H2Stream, n: number): void {
    stream.queuedBytes -= n;
    while (n > 0) {
      const head = stream.queued[0]!;
      if (head.length <= n) {
        stream.queued.shift();
        this.queue(head);
        n -= head.length;
      } else {
        this.queue(head.subarray(0, n));
        stream.queued[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  private pumpBlocked(): void {
    for (const s of [...this.blocked]) {
      this.blocked.delete(s);
      this.pump(s);
    }
  }

  private onSocketDrain(): void {
    this.queuedAcks = 0;
    this.pumpBlocked();
  }

  private socketBuffered(): number {
    return this.socket.writableLength;
  }

  /** An acknowledgement or reset, which a client that does not read must not pile up without end. */
  private queueAck(f: Buffer): void {
    if (this.socket.writableNeedDrain && ++this.queuedAcks > MAX_QUEUED_ACKS) {
      this.fail(new ConnectionError(`HTTP/2: more than ${MAX_QUEUED_ACKS} acknowledgements queued for a client that does not read`, ErrorCode.ENHANCE_YOUR_CALM));
      return;
    }
    this.queue(f);
  }

  private queue(b: Buffer): void {
    if (this.dead) return;
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // every frame of this turn (a batch of responses, say) goes in one write
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed || this.socket.writableEnded) return;
    const out = this.out;
    const bytes = this.outBytes;
    probe?.mark('client-write', bytes);
    this.out = [];
    this.outBytes = 0;
    if (out.length === 1) this.socket.write(out[0]!);
    else if (bytes <= 64 * 1024) this.socket.write(Buffer.concat(out, bytes));
    else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
  }

  // ---- the connection's end

  /** Ends the connection for what the client did: GOAWAY with the error's code, then close. */
  private fail(err: ConnectionError): void {
    if (this.dead) return;
    this.dead = true;
    this.opts.onRefused?.(err);
    this.socket.pause();
    this.out.push(goawayFrame(this.lastStreamId, err.code, err.message));
    this.outBytes += this.out.at(-1)!.length;
    this.flush();
    // closed once the GOAWAY is written (or soon, for a client that does not read)
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    timer.unref();
    this.socket.once('finish', () => this.socket.destroy());
    this.cancelAll();
  }

  /** Probes the client with a PING; no answer in time closes the connection. */
  private probe(): void {
    if (this.keepaliveTimeout !== undefined || this.dead) return;
    this.keepaliveTimeout = setTimeout(() => this.socket.destroy(), this.opts.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS);
    this.keepaliveTimeout.unref();
    this.queue(frame(FrameType.PING, 0, 0, KEEPALIVE_PING));
  }

  private onClose(): void {
    this.dead = true;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.keepaliveTimeout);
    this.cancelAll();
  }

  private cancelAll(): void {
    for (const s of [...this.streams.values()]) {
      this.forget(s);
      s.sink?.onReset();
    }
  }
}

/** A padded frame's content (§6.1): without its pad-length byte and padding. */
function unpad(flags: number, payload: Buffer, what: string): Buffer {
  if ((flags & Flag.PADDED) === 0) return payload;
  if (payload.length < 1) throw new ConnectionError(`HTTP/2: ${what} too short for its padding`, ErrorCode.FRAME_SIZE_ERROR);
  const pad = payload[0]!;
  if (pad >= payload.length) throw new ConnectionError(`HTTP/2: ${what} padding longer than the frame`);
  return payload.subarray(1, payload.length - pad);
}

/** The Common Name of a verified client certificate: etcd authenticates a call without a token as that name. */
function commonName(socket: Duplex): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
