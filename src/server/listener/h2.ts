// The few HTTP/2 facts (RFC 9113) the listener needs to follow a client's frames before
// Node's HTTP/2 session reads them: frame layout, frame types and error codes.

/** The 24 bytes every HTTP/2 client connection starts with (RFC 9113 §3.4). */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;

/** Frame types (§6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** A frame type's name for messages: "DATA", or "type 0xfe" for extension types. */
export function frameTypeName(type: number): string {
  const name = Object.entries(FrameType).find(([, t]) => t === type)?.[0];
  return name ?? `type 0x${type.toString(16)}`;
}

/** Error codes (§7), as a GOAWAY carries them. */
export const ErrorCode = {
  PROTOCOL_ERROR: 0x1,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  FRAME_SIZE_ERROR: 0x6,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * What Node's HTTP/2 server (so the gRPC server's) advertises and never changes: the largest
 * frame a client may send, and the dynamic table its HPACK encoder may use.
 */
export const NODE_MAX_FRAME_SIZE = 16384;
export const NODE_HEADER_TABLE_SIZE = 4096;

/** A client broke the protocol (or a limit): its connection ends with a GOAWAY carrying `code`. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(
    message: string,
    readonly code: ErrorCode = ErrorCode.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}
