// A raw HTTP/2 client connection for tests of hostile input: it writes whatever bytes it is
// given and collects every frame the server sends, and whether the server closed it.

import net from 'node:net';
import tls from 'node:tls';

const GOAWAY = 0x7;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * A raw HTTP/2 client connection: what it wrote, the frames the server sent, and whether the
 * server closed it. A reset by the server counts as closed: a socket closed with unread bytes
 * resets, which is what happens to a flood.
 */
export class RawH2 {
  readonly frames: Frame[] = [];
  written = 0;
  closedByServer = false;
  readonly closed: Promise<void>;
  private readonly socket: net.Socket;
  private inbound = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** The test closed it itself. */
  private closing = false;

  constructor(url: string, ca?: Buffer) {
    const { hostname, port } = new URL(url);
    this.socket =
      ca === undefined
        ? net.connect(Number(port), hostname)
        : tls.connect({ host: hostname, port: Number(port), ca, ALPNProtocols: ['h2'] });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: Buffer) => {
      this.inbound = Buffer.concat([this.inbound, d]);
      while (this.inbound.length >= 9) {
        const length = this.inbound.readUIntBE(0, 3);
        if (this.inbound.length < 9 + length) break;
        this.frames.push({
          type: this.inbound[3]!,
          flags: this.inbound[4]!,
          streamId: this.inbound.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.inbound.subarray(9, 9 + length)),
        });
        this.inbound = this.inbound.subarray(9 + length);
      }
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closedByServer = !this.closing;
        this.wake();
        resolve();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once the socket can take more (false: it was closed). */
  async write(bytes: Buffer): Promise<boolean> {
    if (this.socket.destroyed) return false;
    this.written += bytes.length;
    if (this.socket.write(bytes)) return true;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    return !this.socket.destroyed;
  }

  /** Waits until a frame matching `match` has arrived, or fails once the connection closed without one. */
  async frame(match: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.socket.destroyed) throw new Error(`connection closed; frames: ${JSON.stringify(this.frames.map((f) => [f.type, f.flags]))}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  goawayCode(): number | undefined {
    const g = this.frames.find((f) => f.type === GOAWAY);
    return g === undefined ? undefined : g.payload.readUInt32BE(4);
  }

  /** Stops reading what the server sends (a client that does not read), or starts again. */
  reading(on: boolean): void {
    if (on) this.socket.resume();
    else this.socket.pause();
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

