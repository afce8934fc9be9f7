// etcd's JSON gateway on the client port: POST /v3/<path> with a JSON request message,
// answered by the member's own gRPC handlers and rendered as etcd 3.4's grpc-gateway
// renders it (/v3beta/ is the same API under its 3.3 name).

import type http from 'node:http';
import type { ServiceImplementation } from '../grpc/call.js';
import { Code } from '../grpc/codes.js';
import { GatewayMetadata } from './metadata.js';
import type { Logger } from 'pino';
import type { Route } from '../http/handler.js';
import { type AnyHandler, GatewayStreamCall, GatewayUnaryCall, type HalfClose, callUnary, toRpcStatus } from './calls.js';
import { type JsonNode, JsonStream, type JsonStreamStep, JsonSyntaxError, decodeNext } from './json.js';
import { RequestDecodeError, requestFromJson } from './jsonpb.js';
import {
  type RpcStatus,
  StreamWriter,
  writeGatewayError,
  writeRpcError,
  writeTextError,
  writeUnary,
} from './respond.js';
import { type GatewayRpc, gatewayRpcs } from './routes.js';
import { GRPC_OVERHEAD_BYTES } from '../grpc/server.js';
import { StreamSlots } from './slots.js';

export interface GatewayOptions {
  logger: Logger;
  /** --max-request-bytes: with gRPC's 512 KiB overhead, the largest request message accepted */
  maxRequestBytes: number;
  /** --max-concurrent-streams: gateway requests served at once, the rest wait (default: no limit) */
  maxConcurrentStreams?: number;
}

/**
 * How much JSON one message may take before decoding: base64 and field names make JSON
 * bigger than the message, so twice the message limit, which any message etcd accepts fits.
 */
const JSON_EXPANSION = 2;

const HALF_CLOSE: Record<string, HalfClose> = {
  'etcdserverpb.Watch/Watch': 'keep-open',
};

/**
 * The gateway's routes for the client port's HTTP handler. `services` maps a gRPC service's
 * full name ('etcdserverpb.KV') to the implementation registered on the gRPC server; an
 * RPC whose service is absent answers Unimplemented, as a gRPC server without it would.
 */
export function createGateway(services: Record<string, ServiceImplementation>, opts: GatewayOptions): Route[] {
  const messageLimit = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const endpoints = new Map<string, Endpoint>();
  for (const [path, rpc] of gatewayRpcs()) {
    endpoints.set(path, {
      rpc,
      impl: services[rpc.service]?.[rpc.method] as AnyHandler | undefined,
      missing: unimplemented(services, rpc),
      messageLimit,
      bodyLimit: JSON_EXPANSION * messageLimit,
      log: opts.logger,
    });
  }

  const limit = opts.maxConcurrentStreams ?? 0;
  // etcd's default (2^32-1) is no limit in practice: no slots to count then
  const slots = limit > 0 && limit < 2 ** 32 - 1 ? new StreamSlots(limit) : undefined;

  const serveRpc = (ctx: RpcContext, req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (ctx.rpc.kind === 'bidi-stream') return serveBidi(ctx, req, res);
    serveWholeBody(ctx, req, res).catch((err: unknown) => {
      ctx.log.warn({ rpc: `${ctx.rpc.service}/${ctx.rpc.method}`, error: String(err) }, 'gateway: request failed');
      if (!res.headersSent) writeGatewayError(res, { code: Code.INTERNAL, message: String(err) });
      else res.destroy();
    });
  };

  const handler: http.RequestListener = (req, res) => {
    const path = requestPath(req.url);
    const endpoint = endpoints.get(path.startsWith('/v3beta/') ? `/v3/${path.slice('/v3beta/'.length)}` : path);
    if (endpoint === undefined) return writeTextError(res, 404, 'Not Found');
    if (req.method !== 'POST') return writeTextError(res, 405, 'Method Not Allowed');
    const ctx: RpcContext = { ...endpoint, metadata: requestMetadata(req) };
    if (slots === undefined) return serveRpc(ctx, req, res);
    // the request holds its stream until its response is over (or its client leaves)
    void slots.acquire().then((release) => {
      if (res.closed) return release();
      res.once('close', release);
      serveRpc(ctx, req, res);
    });
  };
  return [
    { prefix: '/v3/', handler },
    { prefix: '/v3beta/', handler },
  ];
}

/** One gateway path, bound to its handler (or to the Unimplemented answer) once. */
interface Endpoint {
  rpc: GatewayRpc;
  impl: AnyHandler | undefined;
  /** the status a gRPC server without this RPC answers */
  missing: RpcStatus;
  /** gRPC's receive limit for one request message */
  messageLimit: number;
  /** how much JSON one request may take */
  bodyLimit: number;
  log: Logger;
}

interface RpcContext extends Endpoint {
  metadata: GatewayMetadata;
}

function requestPath(url: string | undefined): string {
  const pathname = new URL(url ?? '/', 'http://gateway').pathname;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** grpc-go's words for a service or method it does not serve. */
function unimplemented(services: Record<string, ServiceImplementation>, rpc: GatewayRpc): RpcStatus {
  const message =
    services[rpc.service] === undefined
      ? `unknown service ${rpc.service}`
      : `unknown method ${rpc.method} for service ${rpc.service}`;
  return { code: Code.UNIMPLEMENTED, message };
}

/**
 * gRPC metadata from the HTTP headers, as grpc-gateway forwards them: the Authorization
 * header is the auth token, and Grpc-Metadata-<key> headers pass through as <key>.
 */
function requestMetadata(req: http.IncomingMessage): GatewayMetadata {
  const md = new GatewayMetadata();
  const auth = req.headers.authorization;
  if (auth !== undefined && auth !== '') md.set('token', auth);
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith('grpc-metadata-') || value === undefined) continue;
    try {
      for (const v of Array.isArray(value) ? value : [value]) md.add(name.slice('grpc-metadata-'.length), v);
    } catch {
      // keys that are not valid metadata names are dropped, as grpc-gateway drops them
    }
  }
  return md;
}

/**
 * A decoded request, or the status refusing it: jsonpb's complaint (`decodeCode`, which is
 * InvalidArgument for a unary request and Unknown for a stream's), or gRPC's size limit.
 */
function decodeRequest(
  ctx: RpcContext,
  node: JsonNode | undefined,
  decodeCode: Code,
): { request: object } | { decodeError: RpcStatus } | { tooLarge: RpcStatus } {
  const type = ctx.rpc.requestType;
  let bytes: Uint8Array;
  try {
    bytes = type.encode(requestFromJson(type, node)).finish();
  } catch (err) {
    if (err instanceof RequestDecodeError) return { decodeError: { code: decodeCode, message: err.message } };
    throw err;
  }
  if (bytes.length > ctx.messageLimit) {
    return {
      tooLarge: {
        code: Code.RESOURCE_EXHAUSTED,
        message: `grpc: received message larger than max (${bytes.length} vs. ${ctx.messageLimit})`,
      },
    };
  }
  // Decoded from the wire form, the handler sees exactly what a gRPC client's request gives.
  return { request: type.decode(bytes) };
}

function bodyTooLarge(limit: number): RpcStatus {
  return { code: Code.RESOURCE_EXHAUSTED, message: `gateway: request body larger than ${limit} bytes` };
}

/**
 * Reads the whole body, or undefined once it passes `limit` (reading stops there);
 * rejects if the client goes away first.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.removeListener('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request body cut short'));
    });
  });
}

/** Unary and server-streaming RPCs: one request message, the whole body. */
async function serveWholeBody(ctx: RpcContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let body: Buffer | undefined;
  try {
    body = await readBody(req, ctx.bodyLimit);
  } catch {
    return; // the client went away mid-body: nobody to answer
  }
  if (body === undefined) {
    // The rest of the body is never read: the connection cannot carry another request.
    res.setHeader('Connection', 'close');
    return writeGatewayError(res, bodyTooLarge(ctx.bodyLimit));
  }
  let node: JsonNode | undefined;
  try {
    // Like json.Decoder, the first value is the request and anything after it is ignored.
    node = decodeNext(body)?.node;
  } catch (err) {
    if (err instanceof JsonSyntaxError) return writeGatewayError(res, { code: Code.INVALID_ARGUMENT, message: err.message });
    throw err;
  }
  const decoded = decodeRequest(ctx, node, Code.INVALID_ARGUMENT);
  if ('decodeError' in decoded) return writeGatewayError(res, decoded.decodeError);

  if (ctx.rpc.kind === 'unary') {
    if ('tooLarge' in decoded) return writeRpcError(res, decoded.tooLarge);
    if (ctx.impl === undefined) return writeRpcError(res, ctx.missing);
    const call = new GatewayUnaryCall(decoded.request, ctx.metadata);
    res.on('close', () => {
      if (!res.writableFinished) call.cancel();
    });
    const result = await callUnary(ctx.impl, call, ctx.rpc.responseType);
    if (res.destroyed) return;
    if ('json' in result) writeUnary(res, result.json);
    else writeRpcError(res, result.error);
    return;
  }

  const out = new StreamWriter(res);
  if ('tooLarge' in decoded) return out.error(decoded.tooLarge);
  if (ctx.impl === undefined) return out.error(ctx.missing);
  const call = new GatewayStreamCall(ctx.metadata, out, ctx.rpc.responseType, 'keep-open', decoded.request);
  startStream(ctx, call, res);
}

/** Wires a streaming call to its HTTP response and starts the handler. */
function startStream(ctx: RpcContext, call: GatewayStreamCall, res: http.ServerResponse): void {
  res.on('drain', () => call.emit('drain'));
  res.on('close', () => {
    if (!res.writableFinished) call.cancel();
  });
  try {
    ctx.impl!(call);
  } catch (err) {
    ctx.log.warn({ rpc: `${ctx.rpc.service}/${ctx.rpc.method}`, error: String(err) }, 'gateway: handler failed');
    call.emit('error', toRpcStatus(err));
  }
}

/**
 * Bidirectional streams (Watch, LeaseKeepAlive): the body is a stream of JSON request
 * messages, each passed on as it completes. A first message that does not decode fails
 * the request; a later one ends the input, as grpc-gateway's request pump does.
 */
function serveBidi(ctx: RpcContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const out = new StreamWriter(res);
  if (ctx.impl === undefined) {
    req.resume();
    return out.error(ctx.missing);
  }
  const key = `${ctx.rpc.service}/${ctx.rpc.method}`;
  const call = new GatewayStreamCall(ctx.metadata, out, ctx.rpc.responseType, HALF_CLOSE[key] ?? 'after-replies');
  const input = new JsonStream();
  let received = 0;
  let inputOpen = true;

  const stopInput = (): void => {
    inputOpen = false;
    req.removeListener('data', onData);
    req.resume();
    call.receiveEnd();
  };
  const badInput = (status: RpcStatus): void => {
    if (received === 0) {
      out.refuse(status);
      call.cancel();
    }
    stopInput();
  };
  const deliver = (nodes: JsonNode[]): boolean => {
    for (const node of nodes) {
      const decoded = decodeRequest(ctx, node, Code.UNKNOWN);
      if ('decodeError' in decoded) {
        badInput(decoded.decodeError);
        return false;
      }
      if ('tooLarge' in decoded) {
        call.emit('error', decoded.tooLarge);
        stopInput();
        return false;
      }
      received++;
      call.receive(decoded.request);
    }
    return true;
  };
  /** Passes on what a piece of body completed; false once the input is over. */
  const take = (step: JsonStreamStep): boolean => {
    if (!deliver(step.values)) return false;
    if (step.error === undefined) return true;
    badInput({ code: Code.UNKNOWN, message: step.error.message });
    return false;
  };
  const onData = (chunk: Buffer): void => {
    if (!inputOpen || !take(input.push(chunk))) return;
    if (input.buffered > ctx.bodyLimit) badInput(bodyTooLarge(ctx.bodyLimit));
  };

  startStream(ctx, call, res);
  req.on('data', onData);
  req.on('end', () => {
    if (!inputOpen || !take(input.end())) return;
    inputOpen = false;
    call.receiveEnd();
  });
  req.on('error', () => {
    if (inputOpen) stopInput();
  });
}
