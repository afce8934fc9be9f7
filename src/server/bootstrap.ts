// Turning a data dir and the configuration into a member: a new cluster from
// --initial-cluster, or a restart from the snapshot, the WAL and the store.

import { mkdir, access, constants, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { MemoryStorage, RawNode, type RaftLogger } from '../raft/index.js';
import { decodeConfChange, encodeConfChange } from '../raftpb/codec.js';
import {
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Snapshot,
  emptyConfState,
  isEmptyHardState,
} from '../raftpb/types.js';
import type { TlsContext } from './tls.js';
import { fetchClusterMembers } from './transport/index.js';
import { urlString } from './config/values.js';
import { MvccStore, type RestoredState } from '../mvcc/index.js';
import { Snapshotter, WAL, type WalContents, type WalOptions, snapName, validSnapshotEntries } from '../wal/index.js';
import { AlarmStore } from './alarms.js';
import { logVersionSet } from './cluster-version.js';
import type { EtcdConfig } from './config/types.js';
import { computeClusterId, computeMemberId, idHex, idHex16 } from './ids.js';
import { type CheckpointPolicy, LEASE_CHECKPOINT_INTERVAL_MS, Lessor, restoreLessor } from './lessor.js';
import { readAuthState } from './auth/store.js';
import { type Member, Membership, encodeMemberContext } from './membership.js';
import { WalMetadata, toBigInt } from './pb.js';
import { exists, installReceivedDb, receivedDbPath, removeReceivedDbs, restoreInterruptedSwap } from './received-db.js';
import type { ServerParts } from './server.js';
import { boltConsistentIndex, exportEtcdDb } from './backup/db-file.js';
import { clusterStateOf } from './backup/etcd-db.js';
import type { StartStep } from './start-steps.js';
import { takeEtcdDb } from './import/etcd-db.js';
import { moveLegacyStore } from './import/legacy-store.js';
import { pathKind } from './import/path-kind.js';
import { readSnapshotState } from './import/snapshot-data.js';
import { V2Store } from './v2store/index.js';

/** A refusal to start that names what is wrong and what to do. */
export class BootstrapError extends Error {
  override name = 'BootstrapError';
}

export interface DataDirLayout {
  memberDir: string;
  walDir: string;
  snapDir: string;
  /** etcd-ts's LevelDB store of keys, leases and auth (member/leveldb) */
  dbDir: string;
  /** etcd's bbolt file (member/snap/db): imported from and kept for etcd, never the live store */
  boltPath: string;
}

export function dataDirLayout(cfg: Pick<EtcdConfig, 'dataDir' | 'walDir'>): DataDirLayout {
  const memberDir = path.join(cfg.dataDir, 'member');
  const snapDir = path.join(memberDir, 'snap');
  return {
    memberDir,
    walDir: cfg.walDir !== '' ? cfg.walDir : path.join(memberDir, 'wal'),
    snapDir,
    dbDir: path.join(memberDir, 'leveldb'),
    boltPath: path.join(snapDir, 'db'),
  };
}

async function ensureWritableDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK | constants.R_OK | constants.X_OK);
  } catch (err) {
    throw new BootstrapError(`cannot access ${what} "${dir}": ${(err as Error).message}; check the path and its permissions`);
  }
}

function raftLogger(log: Logger): RaftLogger {
  const raftLog = log.child({ caller: 'raft' });
  return {
    debug: (msg: string) => raftLog.debug(msg),
    info: (msg: string) => raftLog.info(msg),
    warn: (msg: string) => raftLog.warn(msg),
    error: (msg: string) => raftLog.error(msg),
  };
}

/** --experimental-enable-lease-checkpoint[-persist]; the interval is etcd's, which 3.4 does not let one set. */
function leaseCheckpointPolicy(cfg: Pick<EtcdConfig, 'experimentalEnableLeaseCheckpoint' | 'experimentalEnableLeaseCheckpointPersist'>): CheckpointPolicy | undefined {
  if (!cfg.experimentalEnableLeaseCheckpoint) return undefined;
  return { intervalMs: LEASE_CHECKPOINT_INTERVAL_MS, persist: cfg.experimentalEnableLeaseCheckpointPersist };
}

/** Seconds: etcd's minimum lease TTL, ceil(1.5 election timeouts) in whole heartbeats. */
export function minLeaseTtl(cfg: Pick<EtcdConfig, 'electionTimeout' | 'heartbeatInterval'>): number {
  const electionTicks = Math.floor(cfg.electionTimeout / cfg.heartbeatInterval);
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * cfg.heartbeatInterval) / 1000);
}

function newRawNode(cfg: EtcdConfig, id: bigint, storage: MemoryStorage, applied: number, log: Logger): RawNode {
  return new RawNode({
    id,
    electionTick: Math.max(1, Math.floor(cfg.electionTimeout / cfg.heartbeatInterval)),
    heartbeatTick: 1,
    storage,
    applied,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 512,
    checkQuorum: true,
    // etcd-ts always pre-votes: a member rejoining after a partition cannot disrupt a
    // healthy leader by bumping the term.
    preVote: true,
    readOnlyOption: 'safe',
    random: Math.random,
    logger: raftLogger(log),
  });
}

export type BootstrapResult = Omit<ServerParts, 'send' | 'peers'> & {
  layout: DataDirLayout;
  /** members the transport should reach from the start (raft's own view follows as entries apply) */
  initialPeers: ReadonlyArray<{ id: bigint; peerUrls: readonly string[] }>;
};

/** Observers of the start and of disk work (the WAL and snapshot metrics). */
export interface BootstrapHooks {
  onWalFsync?: (seconds: number) => void;
  onWalWrite?: (bytes: number) => void;
  onSnapFsync?: (seconds: number) => void;
  onStep?: (step: StartStep) => void;
}

export async function bootstrap(
  cfg: EtcdConfig,
  log: Logger,
  peerTls: TlsContext | undefined,
  hooks: BootstrapHooks = {},
): Promise<BootstrapResult> {
  const layout = dataDirLayout(cfg);
  const step = hooks.onStep ?? (() => undefined);
  await ensureWritableDir(cfg.dataDir, 'data directory');
  await ensureWritableDir(layout.snapDir, 'snapshot directory');
  if (cfg.walDir !== '') await ensureWritableDir(path.dirname(layout.walDir), 'WAL directory');
  step('data-dir-created');

  const haveWal = WAL.exists(layout.walDir);
  const snapshotter = new Snapshotter(layout.snapDir, { onFsync: hooks.onSnapFsync, logger: log.child({ caller: 'snap' }) });
  const walOpts = { onFsync: hooks.onWalFsync, onWrite: hooks.onWalWrite, logger: log.child({ caller: 'wal' }) };
  await moveLegacyStore(layout.boltPath, layout.dbDir, log);
  const imported = await takeEtcdDb(layout.boltPath, layout.dbDir, log);
  // finishes a swap only where there is no store: never after an import, which made one
  await restoreInterruptedSwap(layout.dbDir);
  const openStore = (restored?: RestoredState): Promise<MvccStore> =>
    MvccStore.open({ dir: layout.dbDir, maxTxnOps: cfg.maxTxnOps, logger: log.child({ caller: 'mvcc' }), restored });
  let store = await openStore(imported);
  try {
    step('store-opened');
    const createWal = (metadata: Uint8Array) => createMemberWal(layout.walDir, metadata, walOpts, step);
    const r =
      (haveWal ? await restartMember(cfg, layout, snapshotter, walOpts, log) : undefined) ??
      (cfg.initialClusterState === 'existing'
        ? await joinExistingCluster(cfg, createWal, peerTls, log)
        : await startNewCluster(cfg, createWal, log));
    try {
      if (r.votersAtStart === 0) r.initialPeers = await peersOfUnlearnedCluster(cfg, r, peerTls, log);
      store = await installReceivedStore(store, layout, r.snapshotIndex, openStore, log);
    } catch (err) {
      await r.wal.close();
      throw err;
    }
    await ensureEtcdDb(layout, store, r, log);
    for (const name of await removeReceivedDbs(layout.snapDir)) {
      log.info({ path: path.join(layout.snapDir, name) }, 'removed a received snapshot store that raft never accepted');
    }
    if (r.alarmsInStore) r.alarms.restoreFromRecords(await store.alarmRecords());
    const lessor = new Lessor({ minTtl: minLeaseTtl(cfg), now: () => performance.now(), checkpoints: leaseCheckpointPolicy(cfg) });
    await restoreLessor(lessor, store);
    return { ...r, store, snapshotter, lessor, authState: await readAuthState(store), layout };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * The store is older than the snapshot the WAL resumes from only when the member stopped
 * after recording a leader's snapshot and before installing the database received with
 * it: that database is imported and installed now. Without it the entries in between would be lost, so the
 * member refuses to start instead.
 */
export async function installReceivedStore(
  store: MvccStore,
  layout: Pick<DataDirLayout, 'dbDir' | 'snapDir'>,
  snapshotIndex: number,
  open: (restored?: RestoredState) => Promise<MvccStore>,
  log: Logger,
): Promise<MvccStore> {
  const storeIndex = store.consistentIndex;
  if (storeIndex >= snapshotIndex) return store;
  const received = receivedDbPath(layout.snapDir, snapshotIndex);
  if (!(await exists(received))) {
    throw new BootstrapError(
      `the store in ${layout.dbDir} holds entries up to index ${storeIndex}, but the snapshot the WAL resumes from is at index ${snapshotIndex} and the store received with it (${received}) is missing; restore this member from a backup or remove it and add it back`,
    );
  }
  await store.close();
  const installed = await open(await installReceivedDb(layout.dbDir, received, log));
  log.info({ 'snapshot-index': snapshotIndex, 'consistent-index': installed.consistentIndex }, 'installed the store received with the snapshot the WAL recorded last');
  return installed;
}

/**
 * etcd's bbolt file must not be older than the newest .snap (backup/db-file.ts): written
 * now from the store when it is missing (a new member, a leader's snapshot installed
 * before a crash, a data dir from an etcd-ts that did not keep it) or behind.
 */
async function ensureEtcdDb(layout: DataDirLayout, store: MvccStore, r: MemberStart, log: Logger): Promise<void> {
  if ((await pathKind(layout.boltPath)) === 'file' && (await boltConsistentIndex(layout.boltPath)) >= r.snapshotIndex) return;
  await exportEtcdDb(layout, { view: store.bucketView(), cluster: clusterStateOf(r.membership), consistentIndex: store.consistentIndex }, 'start', log);
}

/**
 * Creates the WAL of a member that starts for the first time, and reports the steps that
 * follow: its creation, then its first sync after that, which is raft's first Ready.
 */
async function createMemberWal(dir: string, metadata: Uint8Array, walOpts: WalOptions, step: (s: StartStep) => void): Promise<WAL> {
  let created = false;
  let firstReady = false;
  const wal = await WAL.create(dir, metadata, {
    ...walOpts,
    onFsync: (seconds) => {
      walOpts.onFsync?.(seconds);
      if (!created || firstReady) return;
      firstReady = true;
      step('first-ready-persisted');
    },
  });
  created = true;
  step('wal-created');
  return wal;
}

type CreateWal = (metadata: Uint8Array) => Promise<WAL>;

interface MemberStart {
  /** voting members known at start: a lone voter campaigns at once (etcd's tick advance) */
  votersAtStart: number;
  initialPeers: ReadonlyArray<{ id: bigint; peerUrls: readonly string[] }>;
  memberId: bigint;
  clusterId: bigint;
  raft: RawNode;
  raftStorage: MemoryStorage;
  wal: WAL;
  membership: Membership;
  alarms: AlarmStore;
  v2store: V2Store;
  snapshotIndex: number;
  confState: ConfState;
  /** the snapshot is etcd's, which leaves the active alarms to the store's `alarm` bucket */
  alarmsInStore?: boolean;
}

/** etcd's checkDuplicateURL: one peer URL under two names (or twice under one). */
function refuseDuplicateUrls(cfg: EtcdConfig): void {
  const pairs = [...cfg.initialCluster].flatMap(([name, urls]) => urls.map((u) => ({ name, url: urlString(u) })));
  if (new Set(pairs.map((p) => p.url)).size === pairs.length) return;
  const listed = pairs.map((p) => `${p.name}=${p.url}`).sort().join(',');
  throw new BootstrapError(`initial cluster ${listed} has duplicate url`);
}

async function startNewCluster(cfg: EtcdConfig, createWal: CreateWal, log: Logger): Promise<MemberStart> {
  refuseDuplicateUrls(cfg);
  const local = cfg.initialCluster.get(cfg.name);
  if (local === undefined) {
    const names = [...cfg.initialCluster.keys()].map((n) => `"${n}"`).join(', ');
    throw new BootstrapError(`couldn't find local name "${cfg.name}" in the initial cluster configuration (--initial-cluster has ${names}; add it or fix --name)`);
  }
  const advertised = cfg.initialAdvertisePeerUrls.map(urlString).sort();
  const listed = local.map(urlString).sort();
  if (advertised.join(',') !== listed.join(',')) {
    throw new BootstrapError(
      `--initial-cluster has ${listed.map((u) => `${cfg.name}=${u}`).join(',')} but missing from --initial-advertise-peer-urls=${advertised.join(',')} (make them match)`,
    );
  }
  const members: Member[] = [...cfg.initialCluster].map(([name, urls]) => {
    const peerUrls = urls.map(urlString);
    return { id: computeMemberId(peerUrls, cfg.initialClusterToken), name, peerUrls, clientUrls: [], isLearner: false };
  });
  const seen = new Map<bigint, string>();
  for (const m of members) {
    const other = seen.get(m.id);
    if (other !== undefined) throw new BootstrapError(`--initial-cluster members "${other}" and "${m.name}" have the same peer URLs`);
    seen.set(m.id, m.name);
  }
  const memberId = members.find((m) => m.name === cfg.name)!.id;
  const clusterId = computeClusterId(members.map((m) => m.id));
  const wal = await createWal(WalMetadata.encode({ NodeID: memberId.toString(), ClusterID: clusterId.toString() }).finish());
  const raftStorage = new MemoryStorage();
  const raft = newRawNode(cfg, memberId, raftStorage, 0, log);
  raft.bootstrap(members.map((m) => ({ id: m.id, context: encodeMemberContext(m) })));
  log.info(
    { 'local-member-id': idHex(memberId), 'cluster-id': idHex(clusterId), 'initial-cluster': members.map((m) => `${m.name}=${m.peerUrls.join(',')}`) },
    `starting member ${idHex16(memberId)} in cluster ${idHex(clusterId)}`,
  );
  return {
    votersAtStart: members.length,
    initialPeers: members,
    memberId,
    clusterId,
    raft,
    raftStorage,
    wal,
    membership: new Membership(clusterId, memberId, logVersionSet(log)),
    alarms: new AlarmStore(),
    v2store: new V2Store(),
    snapshotIndex: 0,
    confState: emptyConfState,
  };
}

/** Asks the other members in --initial-cluster for the cluster's members (etcd's GetClusterFromRemotePeers). */
async function fetchCluster(cfg: EtcdConfig, peerTls: TlsContext | undefined): Promise<Awaited<ReturnType<typeof fetchClusterMembers>>> {
  const others = [...cfg.initialCluster].filter(([name]) => name !== cfg.name).flatMap(([, urls]) => urls.map(urlString));
  if (others.length === 0) {
    throw new BootstrapError(
      '--initial-cluster-state=existing needs the running members in --initial-cluster (name=peer-url,...) to ask them for the cluster',
    );
  }
  try {
    return await fetchClusterMembers(others, peerTls, 10_000);
  } catch (err) {
    throw new BootstrapError(`cannot fetch cluster info from peer urls ${others.join(',')}: ${(err as Error).message}`);
  }
}

/**
 * A member added with `member add` that stopped after its first Ready was durable but
 * before its log committed the cluster's configuration restarts knowing no voter, so no
 * peer: nothing it will apply soon names one, and it refuses streams from members it does
 * not know, the leader's too. It asks the members in --initial-cluster, as its first start
 * did, so the transport reaches them; membership itself still comes from the log.
 */
async function peersOfUnlearnedCluster(
  cfg: EtcdConfig,
  self: Pick<MemberStart, 'memberId' | 'clusterId'>,
  peerTls: TlsContext | undefined,
  log: Logger,
): Promise<MemberStart['initialPeers']> {
  const cluster = await fetchCluster(cfg, peerTls);
  if (cluster.clusterId !== self.clusterId) {
    throw new BootstrapError(
      `the WAL of member ${idHex(self.memberId)} is of cluster ${idHex(self.clusterId)}, but --initial-cluster leads to cluster ${idHex(cluster.clusterId)}; start it with the --initial-cluster it was added with`,
    );
  }
  const peers = cluster.members.filter((m) => m.id !== self.memberId);
  log.info({ 'local-member-id': idHex(self.memberId), peers: peers.map((p) => idHex(p.id)) }, 'the log has not yet committed the cluster this member joined; reaching the members --initial-cluster names');
  return peers;
}

/**
 * --initial-cluster-state=existing: the member was added with `etcdctl member add`; ask
 * the running members who is in the cluster, and find ourselves by peer URLs.
 */
async function joinExistingCluster(
  cfg: EtcdConfig,
  createWal: CreateWal,
  peerTls: TlsContext | undefined,
  log: Logger,
): Promise<MemberStart> {
  refuseDuplicateUrls(cfg);
  const cluster = await fetchCluster(cfg, peerTls);
  const advertised = cfg.initialAdvertisePeerUrls.map(urlString).sort().join(',');
  const self = cluster.members.find((m) => [...m.peerUrls].sort().join(',') === advertised);
  if (self === undefined) {
    throw new BootstrapError(
      `no member with peer URLs ${advertised} in cluster ${idHex(cluster.clusterId)}; add it first: etcdctl member add ${cfg.name} --peer-urls=${advertised}`,
    );
  }
  if (self.name !== '' && self.name !== cfg.name) {
    throw new BootstrapError(`member ${idHex(self.id)} with peer URLs ${advertised} already started as "${self.name}", not "${cfg.name}"`);
  }
  const wal = await createWal(WalMetadata.encode({ NodeID: self.id.toString(), ClusterID: cluster.clusterId.toString() }).finish());
  const raftStorage = new MemoryStorage();
  log.info(
    { 'local-member-id': idHex(self.id), 'cluster-id': idHex(cluster.clusterId), members: cluster.members.length },
    `joining existing cluster ${idHex(cluster.clusterId)} as member ${idHex16(self.id)}`,
  );
  return {
    votersAtStart: cluster.members.filter((m) => !m.isLearner).length,
    initialPeers: cluster.members.filter((m) => m.id !== self.id),
    memberId: self.id,
    clusterId: cluster.clusterId,
    // no bootstrap entries: the leader sends the log (or a snapshot) from the start
    raft: newRawNode(cfg, self.id, raftStorage, 0, log),
    raftStorage,
    wal,
    membership: new Membership(cluster.clusterId, self.id, logVersionSet(log)),
    alarms: new AlarmStore(),
    v2store: new V2Store(),
    snapshotIndex: 0,
    confState: emptyConfState,
  };
}

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

async function restartMember(
  cfg: EtcdConfig,
  layout: DataDirLayout,
  snapshotter: Snapshotter,
  walOpts: WalOptions,
  log: Logger,
): Promise<MemberStart | undefined> {
  // The newest snapshot the WAL also records: a crash between writing a snap file and
  // its WAL marker leaves a snapshot the log cannot resume from.
  const snapshot: Snapshot | undefined = await snapshotter.loadNewestAvailable(await validSnapshotEntries(layout.walDir));
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
