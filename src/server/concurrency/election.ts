// Leader election (etcd's concurrency.Election) run inside the member: candidates are
// the keys under `<name>/`, one per session lease, holding their proposed value; the
// oldest is the leader.

import type { KeyValue } from '../../mvcc/index.js';
import type { MemberClient } from './client.js';
import { ConcurrencyErrors } from './errors.js';
import { createRevisionIs, deleteOp, firstCreatedOp, getOp, prefixEnd, prefixOf, putOp, rangeAt, sessionKey, txn } from './ops.js';
import { waitForTurn } from './queue.js';

/** v3electionpb.LeaderKey: what identifies a leadership (the key and the revision that created it). */
export interface LeaderKey {
  name: Buffer;
  key: Buffer;
  rev: number;
  lease: bigint;
}

/** A leader's key-value as read at `revision`. */
export interface LeaderKv {
  kv: KeyValue;
  revision: number;
}

/**
 * Campaigns for `name` with `value` and resolves once this session leads, with the
 * revision of its campaign txn (etcd answers with that header, however long it waited).
 * Campaigning again with the same lease keeps the candidacy and proclaims a new value.
 * If the caller goes away while waiting, the candidacy is withdrawn, as etcd does.
 */
export async function campaign(
  client: MemberClient,
  name: Buffer,
  lease: bigint,
  value: Buffer,
  signal: AbortSignal,
): Promise<{ leader: LeaderKey; revision: number }> {
  const prefix = prefixOf(name);
  const key = sessionKey(prefix, lease);
  const joined = await client.txn(txn([createRevisionIs(key, 0)], [putOp(key, value, lease)], [getOp(key)]));
  const leader: LeaderKey = { name, key, rev: joined.revision, lease };
  if (!joined.succeeded) {
    // When the compare failed the key exists, and the txn's get found it.
    const kv = rangeAt(joined, 0).kvs[0]!;
    leader.rev = kv.createRevision;
    if (!kv.value.equals(value)) {
      try {
        await proclaim(client, leader, value);
      } catch (err) {
        await resign(client, leader).catch(() => undefined);
        throw err;
      }
    }
  }
  try {
    await waitForTurn(client, prefix, { key, createRevision: leader.rev }, ConcurrencyErrors.electionSessionExpired, signal);
  } catch (err) {
    // Best effort, as etcd's: if this fails too, the lease still bounds the key's life.
    if (signal.aborted) await resign(client, leader).catch(() => undefined);
    throw err;
  }
  return { leader, revision: joined.revision };
}

/** Sets the leader's value, if `leader` still leads; resolves with the revision of the write. */
export async function proclaim(client: MemberClient, leader: Omit<LeaderKey, 'name'>, value: Buffer): Promise<number> {
  const r = await client.txn(txn([createRevisionIs(leader.key, leader.rev)], [putOp(leader.key, value, leader.lease)]));
  if (!r.succeeded) throw ConcurrencyErrors.electionNotLeader;
  return r.revision;
}

/** Gives up leadership (or candidacy): deletes the key if it is still that leadership's. */
export async function resign(client: MemberClient, leader: Pick<LeaderKey, 'key' | 'rev'>): Promise<number> {
  const r = await client.txn(txn([createRevisionIs(leader.key, leader.rev)], [deleteOp(leader.key)]));
  return r.revision;
}

/** The current leader of `name`, or undefined when nobody leads. */
async function readLeader(client: MemberClient, prefix: Buffer): Promise<{ kv: KeyValue | undefined; revision: number }> {
  const r = await client.txn(txn([], [firstCreatedOp(prefix)]));
  return { kv: rangeAt(r, 0).kvs[0], revision: r.revision };
}

export async function leader(client: MemberClient, name: Buffer): Promise<LeaderKv> {
  const r = await readLeader(client, prefixOf(name));
  if (r.kv === undefined) throw ConcurrencyErrors.electionNoLeader;
  return { kv: r.kv, revision: r.revision };
}

/**
 * The leader of `name` and each change to it, in order, until `signal` aborts: the
 * current leader (or the first candidate to appear), then each new value it proclaims,
 * then on its resignation the next leader, and so on. Intermediate values may be
 * skipped only across a compaction; the latest is always delivered.
 */
export async function* observe(client: MemberClient, name: Buffer, signal: AbortSignal): AsyncGenerator<LeaderKv> {
  const prefix = prefixOf(name);
  for (;;) {
    signal.throwIfAborted();
    const current = await readLeader(client, prefix);
    const first = current.kv !== undefined ? { kv: current.kv, revision: current.revision } : await firstCandidate(client, prefix, current.revision + 1, signal);
    if (first === undefined) continue; // history compacted: read again
    yield first;
    yield* leaderChanges(client, first, signal);
  }
}

/** The first key put under the prefix from revision `from` on; undefined after a compaction. */
async function firstCandidate(client: MemberClient, prefix: Buffer, from: number, signal: AbortSignal): Promise<LeaderKv | undefined> {
  const watch = client.watch(signal);
  try {
    watch.add({ key: prefix, rangeEnd: prefixEnd(prefix), startRevision: from, noDelete: true });
    for (;;) {
      const r = await watch.next();
      if (r.compactRevision !== undefined) return undefined;
      const put = r.events[0];
      // The header says the put's own revision, even if the response carries later ones.
      if (put !== undefined) return { kv: put.kv, revision: put.kv.modRevision };
    }
  } finally {
    watch.close();
  }
}

/** Each value the leader proclaims after `from`, until its key is deleted (or history compacted). */
async function* leaderChanges(client: MemberClient, from: LeaderKv, signal: AbortSignal): AsyncGenerator<LeaderKv> {
  const watch = client.watch(signal);
  try {
    watch.add({ key: from.kv.key, startRevision: from.revision + 1 });
    for (;;) {
      const r = await watch.next();
      if (r.compactRevision !== undefined) return;
      for (const ev of r.events) {
        if (ev.type === 'delete') return;
        yield { kv: ev.kv, revision: r.revision };
      }
    }
  } finally {
    watch.close();
  }
}
