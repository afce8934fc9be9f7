export { Transport, type TransportOptions } from './transport.js';
export { fetchClusterMembers, fetchServerVersion, type ClusterMember } from './members.js';
export type { RaftHandle, SnapshotHooks } from './types.js';
export { SnapshotRefused } from './snapshot.js';
export type { PeerCounters } from './status.js';
export { ForwardFailed, type LeaderRpc } from './leader-rpc.js';
export { fetchPeerHashKV } from './hashkv.js';
