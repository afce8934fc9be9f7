// Waiting for one's turn under a prefix, the queue both recipes share: the holder of a
// lock, or the leader of an election, is the oldest key under `<name>/`; everyone else
// waits until every key created before theirs is gone (etcd's waitDeletes).

import type { Event } from '../../mvcc/index.js';
import type { MemberClient } from './client.js';
import { getOp, lastCreatedBeforeOp, rangeAt, txn } from './ops.js';

/** A caller's own key in the queue and the revision that created it. */
export interface QueueKey {
  readonly key: Buffer;
  readonly createRevision: number;
}

/**
 * Resolves, with the revision of the read that found the way clear, once no key under
 * `prefix` created before `own` is left. Each round reads the newest such key and
 * watches it until it is deleted, so waiters form a chain instead of all waking on each
 * change.
 *
 * Unlike etcd 3.4, the caller's own key is watched too: if it goes first (its lease
 * expired or was revoked, or someone deleted it) the wait fails with `lost`, where
 * etcd would go on waiting and then report a lock or a leadership whose key is gone.
 */
export async function waitForTurn(
  client: MemberClient,
  prefix: Buffer,
  own: QueueKey,
  lost: Error,
  signal: AbortSignal,
): Promise<number> {
  for (;;) {
    signal.throwIfAborted();
    const read = await client.txn(txn([], [lastCreatedBeforeOp(prefix, own.createRevision - 1), getOp(own.key)]));
    const mine = rangeAt(read, 1).kvs[0];
    if (mine === undefined || mine.createRevision !== own.createRevision) throw lost;
    const before = rangeAt(read, 0).kvs[0];
    if (before === undefined) return read.revision;
    await waitForDelete(client, before.key, own.key, read.revision + 1, lost, signal);
  }
}

/**
 * Returns once `key` is deleted at or after revision `from` (or once its history there
 * was compacted: the caller reads again); throws `lost` if `own` is deleted first.
 */
async function waitForDelete(
  client: MemberClient,
  key: Buffer,
  own: Buffer,
  from: number,
  lost: Error,
  signal: AbortSignal,
): Promise<void> {
  const watch = client.watch(signal);
  try {
    watch.add({ key, startRevision: from, noPut: true });
    watch.add({ key: own, startRevision: from, noPut: true });
    for (;;) {
      const r = await watch.next();
      if (r.compactRevision !== undefined) return;
      if (r.events.some((ev: Event) => ev.kv.key.equals(own))) throw lost;
      if (r.events.length > 0) return;
    }
  } finally {
    watch.close();
  }
}
