// The frames an HTTP/2 client sends before its first request, checked one by one as they
// arrive, before Node's HTTP/2 session reads them.
//
// Node's session answers SETTINGS and PING and ignores unknown frame types, as it should,
// but it keeps reading after the GOAWAY it sends for a broken frame (DATA on stream 0, a
// frame above SETTINGS_MAX_FRAME_SIZE): the socket stays open and the client may go on
// sending. And nothing limits how much a client may send before it asks for anything. So
// until the first HEADERS frame, each frame header (and the payload of SETTINGS and
// WINDOW_UPDATE) is checked here, in constant work per byte: a frame Node would refuse is
// refused here first with the error code RFC 9113 gives it, and the connection closed; so
// is a connection whose frames before its first request pass MAX_BYTES_BEFORE_FIRST_REQUEST.
//
// What real etcd 3.4.23 (grpc-go's server behind cmux) does with the same inputs, tried on a
// plain client port: it answers SETTINGS and PING; closes the connection (no GOAWAY) on DATA
// on stream 0 or a frame above 16384 bytes; ignores a WINDOW_UPDATE that overflows the
// connection window; ignores unknown frame types of up to 16384 bytes without limit (32 MB
// before the first request were taken without complaint); resets a flood of 1 MB frames at
// the first one; keeps a connection that sent only the preface open for its 120 s handshake
// timeout. After the client's SETTINGS a connection may stay idle as long as it likes.

import { ConnectionError, ErrorCode, FRAME_HEADER_BYTES, FrameType, frameTypeName, NODE_MAX_FRAME_SIZE } from './h2.js';

/**
 * What a client may send before its first HEADERS frame, frame headers included. A real
 * client needs well under 1 KiB here (SETTINGS, WINDOW_UPDATE, the ACK of our SETTINGS, a
 * PING or two); 16 KiB is room for any of them and stops a flood at once.
 */
export const MAX_BYTES_BEFORE_FIRST_REQUEST = 16 * 1024;

const FLAG_ACK = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const MAX_WINDOW = 2 ** 31 - 1;
/** Every connection's flow-control window starts at 65535 bytes (§6.9.2). */
const INITIAL_CONNECTION_WINDOW = 65535;

/** A SETTINGS or WINDOW_UPDATE frame whose payload is being gathered to be checked whole. */
interface CheckedFrame {
  type: typeof FrameType.SETTINGS | typeof FrameType.WINDOW_UPDATE;
  parts: Buffer[];
  left: number;
}

/**
 * Follows the frames of one connection from the end of its preface to its first HEADERS
 * frame. Each method throws a ConnectionError for what the connection must be closed for.
 */
export class FirstRequestGuard {
  private bytes = 0;
  /** The client's first SETTINGS frame, which must open its side (§3.4), has arrived whole. */
  private settingsReceived = false;
  private framesSeen = 0;
  /** How much the server may send on the connection, by the client's WINDOW_UPDATEs. */
  private connectionWindow = INITIAL_CONNECTION_WINDOW;
  private checked: CheckedFrame | undefined;
  private firstRequestSeen = false;
  private pinged = false;

  constructor(private readonly maxBytes = MAX_BYTES_BEFORE_FIRST_REQUEST) {}

  /** The client has sent its preface SETTINGS: the handshake is over. */
  get handshakeDone(): boolean {
    return this.settingsReceived;
  }

  /** The first HEADERS frame has been seen: nothing more to check. */
  get done(): boolean {
    return this.firstRequestSeen;
  }

  /** The client has sent a PING (not an ACK), which waits for an answer. */
  get pingReceived(): boolean {
    return this.pinged;
  }

  /** Checks the header of the next frame; its payload follows through payload(). */
  frameHeader(length: number, type: number, flags: number, streamId: number): void {
    if (length > NODE_MAX_FRAME_SIZE) {
      throw new ConnectionError(`HTTP/2: frame of ${length} bytes above the ${NODE_MAX_FRAME_SIZE} allowed`, ErrorCode.FRAME_SIZE_ERROR);
    }
    if (this.framesSeen++ === 0 && (type !== FrameType.SETTINGS || (flags & FLAG_ACK) !== 0)) {
      throw new ConnectionError(`HTTP/2: the client's first frame is ${frameTypeName(type)}, not SETTINGS`);
    }
    if (type === FrameType.HEADERS) {
      // Client streams are odd-numbered (§5.1.1).
      if (streamId === 0 || streamId % 2 === 0) throw new ConnectionError(`HTTP/2: HEADERS on stream ${streamId}`);
      this.firstRequestSeen = true;
      return;
    }
    this.bytes += FRAME_HEADER_BYTES + length;
    if (this.bytes > this.maxBytes) {
      throw new ConnectionError(`HTTP/2: ${this.bytes} bytes of frames before the first request, above the ${this.maxBytes} allowed`, ErrorCode.ENHANCE_YOUR_CALM);
    }
    switch (type) {
      case FrameType.SETTINGS:
        if (streamId !== 0) throw new ConnectionError(`HTTP/2: SETTINGS on stream ${streamId}`);
        if (flags & FLAG_ACK) {
          if (length !== 0) throw new ConnectionError('HTTP/2: SETTINGS ACK with a payload', ErrorCode.FRAME_SIZE_ERROR);
          return;
        }
        if (length % 6 !== 0) throw new ConnectionError(`HTTP/2: SETTINGS of ${length} bytes, not a multiple of 6`, ErrorCode.FRAME_SIZE_ERROR);
        this.gather(FrameType.SETTINGS, length);
        return;
      case FrameType.WINDOW_UPDATE:
        if (length !== 4) throw new ConnectionError(`HTTP/2: WINDOW_UPDATE of ${length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        // Before the first HEADERS every stream is idle, and an idle stream has no window (§5.1).
        if (streamId !== 0) throw new ConnectionError(`HTTP/2: WINDOW_UPDATE on idle stream ${streamId}`);
        this.gather(FrameType.WINDOW_UPDATE, length);
        return;
      case FrameType.PING:
        if (streamId !== 0) throw new ConnectionError(`HTTP/2: PING on stream ${streamId}`);
        if (length !== 8) throw new ConnectionError(`HTTP/2: PING of ${length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        if ((flags & FLAG_ACK) === 0) this.pinged = true;
        return;
      case FrameType.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(`HTTP/2: GOAWAY on stream ${streamId}`);
        if (length < 8) throw new ConnectionError(`HTTP/2: GOAWAY of ${length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.PRIORITY:
        // The one stream frame allowed on an idle stream (§5.1).
        if (streamId === 0) throw new ConnectionError('HTTP/2: PRIORITY on stream 0');
        if (length !== 5) throw new ConnectionError(`HTTP/2: PRIORITY of ${length} bytes`, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.DATA:
      case FrameType.RST_STREAM:
      case FrameType.CONTINUATION:
        throw new ConnectionError(
          streamId === 0 ? `HTTP/2: ${frameTypeName(type)} on stream 0` : `HTTP/2: ${frameTypeName(type)} on idle stream ${streamId}`,
        );
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError('HTTP/2: PUSH_PROMISE from a client');
      default:
        // Unknown types are ignored (§5.5), but they count against the limit above.
        return;
    }
  }

  /** Bytes of the current frame's payload, in order. */
  payload(bytes: Buffer): void {
    const frame = this.checked;
    if (frame === undefined) return;
    frame.parts.push(bytes);
    frame.left -= bytes.length;
    if (frame.left === 0) {
      this.checked = undefined;
      this.check(frame.type, Buffer.concat(frame.parts));
    }
  }

  private gather(type: CheckedFrame['type'], length: number): void {
    if (length === 0) this.check(type, Buffer.alloc(0));
    else this.checked = { type, parts: [], left: length };
  }

  private check(type: CheckedFrame['type'], payload: Buffer): void {
    if (type === FrameType.WINDOW_UPDATE) {
      const increment = payload.readUInt32BE(0) & 0x7fffffff;
      if (increment === 0) throw new ConnectionError('HTTP/2: WINDOW_UPDATE of 0');
      this.connectionWindow += increment;
      if (this.connectionWindow > MAX_WINDOW) {
        throw new ConnectionError('HTTP/2: WINDOW_UPDATE takes the connection window above 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
      }
      return;
    }
    for (let pos = 0; pos < payload.length; pos += 6) {
      const id = payload.readUInt16BE(pos);
      const value = payload.readUInt32BE(pos + 2);
      if (id === SETTINGS_ENABLE_PUSH && value > 1) throw new ConnectionError(`HTTP/2: SETTINGS_ENABLE_PUSH of ${value}`);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE && value > MAX_WINDOW) {
        throw new ConnectionError(`HTTP/2: SETTINGS_INITIAL_WINDOW_SIZE of ${value}`, ErrorCode.FLOW_CONTROL_ERROR);
      }
      if (id === SETTINGS_MAX_FRAME_SIZE && (value < NODE_MAX_FRAME_SIZE || value > 2 ** 24 - 1)) {
        throw new ConnectionError(`HTTP/2: SETTINGS_MAX_FRAME_SIZE of ${value}`);
      }
    }
    this.settingsReceived = true;
  }
}
