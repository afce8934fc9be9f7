// A distributed lock (etcd's concurrency.Mutex) run inside the member: the lock's
// waiters are the keys under `<name>/`, one per session lease, and the oldest holds it.

import type { MemberClient } from './client.js';
import { ConcurrencyErrors } from './errors.js';
import { createRevisionIs, firstCreatedOp, getOp, prefixOf, putOp, rangeAt, sessionKey, txn } from './ops.js';
import { waitForTurn } from './queue.js';

const NO_VALUE = Buffer.alloc(0);

export interface Acquired {
  /** the session's key under the lock's prefix; deleting it releases the lock */
  key: Buffer;
  /** the revision at which the lock was seen held */
  revision: number;
}

/**
 * Takes the lock `name` for the session's `lease`, waiting behind older holders. A
 * session that already waits for or holds it reuses its key. If the wait ends any way
 * but with the lock (the caller went away), the key is deleted, as etcd's Mutex does.
 */
export async function lock(client: MemberClient, name: Buffer, lease: bigint, signal: AbortSignal): Promise<Acquired> {
  const prefix = prefixOf(name);
  const key = sessionKey(prefix, lease);
  // One round trip when uncontended: join the queue (or find our key) and read its head.
  const joined = await client.txn(
    txn([createRevisionIs(key, 0)], [putOp(key, NO_VALUE, lease), firstCreatedOp(prefix)], [getOp(key), firstCreatedOp(prefix)]),
  );
  // When the compare failed the key exists, and the txn's get found it.
  const createRevision = joined.succeeded ? joined.revision : rangeAt(joined, 0).kvs[0]!.createRevision;
  const holder = rangeAt(joined, 1).kvs[0];
  if (holder === undefined || holder.createRevision === createRevision) return { key, revision: joined.revision };
  try {
    const revision = await waitForTurn(client, prefix, { key, createRevision }, ConcurrencyErrors.mutexSessionExpired, signal);
    return { key, revision };
  } catch (err) {
    // A lost key is gone already (and the same lease may have queued a new one since).
    if (err !== ConcurrencyErrors.mutexSessionExpired) {
      // Best effort, as etcd's: if this fails too, the lease still bounds the key's life.
      await client.delete(key).catch(() => undefined);
    }
    throw err;
  }
}
