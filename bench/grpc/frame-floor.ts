// The floor under any HTTP/2 server for bench/grpc/server.ts: a server that does only
// HTTP/2's framing for unary gRPC calls on one method and nothing else — no HPACK
// decoding (every request is taken to be the one method), no flow-control accounting
// beyond a window opened wide at the start, no stream objects, responses written from
// pre-encoded header blocks, one socket write per read. It is not a server anyone could
// run (it ignores what the client's headers say); it answers what a call would cost if
// the server's HTTP/2 layer cost nothing but frames, beside node:http2's and grpc-js's.

import type net from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const enum FrameType {
  Data = 0,
  Headers = 1,
  RstStream = 3,
  Settings = 4,
  Ping = 6,
  Goaway = 7,
  WindowUpdate = 8,
  Continuation = 9,
}
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;

function frame(type: FrameType, flags: number, stream: number, payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  f.writeUIntBE(payload.length, 0, 3);
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(stream, 5);
  payload.copy(f, FRAME_HEADER);
  return f;
}

/** A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

// ":status: 200" is static-table entry 8 (indexed: 0x88); content-type is static name 31
const RESPONSE_HEADERS = Buffer.concat([Buffer.from([0x88, 0x0f, 0x10, 16]), Buffer.from('application/grpc')]);
const TRAILERS = literal('grpc-status', '0');
const WIDE_WINDOW = 1 << 30;

/** Serves unary calls on `socket`, each answered by `handle(requestMessage)`. */
export function serveFrames(socket: net.Socket, handle: (request: Buffer) => Buffer): void {
  let buf: Buffer = Buffer.alloc(0);
  let prefaceSeen = false;
  const bodies = new Map<number, Buffer[]>();
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(WIDE_WINDOW, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(WIDE_WINDOW, 0);
  socket.write(Buffer.concat([frame(FrameType.Settings, 0, 0, settings), frame(FrameType.WindowUpdate, 0, 0, increment)]));
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!prefaceSeen) {
      if (buf.length < PREFACE.length) return;
      buf = buf.subarray(PREFACE.length);
      prefaceSeen = true;
    }
    const out: Buffer[] = [];
    while (buf.length >= FRAME_HEADER) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < FRAME_HEADER + length) break;
      const type = buf[3]!;
      const flags = buf[4]!;
      const stream = buf.readUInt32BE(5) & 0x7fff_ffff;
      const payload = buf.subarray(FRAME_HEADER, FRAME_HEADER + length);
      buf = buf.subarray(FRAME_HEADER + length);
      switch (type) {
        case FrameType.Settings:
          if ((flags & ACK) === 0) out.push(frame(FrameType.Settings, ACK, 0, Buffer.alloc(0)));
          break;
        case FrameType.Ping:
          if ((flags & ACK) === 0) out.push(frame(FrameType.Ping, ACK, 0, payload));
          break;
        case FrameType.Headers:
          bodies.set(stream, []);
          break;
        case FrameType.Data: {
          const parts = bodies.get(stream);
          if (parts === undefined) break;
          parts.push(Buffer.from(payload));
          if ((flags & END_STREAM) === 0) break;
          bodies.delete(stream);
          const body = Buffer.concat(parts);
          const response = handle(body.subarray(5));
          const message = Buffer.allocUnsafe(5 + response.length);
          message[0] = 0;
          message.writeUInt32BE(response.length, 1);
          response.copy(message, 5);
          out.push(
            frame(FrameType.Headers, END_HEADERS, stream, RESPONSE_HEADERS),
            frame(FrameType.Data, 0, stream, message),
            frame(FrameType.Headers, END_HEADERS | END_STREAM, stream, TRAILERS),
          );
          break;
        }
        default:
          // WINDOW_UPDATE, RST_STREAM, GOAWAY, CONTINUATION, PRIORITY: nothing to do for the floor
          break;
      }
    }
    if (out.length > 0) socket.write(Buffer.concat(out));
  });
}
