// A member restarting from its data dir (etcd's restartNode): the newest snapshot the WAL
// records, the entries after it, and with --force-new-cluster a log that leaves this
// member alone in the cluster (etcd's restartAsStandaloneNode).

import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { MemoryStorage } from '../raft/index.js';
import { decodeConfChange, encodeConfChange } from '../raftpb/codec.js';
import { ConfChangeType, type ConfState, type Entry, EntryType, type HardState, type Snapshot, emptyConfState, isEmptyHardState } from '../raftpb/types.js';
import { type Snapshotter, WAL, type WalContents, type WalOptions, snapName, validSnapshotEntries } from '../wal/index.js';
import { AlarmStore } from './alarms.js';
import type { DataDirLayout } from './bootstrap.js';
import { logVersionSet } from './cluster-version.js';
import { urlString } from './config/values.js';
import type { EtcdConfig } from './config/types.js';
import { idHex, idHex16 } from './ids.js';
import { type MemberStart, newRawNode } from './member-start.js';
import { type Member, Membership, encodeMemberContext } from './membership.js';
import { WalMetadata, toBigInt } from './pb.js';
import { readSnapshotState } from './import/snapshot-data.js';
import { V2Store } from './v2store/index.js';

/**
 * --force-new-cluster: keep the data, drop what was never committed, and commit conf
 * changes that leave this member alone in the cluster (etcd's restartAsStandaloneNode).
 */
async function forceNewCluster(
  cfg: EtcdConfig,
  memberId: bigint,
  wal: WAL,
  cs: ConfState,
  entries: readonly Entry[],
  hardState: HardState,
  log: Logger,
): Promise<{ entries: Entry[]; hardState: HardState }> {
  const committed = entries.filter((e) => e.index <= hardState.commit);
  const ids = new Set([...cs.voters, ...cs.learners]);
  for (const e of committed) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId);
    else ids.add(cc.nodeId);
  }
  let index = committed.length > 0 ? committed[committed.length - 1]!.index : hardState.commit;
  const term = hardState.term;
  const added: Entry[] = [];
  const push = (type: ConfChangeType, nodeId: bigint, context: Uint8Array) => {
    index++;
    added.push({ term, index, type: EntryType.ConfChange, data: encodeConfChange({ id: 0n, type, nodeId, context }) });
  };
  // Self first, then the removals, as etcd orders them: raft refuses a change that
  // leaves no voter, which removing the others first would when this member is new
  // (`etcdctl backup` gives the WAL a new member ID).
  if (!ids.has(memberId)) {
    const self: Member = { id: memberId, name: cfg.name, peerUrls: cfg.initialAdvertisePeerUrls.map(urlString), clientUrls: [], isLearner: false };
    push(ConfChangeType.AddNode, memberId, encodeMemberContext(self));
  }
  for (const id of [...ids].sort((a, b) => (a < b ? -1 : 1))) if (id !== memberId) push(ConfChangeType.RemoveNode, id, new Uint8Array(0));
  await wal.save(undefined, added, true);
  log.warn(
    { 'local-member-id': idHex(memberId), 'removed-members': [...ids].filter((id) => id !== memberId).map(idHex), 'commit-index': index },
    'forcing restart member as a single-member cluster (--force-new-cluster)',
  );
  return { entries: [...committed, ...added], hardState: { term, vote: hardState.vote, commit: index } };
}

/**
 * Whether a WAL that starts from no snapshot holds anything raft persisted. The first
 * Ready of a member ends with a HardState (the bootstrap entries come with the one that
 * commits them; a joining member's first message from the leader sets its term), and raft
 * sends nothing before that Ready is synced. A WAL without a HardState was left by a first
 * start that died before it (a port taken, a bad certificate, kill -9, or a power cut that
 * tore the first Ready and kept some of its entries but not the HardState after them): the
 * member promised nothing to anyone and can bootstrap again.
 */
export function holdsRaftState(contents: Pick<WalContents, 'hardState'>): boolean {
  return !isEmptyHardState(contents.hardState);
}

/** Voters once the committed conf changes after a snapshot are applied. */
function votersAfter(cs: ConfState, entries: readonly Entry[], commit: number): number {
  const voters = new Set(cs.voters);
  for (const e of entries) {
    if (e.index > commit || e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.AddNode) voters.add(cc.nodeId);
    else if (cc.type === ConfChangeType.RemoveNode || cc.type === ConfChangeType.AddLearnerNode) voters.delete(cc.nodeId);
  }
  return voters.size;
}

export async function restartMember(
  cfg: EtcdConfig,
  layout: DataDirLayout,
  snapshotter: Snapshotter,
  walOpts: WalOptions,
  log: Logger,
): Promise<MemberStart | undefined> {
  // The newest snapshot the WAL also records: a crash between writing a snap file and
  // its WAL marker leaves a snapshot the log cannot resume from.
  const snapshot: Snapshot | undefined = await snapshotter.loadNewestAvailable(() => validSnapshotEntries(layout.walDir));
  const walSnap = snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : { index: 0, term: 0 };
  const wal = await WAL.open(layout.walDir, walSnap, walOpts);
  try {
    const contents = await wal.readAll();
    if (snapshot === undefined && !holdsRaftState(contents)) {
      // Bootstrapping again from the flags, rather than restarting into a member with no
      // committed configuration, which could never elect a leader.
      await wal.close();
      await rm(layout.walDir, { recursive: true, force: true });
      log.warn(
        { 'wal-dir': layout.walDir, 'uncommitted-entries': contents.entries.length },
        'the WAL holds no raft state from an earlier first start that did not finish; bootstrapping the member again',
      );
      return undefined;
    }
    const { metadata } = contents;
    const md = WalMetadata.decode(metadata) as unknown as { NodeID: unknown; ClusterID: unknown };
    const memberId = toBigInt(md.NodeID as never, true);
    const clusterId = toBigInt(md.ClusterID as never, true);
    const raftStorage = new MemoryStorage();
    const membership = new Membership(clusterId, memberId, logVersionSet(log));
    const alarms = new AlarmStore();
    const v2store = new V2Store();
    let alarmsInStore = false;
    if (snapshot) {
      raftStorage.applySnapshot(snapshot);
      const { index, term } = snapshot.metadata;
      const data = readSnapshotState(snapshot.data, path.join(layout.snapDir, snapName(term, index)));
      membership.restore(data.membership);
      if (data.alarms !== undefined) alarms.restore(data.alarms);
      else alarmsInStore = true;
      // snapshots from before the v2 store was kept in them: the WAL after them rebuilds what it can
      if (data.v2store !== undefined) v2store.recover(data.v2store);
      if (data.format === 'etcd') log.info({ 'snapshot-index': index, members: data.membership.members.length }, "recovered membership and the v2 store from etcd's snapshot");
    }
    const { hardState, entries } = cfg.forceNewCluster
      ? await forceNewCluster(cfg, memberId, wal, snapshot?.metadata.confState ?? emptyConfState, contents.entries, contents.hardState, log)
      : contents;
    raftStorage.setHardState(hardState);
    raftStorage.append(entries);
    const snapshotIndex = snapshot?.metadata.index ?? 0;
    log.info(
      {
        'local-member-id': idHex(memberId),
        'cluster-id': idHex(clusterId),
        'commit-index': hardState.commit,
        'snapshot-index': snapshotIndex,
        'wal-entries': entries.length,
      },
      `restarting local member ${idHex16(memberId)} in cluster ${idHex(clusterId)} at commit index ${hardState.commit}`,
    );
    if (cfg.initialClusterState === 'new' && cfg.initialCluster.size > 0) {
      log.info({ 'data-dir': cfg.dataDir }, 'the data dir already holds a member; --initial-cluster flags are ignored');
    }
    if (cfg.discovery !== '') log.warn({ 'wal-dir': layout.walDir }, 'discovery token is ignored since cluster already initialized; valid logs are found');
    return {
      votersAtStart: votersAfter(snapshot?.metadata.confState ?? emptyConfState, entries, hardState.commit),
      initialPeers: membership.list().filter((m) => m.id !== memberId),
      memberId,
      clusterId,
      raft: newRawNode(cfg, memberId, raftStorage, snapshotIndex, log),
      raftStorage,
      wal,
      membership,
      alarms,
      v2store,
      snapshotIndex,
      confState: snapshot?.metadata.confState ?? emptyConfState,
      alarmsInStore,
    };
  } catch (err) {
    await wal.close();
    throw err;
  }
}
