// etcd 3.4's corruption check (etcdserver/corrupt.go), run by this member: with
// --experimental-initial-corrupt-check a restarting member compares its store's HashKV
// with its peers' at its own revision before it serves anyone, and refuses to start on a
// mismatch; with --experimental-corrupt-check-time the leader compares its HashKV with
// every follower's on that period and raises the CORRUPT alarm on a mismatch, which stops
// every member's writes (apply.ts). Peers are asked over GET /members/hashkv, so real
// etcd members are checked the same way as etcd-ts ones.

import type { Logger } from 'pino';
import { isMvccError } from '../mvcc/index.js';
import { idHex } from './ids.js';
import type { PeerHashKV } from './transport/hashkv.js';

export interface CorruptCheckDeps {
  readonly localId: bigint;
  readonly log: Logger;
  /** etcd's ReqTimeout: the wait for each peer URL's answer and for the leader's read index */
  readonly requestTimeoutMs: number;
  /** HashByRev on this member's store (revision 0: its current revision) */
  hashKV(revision: number): Promise<PeerHashKV>;
  /** every member of the cluster, this one included */
  members(): ReadonlyArray<{ readonly id: bigint; readonly peerUrls: readonly string[] }>;
  /** one peer URL's HashKV at `revision`; rejects with an MvccError when the peer refuses that revision */
  fetchHashKV(url: string, revision: number, timeoutMs: number): Promise<PeerHashKV>;
  isLeader(): boolean;
  /** settles once this member has applied everything committed before the call (a read index) */
  linearizableReadNotify(): Promise<void>;
  /** proposes AlarmRequest{ACTIVATE, CORRUPT} for member 0, as etcd 3.4 does */
  raiseCorruptAlarm(): Promise<void>;
}

/** A peer's answer, or the last failure of its peer URLs. */
type PeerHash = { id: bigint; urls: readonly string[] } & ({ hash: PeerHashKV } | { error: Error });

/** The member's start failure when the initial check found a mismatch; etcd's words. */
export class DataInconsistency extends Error {
  constructor(localId: bigint) {
    super(`${idHex(localId)} found data inconsistency with peers`);
  }
}

/**
 * etcd's CheckInitialHashKV: only hashes at the same revision with the same compact
 * revision must match; a peer that is behind, compacted further or unreachable is warned
 * about and passed over.
 */
export async function checkInitialHashKV(d: CorruptCheckDeps): Promise<void> {
  const local = idHex(d.localId);
  d.log.info({ 'local-member-id': local, timeout: `${d.requestTimeoutMs}ms` }, 'starting initial corruption check');
  const own = await d.hashKV(0);
  const fields = (p: { id: bigint; urls: readonly string[] }) => ({
    'local-member-id': local,
    'local-member-revision': own.revision,
    'local-member-compact-revision': own.compactRevision,
    'local-member-hash': own.hash,
    'remote-peer-id': idHex(p.id),
    'remote-peer-endpoints': p.urls,
  });
  let mismatches = 0;
  for (const p of await peerHashes(d, own.revision)) {
    if ('error' in p) {
      if (isMvccError(p.error, 'future-rev')) d.log.warn({ ...fields(p), error: p.error.message }, 'cannot fetch hash from slow remote peer');
      else if (isMvccError(p.error, 'compacted')) d.log.warn({ ...fields(p), error: p.error.message }, 'cannot fetch hash from remote peer; local member is behind');
      continue;
    }
    if (p.hash.hash === own.hash) continue;
    const all = {
      ...fields(p),
      'remote-peer-revision': p.hash.revision,
      'remote-peer-compact-revision': p.hash.compactRevision,
      'remote-peer-hash': p.hash.hash,
    };
    if (p.hash.compactRevision === own.compactRevision) {
      d.log.warn(all, 'found different hash values from remote peer');
      mismatches++;
    } else {
      d.log.warn(all, 'found different compact revision values from remote peer');
    }
  }
  if (mismatches > 0) throw new DataInconsistency(d.localId);
  d.log.info({ 'local-member-id': local }, 'initial corruption checking passed; no corruption');
}

/**
 * etcd's checkHashKV, run by the leader: its hash before and after a read index must agree
 * when nothing moved, and each follower's (taken at the leader's first revision) must be at
 * most the leader's revision and compact revision, and equal to the leader's hash when the
 * compact revisions are equal. One CORRUPT alarm at most per check.
 */
export async function checkHashKV(d: CorruptCheckDeps): Promise<void> {
  const first = await d.hashKV(0);
  const peers = await peerHashes(d, first.revision);
  await withTimeout(d.linearizableReadNotify(), d.requestTimeoutMs);
  const second = await d.hashKV(0);

  let alarmed = false;
  const mismatch = () => {
    if (alarmed) return;
    alarmed = true;
    d.raiseCorruptAlarm().catch((err: unknown) => d.log.warn({ error: (err as Error).message }, 'failed to raise the CORRUPT alarm'));
  };
  if (second.hash !== first.hash && second.revision === first.revision && second.compactRevision === first.compactRevision) {
    d.log.warn(
      {
        'revision-1': first.revision, 'compact-revision-1': first.compactRevision, 'hash-1': first.hash,
        'revision-2': second.revision, 'compact-revision-2': second.compactRevision, 'hash-2': second.hash,
      },
      'found hash mismatch',
    );
    mismatch();
  }
  let checked = 0;
  for (const p of peers) {
    if (!('hash' in p)) continue;
    checked++;
    const follower = idHex(p.id);
    if (p.hash.revision > second.revision) {
      d.log.warn(
        { 'leader-revision': second.revision, 'follower-revision': p.hash.revision, 'follower-peer-id': follower },
        "revision from follower must be less than or equal to leader's",
      );
      mismatch();
    }
    if (p.hash.compactRevision > second.compactRevision) {
      d.log.warn(
        { 'leader-compact-revision': second.compactRevision, 'follower-compact-revision': p.hash.compactRevision, 'follower-peer-id': follower },
        "compact revision from follower must be less than or equal to leader's",
      );
      mismatch();
    }
    if (p.hash.compactRevision === first.compactRevision && p.hash.hash !== first.hash) {
      d.log.warn(
        {
          'leader-compact-revision': second.compactRevision, 'leader-hash': first.hash,
          'follower-compact-revision': p.hash.compactRevision, 'follower-hash': p.hash.hash, 'follower-peer-id': follower,
        },
        'same compact revision then hashes must match',
      );
      mismatch();
    }
  }
  d.log.info({ 'number-of-peers-checked': checked }, 'finished peer corruption check');
}

/** etcd's monitorKVHash: every `intervalMs`, the leader runs checkHashKV; a failed check is logged and tried again next time. */
export class CorruptionMonitor {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly d: CorruptCheckDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.d.log.info({ 'local-member-id': idHex(this.d.localId), interval: `${this.intervalMs}ms` }, 'enabled corruption checking');
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    // The next check is timed from the end of this one, as etcd's loop waits after each.
    this.timer = setTimeout(() => void this.runOnce().then(() => this.schedule()), this.intervalMs);
  }

  private async runOnce(): Promise<void> {
    if (!this.d.isLeader()) return;
    try {
      await checkHashKV(this.d);
    } catch (err) {
      this.d.log.warn({ error: (err as Error).message }, 'failed to check hash KV');
    }
  }
}

/** etcd's getPeerHashKVs: each other member's HashKV at `revision`, from the first of its peer URLs that answers. */
async function peerHashes(d: CorruptCheckDeps, revision: number): Promise<PeerHash[]> {
  const out: PeerHash[] = [];
  for (const m of d.members()) {
    if (m.id === d.localId || m.peerUrls.length === 0) continue;
    let error: Error | undefined;
    for (const url of m.peerUrls) {
      try {
        out.push({ id: m.id, urls: m.peerUrls, hash: await d.fetchHashKV(url, revision, d.requestTimeoutMs) });
        error = undefined;
        break;
      } catch (err) {
        error = err as Error;
        d.log.warn(
          { 'local-member-id': idHex(d.localId), 'requested-revision': revision, 'remote-peer-endpoint': url, error: error.message },
          'failed hash kv request',
        );
      }
    }
    if (error !== undefined) out.push({ id: m.id, urls: m.peerUrls, error });
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('context deadline exceeded')), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
