// grpc.health.v1.Health, as etcd registers it: the server as a whole ("") is SERVING.

import { Code } from '../grpc/codes.js';
import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { EtcdError } from '../errors.js';
import { unary } from './common.js';

const SERVING = 1;

export function healthService(): ServiceImplementation {
  return {
    Check: unary(async (req: { service: string }) => {
      if (req.service !== '') throw new EtcdError(Code.NOT_FOUND, 'unknown service');
      return { status: SERVING };
    }),
    Watch: (call: StreamCall<{ service: string }, object>) => {
      // The status never changes while the process serves: report it once, keep the stream open.
      call.write({ status: call.request.service === '' ? SERVING : 3 });
    },
  };
}
