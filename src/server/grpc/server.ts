// The member's gRPC server: gRPC's thin layer over Node's HTTP/2, in place of grpc-js's
// server. Measured with etcd's Go client on this 2-core machine, a trivial unary call
// costs 49 µs of server CPU through grpc-js and 30 µs through node:http2 alone: grpc-js's
// interceptor chain, per-call objects and stream plumbing cost as much as a whole Put
// in the member does. It is fed connections, never listens itself: the listener
// terminates TLS and tells HTTP/2 from HTTP/1.1 first (src/server/listener).

import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { Code } from './codes.js';
import { type CallObserver, type Handler, type MethodDefinition, ServerCall, type ServiceImplementation } from './call.js';
import { encodeGrpcMessage, knownEncoding, parseTimeout } from './framing.js';

export type { MethodDefinition } from './call.js';
export type ServiceDefinition = Record<string, MethodDefinition>;

/** etcd's grpcOverheadBytes: room for the gRPC envelope around a request of maxRequestBytes. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** Server-side keepalive, as etcd's defaults: probe an idle client every 2 h, 20 s to answer. */
const KEEPALIVE_TIME_MS = 2 * 60 * 60 * 1000;
const KEEPALIVE_TIMEOUT_MS = 20 * 1000;

export interface GrpcServerOptions {
  /** --max-request-bytes: the largest raft request a client may send. */
  maxRequestBytes: number;
  /** --max-concurrent-streams: streams one client connection may have open (HTTP/2 setting); default 2^32-1 */
  maxConcurrentStreams?: number;
  /** Counts each call (the gRPC metrics); called once per call with its method and the client-api-version header clientv3 sends. */
  observe?: (method: MethodDefinition, clientApiVersion: string | undefined) => CallObserver;
}

const NO_OBSERVER: CallObserver = { received() {}, sent() {}, handled() {} };

/**
 * Hands connections to the server, each becoming a session (undefined when Node refused the
 * stream); destroy() closes every session it started.
 */
export interface ConnectionInjector {
  injectConnection(socket: Duplex): http2.ServerHttp2Session | undefined;
  destroy(): void;
}

export class GrpcServer {
  private readonly methods = new Map<string, { method: MethodDefinition; handler: Handler }>();
  private readonly h2: http2.Http2Server;
  private readonly maxReceiveLength: number;
  private readonly observe: (method: MethodDefinition, clientApiVersion: string | undefined) => CallObserver;
  private readonly injectors = new Set<Set<http2.ServerHttp2Session>>();

  /**
   * Receive limit = maxRequestBytes + 512 KiB and no send limit, as in etcd, so that an
   * over-large Put reaches the member and is refused with etcd's own error.
   */
  constructor(opts: GrpcServerOptions) {
    if (!Number.isSafeInteger(opts.maxRequestBytes) || opts.maxRequestBytes <= 0) {
      throw new RangeError(`maxRequestBytes must be a positive integer, got ${opts.maxRequestBytes}`);
    }
    this.maxReceiveLength = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    this.observe = opts.observe ?? (() => NO_OBSERVER);
    // Sessions may hold many large requests at once: Node's default 10 MB cap would
    // refuse streams (ENHANCE_YOUR_CALM) where etcd serves them.
    this.h2 = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER, settings: { maxConcurrentStreams: opts.maxConcurrentStreams ?? 2 ** 32 - 1 } });
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  addService(definition: ServiceDefinition, impl: ServiceImplementation): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = impl[name];
      if (typeof handler !== 'function') continue; // an RPC this member does not serve: Unimplemented
      this.methods.set(method.path, { method, handler: handler as unknown as Handler });
    }
  }

  createConnectionInjector(): ConnectionInjector {
    const sessions = new Set<http2.ServerHttp2Session>();
    this.injectors.add(sessions);
    const onSession = (session: http2.ServerHttp2Session): void => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      keepalive(session);
    };
    return {
      injectConnection: (socket) => {
        // Node starts the session (or refuses the socket) within the 'connection' event
        let session: http2.ServerHttp2Session | undefined;
        const grab = (s: http2.ServerHttp2Session): void => {
          session = s;
        };
        this.h2.once('session', grab);
        this.h2.emit('connection', socket);
        this.h2.removeListener('session', grab);
        if (session !== undefined) onSession(session);
        return session;
      },
      destroy: () => {
        for (const s of sessions) s.destroy();
        this.injectors.delete(sessions);
      },
    };
  }

  /** Closes every connection at once; calls in flight end with the client's Unavailable. */
  forceShutdown(): void {
    for (const sessions of this.injectors) for (const s of sessions) s.destroy();
    this.injectors.clear();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // a reset stream: the call sees 'close'
    const contentType = headers['content-type'];
    if (headers[':method'] !== 'POST' || typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const entry = this.methods.get(path);
    if (entry === undefined) {
      respondStatus(stream, Code.UNIMPLEMENTED, unknownMethod(path, this.methods.keys()));
      return;
    }
    const timeout = headers['grpc-timeout'];
    const timeoutMs = typeof timeout === 'string' ? parseTimeout(timeout) : undefined;
    if (typeof timeout === 'string' && timeoutMs === undefined) {
      // grpc-go refuses the stream itself ("transport: malformed time-out"): RST_STREAM, no status
      stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    const header = headers['grpc-encoding'];
    const encoding = typeof header === 'string' ? header : 'identity';
    if (!knownEncoding(encoding)) {
      respondStatus(stream, Code.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encoding)}`);
      return;
    }
    const version = headers['client-api-version'];
    const observer = this.observe(entry.method, typeof version === 'string' ? version : undefined);
    new ServerCall(stream, headers, entry.method, entry.handler, observer, {
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

function respondStatus(stream: http2.ServerHttp2Stream, code: number, details: string): void {
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(details) },
    { endStream: true },
  );
}

/** Pings an idle session every KEEPALIVE_TIME_MS and drops it when no answer comes in time. */
function keepalive(session: http2.ServerHttp2Session): void {
  const timer = setInterval(() => {
    const timeout = setTimeout(() => session.destroy(), KEEPALIVE_TIMEOUT_MS);
    timeout.unref();
    const sent = session.ping((err) => {
      clearTimeout(timeout);
      if (err) session.destroy();
    });
    if (!sent) clearTimeout(timeout);
  }, KEEPALIVE_TIME_MS);
  timer.unref();
  session.once('close', () => clearInterval(timer));
}
