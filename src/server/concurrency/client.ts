// The member's in-process client for its Lock and Election services (etcd's v3client):
// txns, deletes, lease grants and watches on this member through the same paths its KV,
// Lease and Watch services take, so what the recipes read is linearizable and what they
// write goes through raft, on a follower as on the leader.

import {
  type DeleteRangeResponse,
  type TxnResponse,
  type WatchRequest,
  type WatchResponseOut,
  type WatchStream,
  checkDeleteRangeRequest,
  checkTxnRequest,
} from '../../mvcc/index.js';
import { runTxn } from '../api/kv.js';
import { grantLease } from '../api/lease.js';
import { type PbTxnRequest, deleteRangeFromPb, txnFromPb } from '../convert.js';
import type { EtcdServer } from '../server.js';
import { deleteRequest } from './ops.js';

/** concurrency.NewSession's lease TTL when the caller brings no lease. */
const DEFAULT_SESSION_TTL = 60;

export class MemberClient {
  constructor(private readonly server: EtcdServer) {}

  txn(req: PbTxnRequest): Promise<TxnResponse> {
    const txn = txnFromPb(req);
    checkTxnRequest(txn, this.server.config.maxTxnOps);
    return runTxn(this.server, req, txn);
  }

  delete(key: Buffer): Promise<DeleteRangeResponse> {
    const req = deleteRequest(key);
    checkDeleteRangeRequest(deleteRangeFromPb(req));
    return this.server.proposals.propose({ kind: 'deleteRange', body: req });
  }

  /**
   * The lease a session's keys live under: the caller's, or when it names none (0) a
   * new one with the default session TTL, as concurrency.NewSession grants. Like etcd's
   * services, the session is orphaned at once: nobody here keeps the lease alive, its
   * owner does (or it expires and takes the keys with it).
   */
  async sessionLease(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    return (await grantLease(this.server, DEFAULT_SESSION_TTL, 0n)).id;
  }

  /** Watchers on this member's store, read until `signal` aborts. */
  watch(signal: AbortSignal): StoreWatch {
    return new StoreWatch(this.server, signal);
  }
}

/** Unread responses after which the store is told to hold back. */
const MAX_UNREAD = 16;

/**
 * Watchers on the member's store read as a sequence of responses, by code that waits on
 * keys (a lock's predecessor, an election's leader). While responses pile up unread the
 * store holds back (and catches the watchers up from history later), so a slow reader
 * costs no memory. Close it when done.
 */
export class StoreWatch {
  private readonly stream: WatchStream;
  private readonly unread: WatchResponseOut[] = [];
  private wake: (() => void) | undefined;
  private readonly onAbort = (): void => this.wakeReader();

  constructor(
    server: EtcdServer,
    private readonly signal: AbortSignal,
  ) {
    this.stream = server.store.newWatchStream((r) => this.receive(r));
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Adds a watcher; returns its ID (responses carry it). */
  add(req: WatchRequest): number {
    const r = this.stream.watch(req);
    if ('error' in r) throw new Error(`cannot watch ${req.key.toString()}: ${r.error}`);
    return r.watchId;
  }

  /** The next response; rejects with the signal's reason once it aborts. */
  async next(): Promise<WatchResponseOut> {
    for (;;) {
      this.signal.throwIfAborted();
      const r = this.unread.shift();
      if (r !== undefined) {
        if (this.unread.length === 0) this.stream.resume();
        return r;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  close(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.stream.close();
    this.unread.length = 0;
  }

  private receive(r: WatchResponseOut): boolean {
    this.unread.push(r);
    this.wakeReader();
    return this.unread.length < MAX_UNREAD;
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
