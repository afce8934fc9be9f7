// The floor under any HTTP/2 server for bench/grpc/server.ts: a server that does only
// HTTP/2's framing for unary gRPC calls on one method and nothing else — no HPACK
// decoding (every request is taken to be the one method), no flow-control accounting
// beyond a window opened wide at the start, no stream objects, responses written from
// pre-encoded header blocks, one socket write per read. It is not a server anyone could
// run (it ignores what the client's headers say); it answers what a call would cost if
// the server's HTTP/2 layer cost nothing but frames, beside the member's GrpcServer and grpc-js's.
// Its frames come from the member's own HTTP/2 layer (src/server/grpc/h2/frames.ts).

import type net from 'node:net';
import { CLIENT_PREFACE as PREFACE, FRAME_HEADER_BYTES as FRAME_HEADER, Flag, FrameType, frame, Setting } from '../../src/server/grpc/h2/frames.js';

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
  settings.writeUInt16BE(Setting.INITIAL_WINDOW_SIZE, 0);
  settings.writeUInt32BE(WIDE_WINDOW, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(WIDE_WINDOW, 0);
  socket.write(Buffer.concat([frame(FrameType.SETTINGS, 0, 0, settings), frame(FrameType.WINDOW_UPDATE, 0, 0, increment)]));
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
        case FrameType.SETTINGS:
          if ((flags & Flag.ACK) === 0) out.push(frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0)));
          break;
        case FrameType.PING:
          if ((flags & Flag.ACK) === 0) out.push(frame(FrameType.PING, Flag.ACK, 0, payload));
          break;
        case FrameType.HEADERS:
          bodies.set(stream, []);
          break;
        case FrameType.DATA: {
          const parts = bodies.get(stream);
          if (parts === undefined) break;
          parts.push(Buffer.from(payload));
          if ((flags & Flag.END_STREAM) === 0) break;
          bodies.delete(stream);
          const body = Buffer.concat(parts);
          const response = handle(body.subarray(5));
          const message = Buffer.allocUnsafe(5 + response.length);
          message[0] = 0;
          message.writeUInt32BE(response.length, 1);
          response.copy(message, 5);
          out.push(
            frame(FrameType.HEADERS, Flag.END_HEADERS, stream, RESPONSE_HEADERS),
            frame(FrameType.DATA, 0, stream, message),
            frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream, TRAILERS),
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
