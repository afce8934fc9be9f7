// How the proxy's handlers answer: the upstream's status as it came (code and message),
// or the proxy's own EtcdError.

import type { UnaryCall, UnaryCallback } from '../server/grpc/call.js';
import { type CancelSignal, cancelSignalOf } from './upstream.js';

/** Wraps an async unary handler; a rejection's code and details are the call's status. */
export function proxied<Req, Res>(fn: (req: Req, call: UnaryCall<Req>, cancelled: CancelSignal | undefined) => Promise<Res>) {
  return (call: UnaryCall<Req>, callback: UnaryCallback<Res>): void => {
    fn(call.request, call, cancelSignalOf(call)).then(
      (res) => callback(null, res),
      (err: unknown) => callback(err),
    );
  };
}
