// A socket seen through the plain stream API. A TLS socket built on it reads through
// JavaScript (Node wraps it in a JSStreamSocket) rather than taking over the native handle,
// so bytes already read from the socket and put back with unshift() reach the TLS layer:
// what a port serving both http:// and https:// needs once it has read the first byte to
// tell a TLS ClientHello from plain text. Only such connections pay the extra copy.

import { Duplex } from 'node:stream';
import type net from 'node:net';

export class SocketStream extends Duplex {
  constructor(private readonly socket: net.Socket) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }

}
