// A whole simulated member: besides the real driver and WAL, the server's own Applier
// over a real MvccStore (LevelDB in a temporary directory), with the lessor,
// membership, alarms, auth and v2 store a member has, and the SnapshotInbox a leader's
// snapshot arrives through. Proposals are real requests (InternalRaftRequest bytes,
// as the gRPC edge makes them) whose results come back through the WaitRegistry.
//
// A crash keeps what the backend committed (its LevelDB batches) and drops what was
// staged, as a crash of the real member does: the WAL must replay the rest.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { type Message, type Snapshot, emptyConfState } from '../../raftpb/index.js';
import { MvccStore } from '../../mvcc/index.js';
import { Applier, type ApplierClock, type ApplierParts, type ApplierRaft } from '../../server/applier.js';
import { AlarmStore } from '../../server/alarms.js';
import { AuthStore, readAuthState } from '../../server/auth/store.js';
import { SimpleTokens } from '../../server/auth/simple-token.js';
import { openBackup, readBackup } from '../../server/backup/backup-file.js';
import type { EtcdDbWriter } from '../../server/backup/db-file.js';
import { installReceivedStore } from '../../server/bootstrap.js';
import { readSnapshotState } from '../../server/import/snapshot-data.js';
import { Lessor, restoreLessor } from '../../server/lessor.js';
import { LiveStore } from '../../server/live-store.js';
import { Membership } from '../../server/membership.js';
import { InternalRaftRequest, uint64 } from '../../server/pb.js';
import { restoreInterruptedSwap } from '../../server/received-db.js';
import { SnapshotInbox } from '../../server/snapshot-inbox.js';
import { V2Store } from '../../server/v2store/index.js';
import type { ApplyResult } from '../../server/raft-request.js';
import { WaitRegistry } from '../../server/wait.js';
import { SnapshotBeforeFlushApplier } from './broken-driver.js';

const CLUSTER_ID = 0x5137n;
const silent = pino({ level: 'silent' });

/**
 * etcd's bbolt file, left out. A real member writes it before every .snap so that etcd's
 * tools and real etcd find the whole store in a data dir it left, even after a crash
 * (server/backup/db-file.ts; test/e2e/etcd-db-file.test.ts checks it with real etcd).
 * Nothing in a simulated member reads it back, and exporting it at every snapshot was a
 * quarter of a seed's CPU; the same bbolt export still runs for every snapshot a leader
 * ships, and the follower imports it.
 */
const noEtcdDb: EtcdDbWriter = {
  path: '(not kept by simulated members)',
  present: false,
  write: (state) => state.view.close(),
  beforeSnapshot: (state) => state.view.close(),
  exportsBeforeSnapshot: () => false,
};

export interface MemberTuning {
  readonly snapshotCount: number;
  /** entries the log keeps behind a snapshot (etcd's SnapshotCatchUpEntries) */
  readonly snapshotCatchUpEntries: number;
  readonly backendBatchIntervalMs: number;
  readonly backendBatchLimit: number;
  readonly electionMs: number;
}

/** What the simulation does for the member that a running server would. */
export interface MemberHooks {
  /** the member applied its own removal */
  removed(): void;
  fatal(err: Error): void;
  /** the driver's state, for the inbox's checks */
  committed(): number;
  term(): number;
  leader(): bigint;
  step(m: Message): void;
  pendingSnapshot(): { index: number; term: number } | undefined;
  stopped(): boolean;
}

/** The state a member's apply side starts from: its store as LevelDB holds it, and what the snapshot restores. */
type MemberState = Pick<ApplierParts, 'store' | 'lessor' | 'membership' | 'alarms' | 'auth' | 'v2store'>;

/** Where a member's store lives: `dir` holds its LevelDB and the stores it receives. */
function layout(dir: string): { dbDir: string; snapDir: string } {
  return { dbDir: path.join(dir, 'leveldb'), snapDir: path.join(dir, 'snap') };
}

/** Opens the store at `dir` as a restarting member does, against the snapshot its WAL resumes from. */
export async function openMemberState(id: bigint, dir: string, snapshot: Snapshot | undefined, now: () => number): Promise<MemberState> {
  const l = layout(dir);
  await mkdir(l.snapDir, { recursive: true });
  await restoreInterruptedSwap(l.dbDir);
  const open = (restored?: Parameters<typeof MvccStore.open>[0]['restored']) => MvccStore.open({ dir: l.dbDir, restored });
  const mvcc = await installReceivedStore(await open(), l, snapshot?.metadata.index ?? 0, open, silent);
  const store = new LiveStore(mvcc);
  const membership = new Membership(CLUSTER_ID, id);
  const alarms = new AlarmStore();
  const v2store = new V2Store();
  if (snapshot !== undefined) {
    const data = readSnapshotState(snapshot.data, `n${id}'s snapshot`);
    membership.restore(data.membership);
    if (data.alarms !== undefined) alarms.restore(data.alarms);
    else alarms.restoreFromRecords(await mvcc.alarmRecords());
    if (data.v2store !== undefined) v2store.recover(data.v2store);
  }
  const lessor = new Lessor({ minTtl: 1, now });
  await restoreLessor(lessor, mvcc);
  const auth = new AuthStore(() => store.current, new SimpleTokens(60_000, now), silent);
  auth.restore(await readAuthState(mvcc));
  return { store, lessor, membership, alarms, auth, v2store };
}

export class SimMember {
  readonly applier: Applier;
  readonly inbox: SnapshotInbox;
  readonly wait = new WaitRegistry<ApplyResult>();
  /** the applied index its store was last hashed at (the simulation's store check) */
  lastHashed = -1;
  private readonly state: MemberState;
  private readonly dir: string;

  /** snapshotBeforeFlush: the broken applier that freezes snapshots without writing out staged writes */
  constructor(id: bigint, dir: string, state: MemberState, raft: ApplierRaft, clock: ApplierClock, tuning: MemberTuning, snapshotBeforeFlush: boolean, hooks: MemberHooks, snapshot: Snapshot | undefined) {
    this.state = state;
    this.dir = dir;
    const l = layout(dir);
    const ApplierKind = snapshotBeforeFlush ? SnapshotBeforeFlushApplier : Applier;
    this.applier = new ApplierKind({
      memberId: id,
      config: { ...tuning, maxTxnOps: 128, warningApplyMs: 100 },
      raft,
      store: state.store,
      lessor: state.lessor,
      membership: state.membership,
      alarms: state.alarms,
      auth: state.auth,
      v2store: state.v2store,
      peers: { add: () => undefined, update: () => undefined, remove: () => undefined },
      wait: this.wait,
      log: silent,
      clock,
      dbFile: noEtcdDb,
      dbDir: l.dbDir,
      snapshotIndex: snapshot?.metadata.index ?? 0,
      confState: snapshot?.metadata.confState ?? emptyConfState,
      events: {
        applied: () => undefined,
        firstCommitInTerm: () => undefined,
        snapshotSaved: () => undefined,
        removed: () => hooks.removed(),
        leaseRevoked: () => undefined,
        backendCommitted: () => undefined,
        fatal: (err) => hooks.fatal(err),
      },
    });
    this.inbox = new SnapshotInbox({
      clusterId: CLUSTER_ID,
      memberId: id,
      snapDir: l.snapDir,
      stopped: hooks.stopped,
      applied: () => this.applier.applied,
      committed: hooks.committed,
      term: hooks.term,
      leader: hooks.leader,
      step: hooks.step,
      pendingSnapshot: hooks.pendingSnapshot,
    });
  }

  get store(): MvccStore {
    return this.state.store.current;
  }

  get lessor(): Lessor {
    return this.state.lessor;
  }

  /**
   * A request as the gRPC edge encodes it, under an ID unique in the cluster (every
   * member's applier answers the waiter of that ID); resolves with its result once applied here.
   */
  request(id: bigint, req: Record<string, unknown>, propose: (data: Uint8Array) => void): Promise<unknown> {
    const result = this.wait.register(id, 0, Number.MAX_SAFE_INTEGER, () => new Error('timed out'));
    try {
      propose(InternalRaftRequest.encode({ header: { ID: uint64(id) }, ...req }).finish());
    } catch (err) {
      this.wait.fail(id, err);
    }
    return result.then((applied) => applied.result);
  }

  /** The MsgSnap and the store to ship with it, as the transport's prepare hook makes them. */
  async snapshotToSend(m: Message): Promise<{ message: Message; db: Buffer }> {
    const { message, state } = await this.applier.snapshotToSend(m);
    const chunks: Buffer[] = [];
    for await (const c of readBackup(await openBackup(layout(this.dir).snapDir, state))) chunks.push(c);
    return { message, db: Buffer.concat(chunks) };
  }

  /** The process dies: nothing more is applied, and the store keeps what its backend committed. */
  async crash(): Promise<void> {
    void this.applier.stop();
    this.wait.failAll(new Error('crashed'));
    // a snapshot raft accepted whose Ready was cut short: its receive call settles, as at a stop
    this.inbox.abandon(new Error('crashed'));
    await this.state.store.current.abandon();
  }
}
