// What a v2 request from the raft log does to the v2 store, as etcd's applierV2store:
// PUT is a set, a create (prevExist=false), an update (prevExist=true) or a
// compare-and-swap; DELETE a delete or compare-and-delete; POST an in-order create;
// QGET a read through raft; SYNC expires TTLs with the leader's clock.

import type { V2Event } from './event.js';
import type { UnixNanos } from './node.js';
import type { TtlOptions, V2Store } from './store.js';

export type StoreRequest =
  | {
      readonly method: 'POST' | 'PUT' | 'DELETE' | 'QGET';
      readonly path: string;
      readonly val: string;
      readonly dir: boolean;
      readonly prevValue: string;
      readonly prevIndex: number;
      /** undefined: not given */
      readonly prevExist: boolean | undefined;
      readonly ttl: TtlOptions;
      readonly recursive: boolean;
      readonly sorted: boolean;
    }
  | { readonly method: 'SYNC'; readonly time: UnixNanos };

/** A request on a key (every method but SYNC). */
export type KeyStoreRequest = Exclude<StoreRequest, { method: 'SYNC' }>;

/** A request on `path` with every field not in `fields` at its zero value (as a Go Request literal leaves it). */
export function keyStoreRequest(method: KeyStoreRequest['method'], path: string, fields: Partial<KeyStoreRequest> = {}): KeyStoreRequest {
  return { method, path, val: '', dir: false, prevValue: '', prevIndex: 0, prevExist: undefined, ttl: {}, recursive: false, sorted: false, ...fields };
}

/** Applies `r`; throws the store's V2Error when it fails. SYNC answers nothing. */
export function applyStoreRequest(store: V2Store, r: StoreRequest): V2Event | undefined {
  switch (r.method) {
    case 'SYNC':
      store.deleteExpiredKeys(r.time);
      return undefined;
    case 'QGET':
      return store.get(r.path, r.recursive, r.sorted);
    case 'POST':
      return store.create(r.path, r.dir, r.val, true, r.ttl);
    case 'DELETE':
      if (r.prevIndex > 0 || r.prevValue !== '') return store.compareAndDelete(r.path, r.prevValue, r.prevIndex);
      return store.delete(r.path, r.dir, r.recursive);
    case 'PUT':
      if (r.prevExist === true) {
        if (r.prevIndex === 0 && r.prevValue === '') return store.update(r.path, r.val, r.ttl);
        return store.compareAndSwap(r.path, r.prevValue, r.prevIndex, r.val, r.ttl);
      }
      if (r.prevExist === false) return store.create(r.path, r.dir, r.val, false, r.ttl);
      if (r.prevIndex > 0 || r.prevValue !== '') return store.compareAndSwap(r.path, r.prevValue, r.prevIndex, r.val, r.ttl);
      return store.set(r.path, r.dir, r.val, r.ttl);
  }
}
