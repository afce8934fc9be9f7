// A snapshot a peer sends, from the moment its database starts arriving until it is
// installed or dropped, in etcd's order: the database is saved beside the live store,
// then raft decides. A snapshot raft ignores (stale, late, from an old term or forged)
// is deleted and the live store never changes; one it accepts is installed when the
// Ready carrying it is handled. One snapshot at a time.

import { BoltFormatError } from '../bbolt/index.js';
import type { Message, Snapshot } from '../raftpb/types.js';
import { AlarmStore } from './alarms.js';
import { readSnapshotState } from './import/snapshot-data.js';
import { idHex16 } from './ids.js';
import { Membership } from './membership.js';
import { type SavedDbTimes, discardReceivedDb, receivedDbPath, saveReceivedDb } from './received-db.js';
import { SnapshotRefused } from './transport/index.js';
import { V2Store } from './v2store/index.js';

/** The database waits at `file` (see received-db.ts). */
type IncomingSnapshot =
  | { readonly stage: 'saving'; readonly index: number; readonly term: number; readonly from: bigint; readonly file: string }
  | {
      readonly stage: 'accepted';
      readonly index: number;
      readonly term: number;
      readonly from: bigint;
      readonly file: string;
      /** settles the receive call once the store is installed */
      readonly installed: { resolve(): void; reject(err: Error): void };
    };
type SavedSnapshot = Extract<IncomingSnapshot, { stage: 'saving' }>;

/** A leader's store, saved beside the live one, that goes with an accepted snapshot. */
export interface ReceivedStore {
  readonly file: string;
  readonly from: bigint;
}

/** What the inbox needs of the member. */
export interface InboxMember {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  /** member/snap, where received stores wait beside the live one */
  readonly snapDir: string;
  readonly stopped: () => boolean;
  readonly applied: () => number;
  readonly committed: () => number;
  readonly term: () => number;
  readonly leader: () => bigint;
  /** steps the MsgSnap into raft; throws what raft throws for one it refuses */
  readonly step: (m: Message) => void;
  /** the snapshot raft accepted and has not handed out yet */
  readonly pendingSnapshot: () => { index: number; term: number } | undefined;
  /** a received database was saved whole, in this long */
  readonly onDbSaved?: (times: SavedDbTimes) => void;
}

export class SnapshotInbox {
  private incoming: IncomingSnapshot | undefined;

  constructor(private readonly member: InboxMember) {}

  /** a received store is being saved or swapped in (etcd_server_snapshot_apply_in_progress_total) */
  get busy(): boolean {
    return this.incoming !== undefined;
  }

  /** Saves the database, offers the MsgSnap to raft and resolves once the store is installed. */
  async receive(m: Message, db: AsyncIterable<Buffer>): Promise<void> {
    const { index, term } = m.snapshot!.metadata;
    this.refuseUseless(m);
    const saving = { stage: 'saving', index, term, from: m.from, file: receivedDbPath(this.member.snapDir, index) } as const;
    this.incoming = saving;
    let installed: Promise<void>;
    try {
      try {
        const times = await saveReceivedDb(saving.file, db);
        this.member.onDbSaved?.(times);
      } catch (err) {
        if (err instanceof BoltFormatError) throw new SnapshotRefused(`its database is not a whole bbolt file: ${err.message}`);
        throw err;
      }
      installed = this.offer(m, saving);
    } catch (err) {
      this.incoming = undefined;
      await discardReceivedDb(saving.file);
      throw err;
    }
    await installed;
  }

  /**
   * Refuses, before a byte is written, a snapshot raft would ignore for what we know
   * already: one not ahead of what this member has (raft ignores it at or below its
   * commit index), one from an older term, one at this term from a member that is not
   * its leader (there is one leader per term), or one whose data this member could not
   * restore. One snapshot is received at a time.
   */
  private refuseUseless(m: Message): void {
    const { index } = m.snapshot!.metadata;
    const member = this.member;
    if (member.stopped()) throw new SnapshotRefused('the member is stopping');
    if (this.incoming !== undefined) {
      throw new SnapshotRefused(`the snapshot at index ${this.incoming.index} from ${idHex16(this.incoming.from)} is still being received or installed`);
    }
    const applied = member.applied();
    const committed = member.committed();
    const term = member.term();
    const leader = member.leader();
    if (index <= applied || index <= committed) {
      throw new SnapshotRefused(`its index ${index} is not ahead of this member's (applied ${applied}, committed ${committed})`);
    }
    if (m.term < term) throw new SnapshotRefused(`its term ${m.term} is older than this member's term ${term}`);
    if (m.term === term && leader !== 0n && m.from !== leader) {
      throw new SnapshotRefused(`${idHex16(m.from)} is not the leader at term ${term} (${idHex16(leader)} is)`);
    }
    // the install restores membership, alarms and the v2 store from it: try that now, on copies
    try {
      const data = readSnapshotState(m.snapshot!.data, `the snapshot at index ${index} from ${idHex16(m.from)}`);
      new Membership(member.clusterId, member.memberId).restore(data.membership);
      if (data.alarms !== undefined) new AlarmStore().restore(data.alarms);
      if (data.v2store !== undefined) new V2Store().recover(data.v2store);
    } catch (err) {
      throw new SnapshotRefused(`its data is neither etcd-ts's nor etcd's: ${(err as Error).message}`);
    }
  }

  /**
   * Steps the MsgSnap whose store is saved; raft accepting it leaves it pending until its
   * Ready. Returns a promise of the install, or throws SnapshotRefused if raft ignored it.
   */
  private offer(m: Message, saved: SavedSnapshot): Promise<void> {
    if (this.member.stopped()) throw new SnapshotRefused('the member is stopping');
    try {
      this.member.step(m); // raft answers the sender either way
    } catch (err) {
      throw new SnapshotRefused(`raft refused it: ${(err as Error).message}`);
    }
    const pending = this.member.pendingSnapshot();
    if (pending?.index !== saved.index || pending.term !== saved.term) {
      throw new SnapshotRefused(`raft ignored it: it is not ahead of what this member has committed (${this.member.committed()})`);
    }
    return new Promise((resolve, reject) => {
      this.incoming = { ...saved, stage: 'accepted', installed: { resolve, reject } };
    });
  }

  /** The store received with the snapshot raft handed out in a Ready: it must be the one it accepted. */
  accepted(snap: Snapshot): ReceivedStore {
    const incoming = this.incoming;
    if (incoming?.stage !== 'accepted' || incoming.index !== snap.metadata.index || incoming.term !== snap.metadata.term) {
      throw new Error(`raft restored the snapshot at index ${snap.metadata.index}, term ${snap.metadata.term} without the store received with it`);
    }
    return { file: incoming.file, from: incoming.from };
  }

  /** Settles the receive call with the install's outcome; the inbox is free again after it. */
  async installing(install: Promise<void>): Promise<void> {
    const incoming = this.incoming;
    try {
      await install;
      if (incoming?.stage === 'accepted') incoming.installed.resolve();
    } catch (err) {
      if (incoming?.stage === 'accepted') incoming.installed.reject(err as Error);
    } finally {
      if (this.incoming === incoming) this.incoming = undefined;
    }
  }

  /**
   * The member stops. An accepted snapshot whose Ready never came: its store stays beside
   * the live one and is installed at start if the WAL recorded the snapshot.
   */
  abandon(err: Error): void {
    if (this.incoming?.stage === 'accepted') this.incoming.installed.reject(err);
  }
}
