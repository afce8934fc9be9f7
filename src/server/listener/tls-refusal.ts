// Refusing a client certificate the way Go's TLS server does, with alert 42 (bad_certificate),
// although Node judges it only after its handshake (see tls13-alert.ts for why and how).
// Connections reach the TLS server through SocketStreams, which keep what the server sent
// until the connection is judged; the server's key log gives the traffic secret, and names
// the connection by its ClientHello random.
//
// Under TLS 1.2 a refused connection is just closed: its record keys would have to be derived
// from the master secret another way, and etcd-ts peers and Go clients negotiate TLS 1.3.

import type net from 'node:net';
import type tls from 'node:tls';
import { SocketStream } from './socket-stream.js';
import { BAD_CERTIFICATE, recordsSealedWith, sealedAlert, trafficKey } from './tls13-alert.js';

/** The key log label (NSS format) of the server's first application traffic secret. */
const SERVER_TRAFFIC_SECRET_0 = 'SERVER_TRAFFIC_SECRET_0';

interface Named {
  stream: SocketStream;
  /** the server's application traffic secret, once logged (TLS 1.3 only) */
  secret?: Buffer;
}

export class TlsRefusals {
  /**
   * Connections by ClientHello random until the key log names their TLS socket. A random
   * sent on two open connections names neither: no alert is better than one on the wrong
   * connection.
   */
  private readonly unnamed = new Map<string, Set<SocketStream>>();
  private readonly named = new WeakMap<tls.TLSSocket, Named>();

  constructor(server: tls.Server) {
    server.on('keylog', (line: Buffer, tlsSocket: tls.TLSSocket) => this.logged(line, tlsSocket));
  }

  /** The stream to hand the TLS server (as its 'connection') for a raw connection. */
  wrap(socket: net.Socket): SocketStream {
    const stream = new SocketStream(socket, (random) => {
      const same = this.unnamed.get(random) ?? new Set<SocketStream>();
      same.add(stream);
      this.unnamed.set(random, same);
      socket.once('close', () => {
        same.delete(stream);
        if (same.size === 0 && this.unnamed.get(random) === same) this.unnamed.delete(random);
      });
    });
    return stream;
  }

  /**
   * The TCP (or unix) connection under a TLS socket, once the key log has named it: a TLS
   * socket over a stream has no address of its own.
   */
  connectionOf(tlsSocket: tls.TLSSocket): net.Socket | undefined {
    return this.named.get(tlsSocket)?.stream.socket;
  }

  /** The connection passed its checks: what the server sends passes untouched from now on. */
  accept(tlsSocket: tls.TLSSocket): void {
    this.named.get(tlsSocket)?.stream.accept();
  }

  /** Closes the connection, with a bad_certificate alert when it negotiated TLS 1.3. */
  refuse(tlsSocket: tls.TLSSocket): void {
    const c = this.named.get(tlsSocket);
    const alert = c === undefined ? undefined : alertFor(tlsSocket, c);
    if (alert !== undefined) c!.stream.refuse(alert);
    tlsSocket.destroy();
  }

  private logged(line: Buffer, tlsSocket: tls.TLSSocket): void {
    const [label, random, secret] = line.toString('latin1').trim().split(' ');
    if (label === undefined || random === undefined || secret === undefined) return;
    let c = this.named.get(tlsSocket);
    if (c === undefined) {
      const same = this.unnamed.get(random);
      if (same === undefined || same.size !== 1) return;
      const [stream] = same;
      this.unnamed.delete(random);
      c = { stream: stream! };
      this.named.set(tlsSocket, c);
    }
    if (label === SERVER_TRAFFIC_SECRET_0) c.secret = Buffer.from(secret, 'hex');
  }
}

/** The alert record for a refused TLS 1.3 connection; undefined when none can be sealed. */
function alertFor(tlsSocket: tls.TLSSocket, c: Named): Buffer | undefined {
  const sent = c.stream.sentRecords;
  if (c.secret === undefined || sent === undefined) return undefined;
  const key = trafficKey(tlsSocket.getCipher().standardName, c.secret);
  if (key === undefined) return undefined;
  return sealedAlert(key, recordsSealedWith(key, sent), BAD_CERTIFICATE);
}
