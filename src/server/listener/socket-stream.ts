// A socket seen through the plain stream API. A TLS socket built on it reads through
// JavaScript (Node wraps it in a JSStreamSocket) rather than taking over the native handle,
// so bytes already read from the socket and put back with unshift() reach the TLS layer:
// what a port serving both http:// and https:// needs once it has read the first byte to
// tell a TLS ClientHello from plain text. Only such connections pay the extra copy.
//
// It also lets the listener refuse a connection after Node's handshake the way Go's TLS
// server refuses it during its own, with an alert the peer can read (tls-refusal.ts): until
// the connection is judged, it keeps the records the server has sent and passes each on only
// once whole, so that an alert never lands inside a record; and it reads the ClientHello's
// random, by which the server's key log names the connection.

import { Duplex } from 'node:stream';
import type net from 'node:net';

/** How long a refused connection is kept open, read and discarded, for the peer to read the alert and close. */
const LINGER_MS = 5_000;
/** Bytes of sent records kept for judging; a server flight is a few kilobytes, tickets included. */
const JUDGING_LIMIT = 64 * 1024;
const RECORD_HEADER_LENGTH = 5;
/** The protected records (TLS 1.3 sends every record after ServerHello as application_data). */
const APPLICATION_DATA = 23;
/** Record header (5), handshake header (4), legacy_version (2), random (32). */
const CLIENT_HELLO_RANDOM_END = 43;

/** The server's records while the connection is not judged yet. */
interface Judging {
  /** protected records sent so far, whole */
  sent: Buffer[];
  sentBytes: number;
  /** the start of a record the TLS layer has not finished writing */
  held: Buffer;
}

export class SocketStream extends Duplex {
  /** the start of the first record read, until the ClientHello's random is in it */
  private hello: Buffer | undefined = Buffer.alloc(0);
  private judging: Judging | undefined = { sent: [], sentBytes: 0, held: Buffer.alloc(0) };
  private refused = false;

  /** `onClientRandom` gets the ClientHello's random, hex, as the key log writes it. */
  constructor(
    /** the connection itself, which knows the peer's address (the TLS socket on top does not) */
    readonly socket: net.Socket,
    private readonly onClientRandom: (random: string) => void,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      if (this.refused) return; // read only so that the close is clean
      if (this.hello !== undefined) this.readHello(chunk);
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => {
      if (!this.refused) this.push(null);
    });
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /**
   * The protected records sent so far, whole, while the connection is being judged;
   * undefined once it was accepted or when they were too many to keep.
   */
  get sentRecords(): readonly Buffer[] | undefined {
    return this.judging?.sent;
  }

  /** The connection is accepted: records pass untouched from now on. */
  accept(): void {
    this.stopJudging();
  }

  /**
   * Ends the connection with `alert`, a whole record, in place of anything the TLS layer has
   * not sent yet. The socket is read to its end before it closes: closing it with unread
   * bytes would reset the connection, and the peer could lose the alert.
   */
  refuse(alert: Buffer): void {
    this.refused = true;
    this.judging = undefined;
    this.socket.setTimeout(LINGER_MS, () => this.socket.destroy());
    this.socket.end(alert);
    this.socket.resume();
  }

  override _read(): void {
    if (!this.refused) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.refused) return done();
    if (this.judging === undefined) {
      // done at once unless the socket's buffer is full: the TLS layer's write completes
      // without waiting for the kernel, as it does on a native socket
      if (this.socket.write(chunk)) done();
      else this.socket.once('drain', () => done());
      return;
    }
    const j = this.judging;
    const bytes = j.held.length === 0 ? chunk : Buffer.concat([j.held, chunk]);
    let whole = 0;
    while (whole + RECORD_HEADER_LENGTH <= bytes.length) {
      const end = whole + RECORD_HEADER_LENGTH + bytes.readUInt16BE(whole + 3);
      if (end > bytes.length) break;
      if (bytes[whole] === APPLICATION_DATA) {
        // copied, so that keeping it does not keep the whole chunk
        j.sent.push(Buffer.from(bytes.subarray(whole, end)));
        j.sentBytes += end - whole;
      }
      whole = end;
    }
    if (j.sentBytes > JUDGING_LIMIT) {
      // too much to keep: no alert for this connection, and nothing held back any more
      this.judging = undefined;
      this.socket.write(bytes, done);
      return;
    }
    j.held = Buffer.from(bytes.subarray(whole));
    if (whole > 0) this.socket.write(bytes.subarray(0, whole), done);
    else done();
  }

  // The TLS layer writes a record batch as several buffers under cork(): passed on as one
  // socket write once the connection is accepted.
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    if (this.refused || this.judging !== undefined) {
      const bytes = Buffer.concat(chunks.map((c) => c.chunk));
      return this._write(bytes, 'binary', done);
    }
    this.socket.cork();
    let room = true;
    for (const { chunk } of chunks) room = this.socket.write(chunk);
    this.socket.uncork();
    if (room) done();
    else this.socket.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.refused) return done();
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // a refused connection closes once the peer has read the alert
    if (!this.refused) this.socket.destroy();
    done(err);
  }

  private stopJudging(): void {
    const held = this.judging?.held;
    this.judging = undefined;
    if (held !== undefined && held.length > 0) this.socket.write(held);
  }

  private readHello(chunk: Buffer): void {
    const need = CLIENT_HELLO_RANDOM_END - this.hello!.length;
    this.hello = Buffer.concat([this.hello!, chunk.subarray(0, need)]);
    if (this.hello.length < CLIENT_HELLO_RANDOM_END) return;
    const h = this.hello;
    this.hello = undefined;
    // a handshake record whose first message is a ClientHello holding the whole random
    const isHello = h[0] === 0x16 && h.readUInt16BE(3) >= CLIENT_HELLO_RANDOM_END - RECORD_HEADER_LENGTH && h[5] === 0x01;
    if (isHello) this.onClientRandom(h.subarray(11, CLIENT_HELLO_RANDOM_END).toString('hex'));
    else this.stopJudging(); // nobody can name this connection: no alert for it
  }
}
