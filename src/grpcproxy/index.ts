export { startGrpcProxy, type GrpcProxy, type GrpcProxyConfig } from './proxy.js';
export { ProxyStartError } from './tls.js';
