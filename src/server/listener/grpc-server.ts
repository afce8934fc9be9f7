// The one grpc.Server a member shares across all its client URLs, set up as etcd's
// v3rpc.Server sets up grpc-go.

import * as grpc from '@grpc/grpc-js';

/** etcd's grpcOverheadBytes: room for the gRPC envelope around a request of maxRequestBytes. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

export interface GrpcServerOptions {
  /** --max-request-bytes: the largest raft request a client may send. */
  maxRequestBytes: number;
  /** Interceptors run around every call, e.g. the gRPC metrics. */
  interceptors?: grpc.ServerInterceptor[];
}

/**
 * Builds the grpc.Server. Receive limit = maxRequestBytes + 512 KiB and no send limit, as in
 * etcd, so an over-large Put reaches the server and is refused with etcd's own error.
 *
 * Keepalive: etcdctl pings every 2 s and kube-apiserver every 30 s, and grpc-go servers
 * answer too-frequent pings with GOAWAY too_many_pings unless told otherwise. grpc-js's
 * server enforces no ping policy at all, so those clients are never cut off; what is left
 * to set is etcd's own server-side probing of idle clients (every 2 h, 20 s to answer).
 */
export function createGrpcServer(opts: GrpcServerOptions): grpc.Server {
  if (!Number.isSafeInteger(opts.maxRequestBytes) || opts.maxRequestBytes <= 0) {
    throw new RangeError(`maxRequestBytes must be a positive integer, got ${opts.maxRequestBytes}`);
  }
  return new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_time_ms': 2 * 60 * 60 * 1000,
    'grpc.keepalive_timeout_ms': 20 * 1000,
    // channelz bookkeeping costs time on every call and nothing here reads it.
    'grpc.enable_channelz': 0,
    interceptors: opts.interceptors ?? [],
  });
}
