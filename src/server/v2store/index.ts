export { V2Error, V2ErrorCode } from './errors.js';
export { type Action, type V2Event, HISTORY_CAPACITY, eventJson, isCreated } from './event.js';
export { type NodeExtern, type UnixNanos, nowNanos } from './node.js';
export { CLUSTER_PREFIX, KEYS_PREFIX, type TtlOptions, type V2StoreSnapshot, type V2StoreStats, V2Store, cleanPath } from './store.js';
export type { Watcher } from './watcher.js';
export { type KeyStoreRequest, type StoreRequest, applyStoreRequest, keyStoreRequest } from './request.js';
