// A gRPC client with nothing between the test and the wire: protobuf bytes built by
// hand (so they can be wrong on purpose), gRPC's 5-byte message prefix with any flag
// byte, any headers, over node:http2. It reports what came back as it came: status,
// message, response messages, or the RST_STREAM code, or that nothing came in time.

import http2 from 'node:http2';

// ---- protobuf, by hand ----

export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export const tag = (field: number, wire: number): Buffer => varint(field * 8 + wire);
export const bytesField = (field: number, b: Buffer | string): Buffer => {
  const v = Buffer.from(b);
  return Buffer.concat([tag(field, 2), varint(v.length), v]);
};
export const varintField = (field: number, v: number | bigint): Buffer => Buffer.concat([tag(field, 0), varint(v)]);
export const concat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

/** One gRPC message: flag byte, 4-byte length, body. */
export function frame(body: Buffer, flag = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

// ---- the call ----

export interface RawResult {
  /** grpc-status (from trailers, or a trailers-only response); undefined if none came */
  code: number | undefined;
  message: string | undefined;
  /** response message bodies, prefixes removed */
  messages: Buffer[];
  /** the RST_STREAM code when the server reset the stream (0: it was not reset) */
  rstCode: number;
  /** nothing ended the call within the wait */
  hung: boolean;
}

export interface RawCall {
  path: string;
  /** bytes for the request stream (several messages, partial ones, anything) */
  body: Buffer;
  headers?: Record<string, string>;
  /** end the request stream after the body (default true) */
  halfClose?: boolean;
}

/**
 * Makes one call on a fresh connection. The call is over when its status arrives (a
 * client need not end its side first) or the server resets the stream; after `waitMs`
 * without either it reports `hung`.
 */
export function rawCall(url: string, call: RawCall, waitMs = 10_000): Promise<RawResult> {
  return new Promise((resolve) => {
    const session = http2.connect(url);
    session.on('error', () => undefined);
    const req = session.request({
      ':method': 'POST',
      ':path': call.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...call.headers,
    });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (status: http2.IncomingHttpHeaders, hung: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const code = status['grpc-status'];
      const message = status['grpc-message'];
      resolve({
        code: code === undefined ? undefined : Number(code),
        message: typeof message === 'string' ? decodeURIComponent(message) : undefined,
        messages: unframe(Buffer.concat(chunks)),
        rstCode: hung ? 0 : req.rstCode ?? 0,
        hung,
      });
      req.close();
      session.close();
    };
    const timer = setTimeout(() => finish({}, true), waitMs);
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) finish(h, false); // trailers-only
    });
    req.on('trailers', (t) => finish(t, false));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', () => undefined);
    req.on('close', () => finish({}, false));
    if (call.halfClose === false) req.write(call.body);
    else req.end(call.body);
  });
}

function unframe(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 5 <= data.length; ) {
    const length = data.readUInt32BE(at + 1);
    out.push(data.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return out;
}
