// How a client's HTTP/2 connection reaches the gRPC server. Node's HTTP/2 session is fastest
// on the bare socket: nghttp2 then reads and writes the socket's handle itself. Any other
// stream (such as the authority shim, AuthorityFixingConnection) is wrapped by Node in a
// JSStreamSocket, through which every byte crosses JavaScript twice and every write waits a
// turn of the event loop; with goload at 64 clients that halved the member's throughput.
//
// So until its first request, a connection is read here, by an AuthorityRewriter that checks
// every frame (first-request.ts) and holds the first request's header block until it is
// whole. The listener sends an empty SETTINGS frame at once (grpc-go sends no request before
// the server's SETTINGS) and cuts the client's ACK of it from the stream. Then:
//   - the first request's :authority needs no mending and the ACK is cut: the bytes read are
//     given back to the socket and the bare socket goes to the gRPC server, whose session
//     reads them first (Node's Http2Session takes what a socket already holds);
//   - anything else goes through the shim, with the rewriter as it stands: an authority to
//     mend; a PING, or a client still without its first request or ACK after SESSION_WAIT_MS
//     (only a session answers a PING, and acknowledges the client's SETTINGS: nghttp2 sends that
//     ACK for the SETTINGS it reads, so nobody else may send it before); more than
//     MAX_HELD_BYTES waiting; and a client refused for what it sent (the session sends the GOAWAY).
// A real client's first request comes within a round trip of the listener's SETTINGS, so only
// the clients with URL authorities, or that wait before their first call, pay for the shim.

import type http2 from 'node:http2';
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ConnectionInjector } from '../grpc/server.js';
import { AuthorityFixingConnection, AuthorityRewriter, asConnectionError } from './authority.js';
import { type ConnectionError, FrameType, frameHeader } from './h2.js';

/** How long a client may go without its first request (and ACK) before the shim takes over. */
export const SESSION_WAIT_MS = 1000;
/** Bytes a client may send between its first request and its ACK before the shim takes over. */
const MAX_HELD_BYTES = 1 << 20;

const EMPTY_SETTINGS = frameHeader(0, FrameType.SETTINGS, 0, 0);

export interface GrpcConnectionOptions {
  /** How long the client has to send its preface and SETTINGS. */
  handshakeTimeoutMs: number;
  /** Hears why a connection was refused. */
  onRefused?: (err: ConnectionError) => void;
}

/**
 * Serves one client HTTP/2 connection (the socket holds what the listener read of it, from
 * the preface on) to the gRPC server: bare once its first request is seen to be clean, else
 * through the authority shim. See the top of this file.
 */
export function serveGrpcConnection(injector: ConnectionInjector, socket: net.Socket, opts: GrpcConnectionOptions): void {
  const started = Date.now();
  const rewriter = new AuthorityRewriter({ cutSettingsAck: true });
  const held: Buffer[] = [];
  let heldBytes = 0;

  const stopReading = (): void => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.pause();
  };
  // The session writes to the socket's native handle itself, and Node aborts the whole
  // process (TLSWrap's `!current_write_` assertion) if a write made from JavaScript is still
  // in flight on a TLS socket then; that is the rule for a TLS socket layered on a stream
  // (the port serving http:// and https://), whose writes always complete a turn later. So
  // the session gets the socket only once the listener's SETTINGS write has completed.
  let settingsWritten = false;
  let sessionWaiting = false;
  const toSession = (): void => {
    stopReading();
    if (heldBytes > 0) socket.unshift(Buffer.concat(held, heldBytes));
    if (settingsWritten) inject();
    else sessionWaiting = true;
  };
  const inject = (): void => {
    if (socket.destroyed) return;
    const session = injector.injectConnection(socket);
    exposePeerCommonName(session, socket);
  };
  const toShim = (refusal?: ConnectionError, ended = false): void => {
    stopReading();
    const conn = injectThroughShim(injector, socket, {
      rewriter,
      received: held,
      ended,
      handshakeTimeoutMs: Math.max(0, opts.handshakeTimeoutMs - (Date.now() - started)),
      onRefused: opts.onRefused,
    });
    if (refusal !== undefined) conn.refuse(refusal);
  };
  const onData = (chunk: Buffer): void => {
    let out: Buffer[];
    try {
      out = rewriter.transform(chunk);
    } catch (err) {
      toShim(asConnectionError(err));
      return;
    }
    for (const b of out) {
      held.push(b);
      heldBytes += b.length;
    }
    if (rewriter.passingAll) toSession();
    else if (rewriter.rewriting || rewriter.pingReceived || heldBytes > MAX_HELD_BYTES) toShim();
  };
  // A client that closes its side early: the session hears it, as from any other.
  const onEnd = (): void => toShim(undefined, true);
  const timer = setTimeout(() => toShim(), Math.min(SESSION_WAIT_MS, opts.handshakeTimeoutMs));
  socket.once('close', () => clearTimeout(timer));
  socket.setNoDelay(true);
  socket.write(EMPTY_SETTINGS, () => {
    settingsWritten = true;
    if (sessionWaiting) inject();
  });
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.resume();
}

/**
 * Hands a client's HTTP/2 connection to the gRPC server through an AuthorityFixingConnection, and
 * carries the client's address over to the session the gRPC server gets, so that call.getPeer()
 * still names the client. A refused connection ends with a GOAWAY carrying the error's code,
 * sent by the session (which knows the last stream it handled); `onRefused` hears why.
 */
function injectThroughShim(
  injector: ConnectionInjector,
  socket: net.Socket,
  opts: { rewriter: AuthorityRewriter; received: readonly Buffer[]; ended: boolean; handshakeTimeoutMs: number; onRefused?: (err: ConnectionError) => void },
): AuthorityFixingConnection {
  let session: http2.ServerHttp2Session | undefined;
  const conn = new AuthorityFixingConnection(socket, {
    rewriter: opts.rewriter,
    received: opts.received,
    ended: opts.ended,
    handshakeTimeoutMs: opts.handshakeTimeoutMs,
    refuse: (err) => {
      opts.onRefused?.(err);
      // The error reaches only the HTTP/2 server's 'sessionError', which nobody hears.
      if (session !== undefined && !session.destroyed) session.destroy(err, err.code);
      else conn.destroy();
    },
  });
  session = injector.injectConnection(conn);
  exposePeerAddress(session, socket);
  exposePeerCommonName(session, socket);
  return conn;
}

/**
 * The Common Name of a verified client certificate, set on the session's socket wrapper
 * (as exposePeerAddress sets the addresses) for calls to read: etcd authenticates a call
 * without a token as that name.
 */
function exposePeerCommonName(session: http2.ServerHttp2Session | undefined, socket: net.Socket): void {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return;
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  if (typeof cn !== 'string' || cn === '') return;
  try {
    (session?.socket as unknown as Record<string, unknown> | undefined)!.peerCommonName = cn;
  } catch {
    // a session already gone: nobody will ask
  }
}

/**
 * Node's HTTP/2 session wraps a stream that is not a real socket in a socket of its own
 * (JSStreamSocket) whose addresses are empty. Through the session's socket proxy, the
 * wrapper's cached peer and local names are set. If Node ever stops allowing that, peers are
 * just unnamed.
 */
function exposePeerAddress(session: http2.ServerHttp2Session | undefined, socket: net.Socket): void {
  try {
    const wrapper = session?.socket as unknown as Record<string, unknown> | undefined;
    if (wrapper === undefined || wrapper.remoteAddress !== undefined) return;
    wrapper._peername = { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily };
    wrapper._sockname = { address: socket.localAddress, port: socket.localPort, family: socket.localFamily };
  } catch {
    // The session may already be gone, and with it the need for a name.
  }
}
