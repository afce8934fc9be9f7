// Cuts a client's byte stream into HTTP/2 frames: the preface first, then each frame
// whole, its size checked from its header before any of its payload is held, so a
// connection never buffers more than one frame of the size this server advertised.

import { CLIENT_PREFACE, ConnectionError, ErrorCode, FRAME_HEADER_BYTES } from './frames.js';

/** Called for each frame; `payload` is a view of the bytes read, valid until the handler returns or keeps it. */
export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => void;

export class FrameReader {
  private prefaceLeft = CLIENT_PREFACE.length;
  /** the start of a frame that has not arrived whole */
  private rest: Buffer | undefined;

  constructor(
    /** SETTINGS_MAX_FRAME_SIZE as this server advertised it */
    private readonly maxFrameSize: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /**
   * Reads `chunk`, calling the handler for every frame it completes; throws a
   * ConnectionError for a wrong preface or an over-large frame. `stopped` is asked after
   * each frame: a handler that ended the connection stops the reading.
   */
  push(chunk: Buffer, stopped: () => boolean): void {
    const buf = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = undefined;
    let pos = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      const at = CLIENT_PREFACE.length - this.prefaceLeft;
      if (!buf.subarray(0, n).equals(CLIENT_PREFACE.subarray(at, at + n))) throw new ConnectionError('HTTP/2: the client preface is wrong');
      this.prefaceLeft -= n;
      pos = n;
    }
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const length = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
      if (length > this.maxFrameSize) {
        throw new ConnectionError(`HTTP/2: frame of ${length} bytes above the ${this.maxFrameSize} allowed`, ErrorCode.FRAME_SIZE_ERROR);
      }
      const end = pos + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      this.onFrame(type, flags, streamId, buf.subarray(pos + FRAME_HEADER_BYTES, end));
      pos = end;
      if (stopped()) return;
    }
    if (pos < buf.length) {
      // a few bytes of a big chunk are copied, so that the chunk itself can go
      const left = buf.subarray(pos);
      this.rest = left.length < 1024 && buf.length > 16 * 1024 ? Buffer.from(left) : left;
    }
  }
}
