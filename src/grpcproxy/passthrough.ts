// Services the proxy hands to the cluster as they come (etcd's maintenanceProxy,
// AuthProxy, lockProxy, electionProxy): unary calls with the client's token, and
// server streams (snapshot, election observe) copied back at the pace the client reads.

import type * as grpc from '@grpc/grpc-js';
import type { ServiceImplementation, StreamCall } from '../server/grpc/call.js';
import { proxied } from './call.js';
import { forwardedMetadata, type Method, methodsOf, type Upstream } from './upstream.js';

/** Every method of `service` passed through unchanged. */
export function passThrough(upstream: Upstream, service: string): ServiceImplementation {
  const impl: ServiceImplementation = {};
  for (const [name, method] of Object.entries(methodsOf(service))) {
    impl[name] = method.responseStream
      ? (call: StreamCall<never, object>) => pipeServerStream(upstream, method, call.request, call, (r) => r)
      : proxied((req: object, call, cancelled) => upstream.unary<object>(method, req, forwardedMetadata(call.metadata), cancelled));
  }
  return impl;
}

/** A server-streaming call made upstream, each response (after `map`) written to `call`. */
export function pipeServerStream(upstream: Upstream, method: Method, req: object, call: StreamCall<unknown, object>, map: (resp: object) => object): void {
  const up = upstream.serverStream(method, req, forwardedMetadata(call.metadata));
  let done = false;
  up.on('data', (resp: object) => {
    if (!call.write(map(resp))) up.pause();
  });
  call.on('drain', () => up.resume());
  up.on('error', (err: grpc.ServiceError) => {
    if (done) return;
    done = true;
    call.emit('error', { code: err.code, details: err.details });
  });
  up.on('status', (s: grpc.StatusObject) => {
    if (done || s.code !== 0) return;
    done = true;
    call.end();
  });
  call.on('cancelled', () => {
    done = true;
    up.cancel();
  });
}
