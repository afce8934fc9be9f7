export { serveClient, servePeer, serveMetrics, bindAddress, groupListenUrls, type Listener, type ServeOptions } from './serve.js';
export { GrpcServer, GRPC_OVERHEAD_BYTES, type GrpcServerOptions } from '../grpc/server.js';
export { sniffProtocol, HTTP2_PREFACE, type SniffResult } from './sniff.js';
