// etcd-ts as a library: start a member in-process, with the same configuration the
// CLI takes.
export { startEtcd, type Etcd, type StartOptions } from './server/etcd.js';
export type { EtcdConfig } from './server/config/types.js';
export { parseCommandLine, defaultConfig, configFromFile } from './server/config/index.js';
