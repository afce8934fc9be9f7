// Stand-ins for the gRPC server's call objects, so the member's own handlers serve the gateway:
// the same code answers a request whether it came as protobuf over HTTP/2 or as JSON.
// They carry just the surface those handlers use (src/server/api/*.ts).

import { EventEmitter } from 'node:events';
import { Code } from '../grpc/codes.js';
import type { GatewayMetadata } from './metadata.js';
import type protobuf from 'protobufjs';
import { statusOf } from '../grpc/call.js';
import { responseToJson } from './jsonpb.js';
import type { RpcStatus, StreamWriter } from './respond.js';

/** Any handler of a ServiceImplementation, called the way the gRPC server calls it. */
export type AnyHandler = (call: object, callback?: (err: unknown, value?: unknown) => void) => void;

/** A status from whatever a handler failed with, as the gRPC server makes it. */
export function toRpcStatus(err: unknown): RpcStatus {
  const { code, details } = statusOf(err);
  return { code, message: details };
}

/** grpc-js's answer when a response does not encode. */
function serializeError(err: unknown): RpcStatus {
  return { code: Code.INTERNAL, message: `Error serializing response: ${err instanceof Error ? err.message : String(err)}` };
}

/**
 * A unary call. Like the gRPC server's, it emits 'cancelled' when the client goes away,
 * so a handler that waits (Lock, Campaign) stops waiting.
 */
export class GatewayUnaryCall extends EventEmitter {
  cancelled = false;

  constructor(
    readonly request: object,
    readonly metadata: GatewayMetadata,
  ) {
    super();
  }

  getPeer(): string {
    return 'gateway';
  }

  /** The HTTP client went away before the answer. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
  }
}

/** Runs a unary handler; resolves with the response's JSON or the status it failed with. */
export function callUnary(
  handler: AnyHandler,
  call: GatewayUnaryCall,
  responseType: protobuf.Type,
): Promise<{ json: string } | { error: RpcStatus }> {
  return new Promise((resolve) => {
    try {
      handler(call, (err, value) => {
        if (err) return resolve({ error: toRpcStatus(err) });
        try {
          resolve({ json: responseToJson(responseType, (value ?? {}) as object) });
        } catch (e) {
          resolve({ error: serializeError(e) });
        }
      });
    } catch (err) {
      resolve({ error: toRpcStatus(err) });
    }
  });
}

/**
 * When the gateway delivers 'end' (the client finished its request body) to a bidi handler.
 * etcd keeps a watch stream open after the client half-closes (curl's body ends right
 * after the create request), and answers every keepalive it received before ending.
 */
export type HalfClose = 'keep-open' | 'after-replies';

/**
 * A streaming call: responses go to a StreamWriter as JSON lines; the handler may end it,
 * fail it (emit 'error' with a status) or see it cancelled when the HTTP client goes away.
 * For bidi streams the gateway feeds requests with `receive` and `receiveEnd`.
 */
export class GatewayStreamCall extends EventEmitter {
  cancelled = false;
  private requests = 0;
  private replies = 0;
  private inputEnded = false;
  private endDelivered = false;

  constructor(
    readonly metadata: GatewayMetadata,
    private readonly out: StreamWriter,
    private readonly responseType: protobuf.Type,
    private readonly halfClose: HalfClose,
    /** the request of a server-streaming call */
    readonly request?: object,
  ) {
    super();
    // A handler fails the call by emitting 'error' with a status, as it does on the gRPC server.
    this.on('error', (err: unknown) => this.out.error(toRpcStatus(err)));
  }

  getPeer(): string {
    return 'gateway';
  }

  /** Returns false when the client is slow (wait for 'drain'); writes after the end are dropped. */
  write(resp: object): boolean {
    if (this.out.closed) return true;
    let json: string;
    try {
      json = responseToJson(this.responseType, resp);
    } catch (err) {
      this.emit('error', serializeError(err));
      return true;
    }
    this.replies++;
    const ok = this.out.message(json);
    this.maybeDeliverEnd();
    return ok;
  }

  end(): void {
    this.out.end();
  }

  /** A request message from the body. */
  receive(req: object): void {
    if (this.out.closed) return;
    this.requests++;
    this.emit('data', req);
  }

  /** The request body is over (or unreadable past this point). */
  receiveEnd(): void {
    this.inputEnded = true;
    this.maybeDeliverEnd();
  }

  /** The HTTP client went away; writers waiting for room are released (their writes are dropped). */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
    this.emit('drain');
  }

  private maybeDeliverEnd(): void {
    if (this.endDelivered || !this.inputEnded || this.halfClose === 'keep-open') return;
    if (this.replies < this.requests) return;
    this.endDelivered = true;
    this.emit('end');
  }
}
