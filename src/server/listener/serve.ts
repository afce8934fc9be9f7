// One listening socket per URL carrying gRPC and HTTP/1.1 on the same port, plain or TLS,
// as etcd does with cmux: every accepted connection is classified once (by ALPN under TLS,
// else by its first bytes) and handed whole to the gRPC server (src/server/grpc) or to Node's HTTP/1.1 server.

import { rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { TlsContext } from '../tls.js';
import { sniffProtocol } from './sniff.js';
import { TlsRefusals } from './tls-refusal.js';
import { type CertNames, certNames, clientSanRefusal } from './client-san.js';
import { goTlsErrorMessage } from '../go-tls-error.js';
import { unixSocketPath } from '../config/values.js';
import type { GrpcServer } from '../grpc/server.js';

export interface Listener {
  /** The bound URL, with port 0 resolved to the port the kernel chose. */
  url: string;
  /** Stops accepting and closes every connection this listener accepted. */
  close(): Promise<void>;
}

export interface ServeOptions {
  /**
   * How long a new connection may take to finish its TLS handshake, then to send enough
   * bytes to be classified, and an HTTP/1.1 request its headers or an HTTP/2 client its
   * preface and SETTINGS, before it is dropped. Default 10 s.
   */
  handshakeTimeoutMs?: number;
  /**
   * Connections are served only once this resolves (a client port: once the member has
   * published itself, as etcd's serveClients waits for ReadyNotify); until then they are
   * accepted and left unread. Served at once when absent.
   */
  ready?: Promise<unknown>;
  /**
   * The URL is https:// (or unixs://) and the same address is also listed as http://
   * (unix://): serve both on one socket, telling a TLS ClientHello from plain text by its
   * first byte, as etcd does for `--listen-client-urls http://h:p,https://h:p`.
   */
  plainToo?: boolean;
  /**
   * A client certificate must name the address it connects from (client-san.ts), as etcd
   * checks on its peer listeners (unless --experimental-peer-skip-client-san-verification)
   * and its https metrics listeners.
   */
  checkClientSan?: boolean;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** etcd's client listeners set 30 s (transport.NewKeepAliveListener); the others keep Go's default, 15 s */
const CLIENT_TCP_KEEPALIVE_MS = 30_000;
const GO_TCP_KEEPALIVE_MS = 15_000;
/** Node's default limit for receiving a whole HTTP request. */
const HTTP_REQUEST_TIMEOUT_MS = 300_000;

/**
 * Serves gRPC (grpcServer) and HTTP/1.1 (httpListener: /health, /version, /metrics, ...)
 * on one client URL. `tls` is used for https:// URLs only: an http:// URL next to https://
 * ones is served in the clear, as etcd does with mixed --listen-client-urls.
 */
export function serveClient(
  url: URL,
  tls: TlsContext | undefined,
  grpcServer: GrpcServer,
  httpListener: http.RequestListener,
  logger: Logger,
  opts: ServeOptions = {},
): Promise<Listener> {
  return serve({ role: 'client', url, tls, grpcServer, httpListener, logger, opts });
}

/**
 * Serves HTTP/1.1 on a peer URL (--listen-peer-urls): the peer transport's handler. gRPC is
 * optional; without it HTTP/2 connections are refused.
 */
export function servePeer(
  url: URL,
  tls: TlsContext | undefined,
  httpListener: http.RequestListener,
  logger: Logger,
  grpcServer?: GrpcServer,
  opts: ServeOptions = {},
): Promise<Listener> {
  return serve({ role: 'peer', url, tls, grpcServer, httpListener, logger, opts });
}

/**
 * Serves --listen-metrics-urls: HTTP/1.1 only (the handler from createMetricsHttpHandler);
 * `tls` is used for https:// URLs, as etcd uses the client certificate there.
 */
export function serveMetrics(
  url: URL,
  tls: TlsContext | undefined,
  httpListener: http.RequestListener,
  logger: Logger,
  opts: ServeOptions = {},
): Promise<Listener> {
  return serve({ role: 'metrics', url, tls, grpcServer: undefined, httpListener, logger, opts });
}

interface ServeParams {
  role: 'client' | 'peer' | 'metrics';
  url: URL;
  tls: TlsContext | undefined;
  grpcServer: GrpcServer | undefined;
  httpListener: http.RequestListener;
  logger: Logger;
  opts: ServeOptions;
}

/**
 * Where a listen URL binds: a TCP host and port (IPv6 brackets removed), or, for etcd's
 * unix:// and unixs:// URLs, a socket file named by the URL's host and port as written
 * (`unix://etcd.unix:1` listens on the file `etcd.unix:1` in the working directory, as
 * etcd does).
 */
export type BindAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function bindAddress(url: URL): BindAddress {
  if (url.protocol === 'unix:' || url.protocol === 'unixs:') {
    const path = unixSocketPath(url);
    if (path === '') throw new Error(`listen URL ${url.href} names no socket file`);
    return { kind: 'unix', path };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`listen URL ${url.href} has unsupported scheme ${JSON.stringify(url.protocol.replace(/:$/, ''))} (use http, https, unix or unixs)`);
  }
  if (url.port === '') {
    throw new Error(`listen URL ${url.href} has no port`);
  }
  return { kind: 'tcp', host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
}

/** One listening socket: its URL, and whether the plain twin of that secure URL shares it. */
export interface ListenGroup {
  url: URL;
  plainToo: boolean;
}

/**
 * Groups listen URLs by the address they bind: an http:// and an https:// URL for the same
 * host:port (or unix:// and unixs:// for the same file) become one socket serving both,
 * as etcd serves them; any other URL keeps a socket of its own.
 */
export function groupListenUrls(urls: readonly URL[]): ListenGroup[] {
  // port 0 asks the kernel for a port of its own each time: never shared
  const key = (u: URL): string => {
    const b = bindAddress(u);
    return b.kind === 'unix' ? `unix ${b.path}` : b.port === 0 ? `tcp ${u.href}` : `tcp ${b.host} ${b.port}`;
  };
  const secureAt = new Map<string, URL>();
  for (const u of urls) if (isSecure(u)) secureAt.set(key(u), u);
  const groups: ListenGroup[] = [];
  for (const u of urls) {
    const twin = isSecure(u) ? undefined : secureAt.get(key(u));
    if (twin !== undefined) continue; // served by its secure twin's socket
    groups.push({ url: u, plainToo: isSecure(u) && urls.some((o) => !isSecure(o) && key(o) === key(u)) });
  }
  return groups;
}

/** unixs:// is TLS over a unix socket, as https:// is over TCP. */
function isSecure(url: URL): boolean {
  return url.protocol === 'https:' || url.protocol === 'unixs:';
}

async function serve(p: ServeParams): Promise<Listener> {
  const { url, logger } = p;
  const bind = bindAddress(url);
  const secure = isSecure(url);
  if (secure && p.tls === undefined) {
    throw new Error(`listen URL ${url.href} is ${url.protocol.replace(/:$/, '')} but no TLS certificate is configured (--cert-file/--key-file or --auto-tls)`);
  }
  if (!secure && p.tls !== undefined) {
    logger.warn({ [`${p.role}-url`]: `${url.protocol}//${url.host}` }, 'scheme is HTTP while key and cert files are present; ignoring key and cert files');
  }
  const timeoutMs = p.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;

  // TLS is terminated here, before the protocol is known, so that the same handshake can
  // lead to HTTP/1.1 too; the gRPC server gets the decrypted socket.
  const injector = p.grpcServer?.createConnectionInjector();
  const httpServer = http.createServer(
    { headersTimeout: timeoutMs, requestTimeout: Math.max(timeoutMs, HTTP_REQUEST_TIMEOUT_MS), connectionsCheckingInterval: Math.min(timeoutMs, 30_000) },
    p.httpListener,
  );
  // This server never listens itself (it is handed sockets), but Node starts enforcing
  // headersTimeout/requestTimeout on 'listening'; without them a client that trickles
  // a request header would hold its connection forever.
  httpServer.emit('listening');

  const accepted = new Set<net.Socket>();

  const toGrpc = (socket: net.Socket): void => {
    if (injector === undefined) {
      logger.debug({ 'remote-addr': remoteAddr(socket) }, 'refusing HTTP/2 connection: no gRPC on this port');
      socket.destroy();
      return;
    }
    injector.injectConnection(socket, {
      handshakeTimeoutMs: timeoutMs,
      onRefused: (err) => logger.debug({ 'remote-addr': remoteAddr(socket), error: err.message }, 'closing gRPC connection'),
    });
  };
  const toHttp = (socket: net.Socket): void => {
    httpServer.emit('connection', socket);
    socket.resume();
  };

  // Reads until the bytes tell HTTP/2 from HTTP/1.x (at most the 24 bytes of the HTTP/2
  // preface), then puts them back for the new owner.
  const sniff = (socket: net.Socket): void => {
    let head: Buffer = Buffer.alloc(0);
    const onTimeout = (): void => {
      logger.debug({ 'remote-addr': remoteAddr(socket) }, 'closing connection that sent no request');
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const kind = sniffProtocol(head);
      if (kind === 'undecided') return;
      socket.removeListener('data', onData);
      socket.removeListener('timeout', onTimeout);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(head);
      if (kind === 'h2') {
        toGrpc(socket);
      } else {
        toHttp(socket);
      }
    };
    socket.setTimeout(timeoutMs);
    socket.on('timeout', onTimeout);
    socket.on('data', onData);
    // (a socket whose first byte was read and put back is paused)
    socket.resume();
  };

  const whenReady = (socket: net.Socket, serveIt: () => void): void => {
    if (p.opts.ready === undefined) return serveIt();
    p.opts.ready.then(
      () => {
        if (!socket.destroyed) serveIt();
      },
      () => socket.destroy(),
    );
  };

  const onRawConnection = (socket: net.Socket): void => {
    accepted.add(socket);
    // TCP keepalive on every accepted connection, as etcd's listeners have it: a client or
    // peer whose host vanished without a FIN is found and its connection (with the watches
    // and lease keep-alives on it) closed, rather than kept forever. (A listener that
    // refuses with alerts hands its TLS server the accepted socket wrapped in a stream,
    // which also comes through here: the socket itself got its keepalive before.)
    if (socket instanceof net.Socket) socket.setKeepAlive(true, p.role === 'client' ? CLIENT_TCP_KEEPALIVE_MS : GO_TCP_KEEPALIVE_MS);
    socket.on('close', () => accepted.delete(socket));
    // Resets and aborted handshakes land here; the connection is gone either way.
    socket.on('error', (err) => logger.debug({ 'remote-addr': remoteAddr(socket), error: err.message }, 'connection error'));
  };

  let server: net.Server;
  if (secure) {
    const ctx = p.tls!;
    const grpcOn = injector !== undefined;
    const tlsServer = tls.createServer({
      ...ctx.server,
      // Client certificates are checked below rather than by Node, which under TLS 1.3 drops
      // an untrusted client without saying why or who it was.
      rejectUnauthorized: false,
      handshakeTimeout: timeoutMs,
      // HTTP/1.1 when the client speaks it, h2 only for clients that offer nothing else:
      // every gRPC stack offers just h2, while curl and browsers offer both and then want
      // /health or /metrics. One TLS connection then never mixes gRPC and plain HTTP.
      ALPNCallback: ({ protocols }) => {
        if (protocols.includes('http/1.1')) return 'http/1.1';
        if (grpcOn && protocols.includes('h2')) return 'h2';
        return undefined;
      },
    });
    // Go refuses a client certificate inside its handshake with alert 42, which the client
    // reports (`remote error: tls: bad certificate`); Node judges it only afterwards, and a
    // connection must reach the TLS layer through a SocketStream for the alert to be sent
    // then (tls-refusal.ts). That stream costs every connection of the listener a copy
    // through JavaScript, so only listeners that check more than the CA's signature (an
    // allowed CN or hostname) pay it, and ports serving http:// too, which use it anyway;
    // elsewhere a refused connection is just closed.
    const checksIdentity = ctx.clientCertAuth && ctx.verifyClient !== undefined;
    const refusals = checksIdentity || p.opts.plainToo === true ? new TlsRefusals(tlsServer) : undefined;
    /** where a TLS connection comes from (one failing before its ClientHello is read may stay unnamed) */
    const peerAddr = (tlsSocket: tls.TLSSocket): string => remoteAddr(refusals?.connectionOf(tlsSocket) ?? tlsSocket);
    tlsServer.on('connection', onRawConnection);
    tlsServer.on('tlsClientError', (err, tlsSocket) => {
      logger.warn(
        { 'remote-addr': peerAddr(tlsSocket), 'server-name': tlsSocket.servername || '', error: goTlsErrorMessage(err) },
        'rejected connection',
      );
      tlsSocket.destroy();
    });
    tlsServer.on('secureConnection', (tlsSocket: tls.TLSSocket) => {
      tlsSocket.on('error', (err) => logger.debug({ 'remote-addr': peerAddr(tlsSocket), error: err.message }, 'connection error'));
      const refuse = (error: string, alert: boolean, names?: CertNames): void => {
        const certFields = names === undefined ? {} : { 'ip-addresses': names.ips, 'dns-names': names.dnsNames };
        logger.warn({ 'remote-addr': peerAddr(tlsSocket), 'server-name': tlsSocket.servername || '', ...certFields, error }, 'rejected connection');
        if (alert && refusals !== undefined) refusals.refuse(tlsSocket);
        else tlsSocket.destroy();
      };
      const serveIt = (): void => {
        refusals?.accept(tlsSocket);
        whenReady(tlsSocket, () => {
          if (tlsSocket.alpnProtocol === 'h2') toGrpc(tlsSocket);
          else if (tlsSocket.alpnProtocol === 'http/1.1') toHttp(tlsSocket);
          else sniff(tlsSocket);
        });
      };
      if (!ctx.clientCertAuth) return serveIt();
      // what etcd refuses inside Go's handshake, with an alert
      const refusal = tlsSocket.authorized ? ctx.verifyClient?.(tlsSocket.getPeerCertificate()) : clientCertError(tlsSocket);
      if (refusal !== undefined) return refuse(refusal, true);
      // etcd checks the certificate's names, then the CRL, once its handshake is over, and
      // then just closes the connection
      const cert = tlsSocket.getPeerX509Certificate();
      const afterHandshake = (): void => {
        const revoked = ctx.checkRevoked?.(tlsSocket.getPeerCertificate());
        if (revoked !== undefined) return refuse(revoked, false, cert && certNames(cert));
        serveIt();
      };
      if (p.opts.checkClientSan !== true || cert === undefined) return afterHandshake();
      const from = (refusals?.connectionOf(tlsSocket) ?? tlsSocket).remoteAddress;
      void (from === undefined ? Promise.resolve('address : missing port in address') : clientSanRefusal(cert, from)).then(
        (sanRefusal) => {
          if (tlsSocket.destroyed) return;
          if (sanRefusal !== undefined) return refuse(sanRefusal, false, certNames(cert));
          afterHandshake();
        },
        (err: Error) => refuse(`tls: ${err.message}`, false),
      );
    });
    if (refusals !== undefined) {
      server = net.createServer((socket) => {
        onRawConnection(socket);
        const toTls = (): void => void tlsServer.emit('connection', refusals.wrap(socket));
        if (p.opts.plainToo !== true) return toTls();
        firstByte(socket, timeoutMs, (byte) => {
          if (byte === TLS_HANDSHAKE_RECORD) toTls();
          else whenReady(socket, () => sniff(socket));
        });
      });
    } else {
      server = tlsServer;
    }
  } else {
    server = net.createServer((socket) => {
      onRawConnection(socket);
      whenReady(socket, () => sniff(socket));
    });
  }

  // etcd removes a socket file left by an earlier run before binding it.
  if (bind.kind === 'unix') await rm(bind.path, { force: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const onListening = (): void => {
        server.removeListener('error', reject);
        resolve();
      };
      if (bind.kind === 'unix') server.listen({ path: bind.path }, onListening);
      else server.listen({ host: bind.host, port: bind.port }, onListening);
    });
  } catch (err) {
    injector?.destroy();
    throw listenError(bind, err as NodeJS.ErrnoException);
  }
  server.on('error', (err) => logger.error({ error: err.message }, 'listener error'));

  const address = bind.kind === 'unix' ? bind.path : `${url.hostname}:${(server.address() as net.AddressInfo).port}`;
  const boundUrl = `${url.protocol}//${address}`;
  // "serving client traffic ..." is left to the caller: etcd prints it once the member is
  // ready, not when the port is bound.
  if (p.role === 'peer') {
    logger.info({ address }, 'serving peer traffic');
  } else if (p.role === 'metrics') {
    logger.info({ address: boundUrl }, 'serving metrics');
  }

  let closing: Promise<void> | undefined;
  return {
    url: boundUrl,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        httpServer.close();
        injector?.destroy();
        for (const socket of accepted) socket.destroy();
      });
      return closing;
    },
  };
}

/** The first byte of every TLS connection: a handshake record (RFC 8446 §5.1). */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Reads the connection's first byte, puts it back, and calls `then` with it; a connection
 * silent for `timeoutMs` is closed.
 */
function firstByte(socket: net.Socket, timeoutMs: number, then: (byte: number) => void): void {
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.setTimeout(timeoutMs);
  socket.once('timeout', onTimeout);
  socket.once('data', (chunk: Buffer) => {
    socket.removeListener('timeout', onTimeout);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(chunk);
    then(chunk[0]!);
  });
}

function remoteAddr(socket: net.Socket): string {
  if (socket.remoteAddress === undefined) return '';
  return socket.remoteFamily === 'IPv6' ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`;
}

/** Why a client certificate was refused, in the words etcd (Go's crypto/tls) uses. */
function clientCertError(socket: tls.TLSSocket): string {
  if (Object.keys(socket.getPeerCertificate()).length === 0) return "tls: client didn't provide a certificate";
  return `tls: failed to verify client certificate: ${socket.authorizationError ?? 'unknown error'}`;
}

/** Go's wording for bind failures, which is what etcd prints. */
function listenError(bind: BindAddress, err: NodeJS.ErrnoException): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: 'address already in use',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'cannot assign requested address',
    ENOENT: 'no such file or directory',
  };
  const reason = err.code !== undefined ? reasons[err.code] : undefined;
  const where = bind.kind === 'unix' ? `unix ${bind.path}` : `tcp ${net.isIPv6(bind.host) ? `[${bind.host}]` : bind.host}:${bind.port}`;
  return new Error(`listen ${where}: ${reason !== undefined ? `bind: ${reason}` : err.message}`, { cause: err });
}
