// The member's gRPC server: gRPC's thin layer over an HTTP/2 server of its own (h2/), in
// place of grpc-js's server over node:http2. Measured with etcd's Go client on this
// 2-core machine, a trivial unary call cost 49 µs of server CPU through grpc-js and 30 µs
// through node:http2 alone, where HTTP/2's framing itself costs 8-13 µs
// (bench/grpc/README.md): nghttp2 and Node's stream and header objects around it were most
// of a call's cost in the server. It is fed connections, never listens itself: the
// listener terminates TLS and tells HTTP/2 from HTTP/1.1 first (src/server/listener).

import type { Duplex } from 'node:stream';
import { Code } from './codes.js';
import { type CallObserver, type Handler, type MethodDefinition, ServerCall, type ServiceImplementation, trailersOnly } from './call.js';
import { knownEncoding, parseTimeout } from './framing.js';
import { H2Connection } from './h2/connection.js';
import { ErrorCode, type ConnectionError } from './h2/frames.js';
import { encodeHeaderBlock, type HeaderList, headerValue } from './h2/hpack.js';
import type { H2Stream } from './h2/stream.js';

export type { MethodDefinition } from './call.js';
export type ServiceDefinition = Record<string, MethodDefinition>;

/** etcd's grpcOverheadBytes: room for the gRPC envelope around a request of maxRequestBytes. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

export interface GrpcServerOptions {
  /** --max-request-bytes: the largest raft request a client may send. */
  maxRequestBytes: number;
  /** --max-concurrent-streams: streams one client connection may have open (HTTP/2 setting); default 2^32-1 */
  maxConcurrentStreams?: number;
  /** --grpc-keepalive-interval and --grpc-keepalive-timeout: each connection's PING probe (h2/connection.ts); etcd's 2 h and 20 s by default */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** --grpc-keepalive-min-time: how often a client may ping while it has calls open (h2/connection.ts); grpc-go's 5 min when absent */
  keepaliveMinTimeMs?: number;
  /** Counts each call (the gRPC metrics); called once per call with its method and the client-api-version header clientv3 sends. */
  observe?: (method: MethodDefinition, clientApiVersion: string | undefined) => CallObserver;
}

const NO_OBSERVER: CallObserver = { received() {}, sent() {}, handled() {} };

/** How long a client has to send its preface and SETTINGS when the listener does not say. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface InjectOptions {
  /** how long the client has to send its preface and SETTINGS */
  handshakeTimeoutMs?: number;
  /** hears why a connection was closed for what the client sent */
  onRefused?: (err: ConnectionError) => void;
}

/**
 * Hands connections to the server (a socket holding the client's bytes from the preface
 * on); destroy() closes every connection it was given.
 */
export interface ConnectionInjector {
  injectConnection(socket: Duplex, opts?: InjectOptions): H2Connection;
  destroy(): void;
}

const NOT_GRPC = encodeHeaderBlock([[':status', '415']]);

export class GrpcServer {
  private readonly methods = new Map<string, { method: MethodDefinition; handler: Handler }>();
  private readonly maxReceiveLength: number;
  private readonly maxConcurrentStreams: number;
  private readonly observe: (method: MethodDefinition, clientApiVersion: string | undefined) => CallObserver;
  private readonly keepalive: Pick<GrpcServerOptions, 'keepaliveTimeMs' | 'keepaliveTimeoutMs' | 'keepaliveMinTimeMs'>;
  private readonly injectors = new Set<Set<H2Connection>>();

  /**
   * Receive limit = maxRequestBytes + 512 KiB and no send limit, as in etcd, so that an
   * over-large Put reaches the member and is refused with etcd's own error.
   */
  constructor(opts: GrpcServerOptions) {
    if (!Number.isSafeInteger(opts.maxRequestBytes) || opts.maxRequestBytes <= 0) {
      throw new RangeError(`maxRequestBytes must be a positive integer, got ${opts.maxRequestBytes}`);
    }
    this.maxReceiveLength = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    this.maxConcurrentStreams = opts.maxConcurrentStreams ?? 2 ** 32 - 1;
    this.observe = opts.observe ?? (() => NO_OBSERVER);
    this.keepalive = { keepaliveTimeMs: opts.keepaliveTimeMs, keepaliveTimeoutMs: opts.keepaliveTimeoutMs, keepaliveMinTimeMs: opts.keepaliveMinTimeMs };
  }

  addService(definition: ServiceDefinition, impl: ServiceImplementation): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = impl[name];
      if (typeof handler !== 'function') continue; // an RPC this member does not serve: Unimplemented
      this.methods.set(method.path, { method, handler: handler as unknown as Handler });
    }
  }

  createConnectionInjector(): ConnectionInjector {
    const connections = new Set<H2Connection>();
    this.injectors.add(connections);
    return {
      injectConnection: (socket, opts = {}) => {
        const conn = new H2Connection(socket, {
          maxConcurrentStreams: this.maxConcurrentStreams,
          handshakeTimeoutMs: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
          onRefused: opts.onRefused,
          ...this.keepalive,
          onStream: (stream, headers) => this.onStream(stream, headers),
        });
        connections.add(conn);
        socket.once('close', () => connections.delete(conn));
        return conn;
      },
      destroy: () => {
        for (const c of connections) c.destroy();
        this.injectors.delete(connections);
      },
    };
  }

  /** Closes every connection at once; calls in flight end with the client's Unavailable. */
  forceShutdown(): void {
    for (const connections of this.injectors) for (const c of connections) c.destroy();
    this.injectors.clear();
  }

  private onStream(stream: H2Stream, headers: HeaderList): void {
    const contentType = headerValue(headers, 'content-type');
    if (headerValue(headers, ':method') !== 'POST' || contentType === undefined || !contentType.startsWith('application/grpc')) {
      stream.respond(NOT_GRPC, true);
      return;
    }
    const path = headerValue(headers, ':path') ?? '';
    const entry = this.methods.get(path);
    if (entry === undefined) {
      stream.respond(trailersOnly(Code.UNIMPLEMENTED, unknownMethod(path, this.methods.keys())), true);
      return;
    }
    const timeout = headerValue(headers, 'grpc-timeout');
    const timeoutMs = timeout !== undefined ? parseTimeout(timeout) : undefined;
    if (timeout !== undefined && timeoutMs === undefined) {
      // grpc-go refuses the stream itself ("transport: malformed time-out"): RST_STREAM, no status
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const encoding = headerValue(headers, 'grpc-encoding') ?? 'identity';
    if (!knownEncoding(encoding)) {
      stream.respond(trailersOnly(Code.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encoding)}`), true);
      return;
    }
    const observer = this.observe(entry.method, headerValue(headers, 'client-api-version'));
    stream.sink = new ServerCall(stream, headers, entry.method, entry.handler, observer, {
      maxReceiveLength: this.maxReceiveLength,
      encoding,
      timeoutMs,
    });
  }
}

/** grpc-go's words for a call to a service or method the server does not have (`served`: the paths it has). */
function unknownMethod(path: string, served: Iterable<string>): string {
  const slash = path.lastIndexOf('/');
  const service = path.slice(1, Math.max(1, slash));
  const known = slash > 0 && [...served].some((p) => p.startsWith(`/${service}/`));
  if (!known) return `unknown service ${service}`;
  return `unknown method ${path.slice(slash + 1)} for service ${service}`;
}
