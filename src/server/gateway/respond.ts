// What etcd's gateway (grpc-gateway v1) writes back: status codes from gRPC codes, its
// error bodies, and the headers and trailers its gRPC round trip leaves on a response.

import type http from 'node:http';
import { goJsonString } from './jsonpb.js';

/** A gRPC status as the gateway reports it. */
export interface RpcStatus {
  readonly code: number;
  readonly message: string;
}

/** grpc-gateway v1's HTTPStatusFromCode. */
const HTTP_STATUS_BY_CODE: readonly number[] = [
  200, // OK
  408, // Canceled
  500, // Unknown
  400, // InvalidArgument
  504, // DeadlineExceeded
  404, // NotFound
  409, // AlreadyExists
  403, // PermissionDenied
  429, // ResourceExhausted
  412, // FailedPrecondition
  409, // Aborted
  400, // OutOfRange
  501, // Unimplemented
  500, // Internal
  503, // Unavailable
  500, // DataLoss
  401, // Unauthenticated
];

export function httpStatusFromCode(code: number): number {
  return HTTP_STATUS_BY_CODE[code] ?? 500;
}

/** Go's http.StatusText for the statuses above. */
const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const JSON_TYPE = 'application/json';
/** The gRPC response header the gateway passes on as Grpc-Metadata-Content-Type. */
const GRPC_CONTENT_TYPE = 'application/grpc';

function errorBody(s: RpcStatus): string {
  const msg = goJsonString(s.message);
  return `{"error":${msg},"message":${msg},"code":${s.code}}`;
}

/** A unary RPC's answer. */
export function writeUnary(res: http.ServerResponse, json: string): void {
  const body = Buffer.from(json, 'utf8');
  res.writeHead(200, {
    'Content-Type': JSON_TYPE,
    'Grpc-Metadata-Content-Type': GRPC_CONTENT_TYPE,
    'Content-Length': body.length,
  });
  res.end(body);
}

/**
 * An error status the RPC ended with: chunked, with the trailer the gRPC response carried
 * announced up front and sent after the body.
 */
export function writeRpcError(res: http.ServerResponse, s: RpcStatus): void {
  res.writeHead(httpStatusFromCode(s.code), { 'Content-Type': JSON_TYPE, Trailer: 'Grpc-Trailer-Content-Type' });
  res.write(errorBody(s));
  res.addTrailers({ 'Grpc-Trailer-Content-Type': GRPC_CONTENT_TYPE });
  res.end();
}

/** An error raised by the gateway itself before any RPC (a body it cannot decode). */
export function writeGatewayError(res: http.ServerResponse, s: RpcStatus): void {
  const body = Buffer.from(errorBody(s), 'utf8');
  res.writeHead(httpStatusFromCode(s.code), { 'Content-Type': JSON_TYPE, 'Content-Length': body.length });
  res.end(body);
}

/** grpc-gateway's plain-text refusals (unknown path, wrong method), as Go's http.Error writes them. */
export function writeTextError(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * A streaming RPC's answer: newline-delimited {"result":...} objects, and an
 * {"error":{...}} object (without a newline) if the RPC fails. The status line goes out
 * with the first message, so an RPC failing before any message gets its error status.
 */
export class StreamWriter {
  private started = false;
  private ended = false;

  constructor(private readonly res: http.ServerResponse) {}

  get closed(): boolean {
    return this.ended || this.res.destroyed;
  }

  /** Returns false when the socket is full: wait for 'drain' on the response. */
  message(json: string): boolean {
    if (this.closed) return true;
    this.start(200, true);
    return this.res.write(`{"result":${json}}\n`);
  }

  error(s: RpcStatus): void {
    if (this.closed) return;
    const httpCode = httpStatusFromCode(s.code);
    this.start(httpCode, false);
    this.res.end(
      `{"error":{"grpc_code":${s.code},"http_code":${httpCode},"message":${goJsonString(s.message)},` +
        `"http_status":${goJsonString(STATUS_TEXT[httpCode] ?? '')}}}`,
    );
    this.ended = true;
  }

  /** Refuses the request before the RPC answered anything (a first message that does not decode). */
  refuse(s: RpcStatus): void {
    if (this.closed) return;
    if (this.started) this.res.end();
    else writeGatewayError(this.res, s);
    this.ended = true;
  }

  end(): void {
    if (this.closed) return;
    this.start(200, false);
    this.res.end();
    this.ended = true;
  }

  private start(status: number, withMessages: boolean): void {
    if (this.started) return;
    this.started = true;
    // Chunked by leaving the length out. The gRPC response headers (passed on as
    // Grpc-Metadata-*) exist only when the server sent a message before its status.
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': JSON_TYPE };
    if (withMessages) headers['Grpc-Metadata-Content-Type'] = GRPC_CONTENT_TYPE;
    this.res.writeHead(status, headers);
    // Each message is pushed out as it is written (Go's Flush after every message).
    this.res.flushHeaders();
  }
}
