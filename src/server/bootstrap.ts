// Turning a data dir and the configuration into a member: a new cluster from
// --initial-cluster, or a restart from the snapshot, the WAL and the store.

import { mkdir, access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { MemoryStorage } from '../raft/index.js';
import { emptyConfState } from '../raftpb/types.js';
import type { TlsContext } from './tls.js';
import { fetchClusterMembers } from './transport/index.js';
import { urlPort, urlString } from './config/values.js';
import { BootstrapError } from './bootstrap-error.js';
import { initialClusterOf } from './initial-cluster.js';
import { tcpAddress } from './srv-discovery.js';
import { type CompactionTuning, MvccStore, type RestoredState } from '../mvcc/index.js';
import { type Disk, Snapshotter, WAL, type WalOptions } from '../wal/index.js';
import { AlarmStore } from './alarms.js';
import { logVersionSet } from './cluster-version.js';
import type { EtcdConfig } from './config/types.js';
import { computeClusterId, computeMemberId, idHex, idHex16 } from './ids.js';
import { type CheckpointPolicy, LEASE_CHECKPOINT_INTERVAL_MS, Lessor, restoreLessor } from './lessor.js';
import { readAuthState } from './auth/store.js';
import { type Member, Membership, encodeMemberContext } from './membership.js';
import { WalMetadata } from './pb.js';
import { exists, installReceivedDb, receivedDbPath, removeReceivedDbs, restoreInterruptedSwap } from './received-db.js';
import type { ServerParts } from './server-parts.js';
import { type MemberStart, newRawNode } from './member-start.js';
import { restartMember } from './restart-member.js';
import { ALWAYS_EXPORT_BYTES, boltConsistentIndex, exportEtcdDb, exportStateOf, removeEtcdDb } from './backup/db-file.js';
import { clusterStateOf } from './backup/etcd-db.js';
import type { StartStep } from './start-steps.js';
import { takeEtcdDb } from './import/etcd-db.js';
import { moveLegacyStore } from './import/legacy-store.js';
import { pathKind } from './import/path-kind.js';
import { V2Store } from './v2store/index.js';

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

export type BootstrapResult = Omit<ServerParts, 'send' | 'peers'> & {
  layout: DataDirLayout;
  /** members the transport should reach from the start (raft's own view follows as entries apply) */
  initialPeers: ReadonlyArray<{ id: bigint; peerUrls: readonly string[] }>;
};

/** Observers of the start and of disk work (the WAL and snapshot metrics). */
export interface BootstrapHooks {
  onWalFsync?: (seconds: number) => void;
  onWalWrite?: (bytes: number) => void;
  /** the disk the WAL writes through (default: the node disk, its durable writes never blocking) */
  walDisk?: Disk;
  onSnapFsync?: (seconds: number) => void;
  onSnapMarshalled?: (seconds: number) => void;
  onSnapSaved?: (seconds: number) => void;
  onStep?: (step: StartStep) => void;
  /** the store's compaction batch and the observers of its timings */
  compaction?: CompactionTuning;
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
  const snapshotter = new Snapshotter(layout.snapDir, {
    onFsync: hooks.onSnapFsync,
    onMarshalled: hooks.onSnapMarshalled,
    onSaved: hooks.onSnapSaved,
    logger: log.child({ caller: 'snap' }),
  });
  const walOpts: WalOptions = {
    disk: hooks.walDisk,
    onFsync: hooks.onWalFsync,
    onWrite: hooks.onWalWrite,
    logger: log.child({ caller: 'wal' }),
    unsafeNoFsync: cfg.unsafeNoFsync,
  };
  await moveLegacyStore(layout.boltPath, layout.dbDir, log);
  const imported = await takeEtcdDb(layout.boltPath, layout.dbDir, log);
  // finishes a swap only where there is no store: never after an import, which made one
  await restoreInterruptedSwap(layout.dbDir);
  const openStore = (restored?: RestoredState): Promise<MvccStore> =>
    MvccStore.open({ dir: layout.dbDir, maxTxnOps: cfg.maxTxnOps, logger: log.child({ caller: 'mvcc' }), restored, compaction: hooks.compaction });
  let store = await openStore(imported);
  try {
    step('store-opened');
    const createWal = (metadata: Uint8Array) => createMemberWal(layout.walDir, metadata, walOpts, step);
    const r =
      (haveWal ? await restartMember(cfg, layout, snapshotter, walOpts, log) : undefined) ??
      (cfg.initialClusterState === 'existing'
        ? await joinExistingCluster(cfg, createWal, peerTls, log)
        : await startNewCluster(await initialClusterOf(cfg, log), createWal, log));
    try {
      if (r.votersAtStart === 0) r.initialPeers = await peersOfUnlearnedCluster(cfg, r, peerTls, log);
      store = await installReceivedStore(store, layout, r.snapshotIndex, openStore, log);
    } catch (err) {
      await r.wal.close();
      throw err;
    }
    const etcdDbPresent = (await etcdDbCurrent(layout, r, log)) || (await exportSmallStoreAtSnapshot(layout, store, r, log));
    for (const name of await removeReceivedDbs(layout.snapDir)) {
      log.info({ path: path.join(layout.snapDir, name) }, 'removed a received snapshot store that raft never accepted');
    }
    if (r.alarmsInStore) r.alarms.restoreFromRecords(await store.alarmRecords());
    const lessor = new Lessor({ minTtl: minLeaseTtl(cfg), now: () => performance.now(), checkpoints: leaseCheckpointPolicy(cfg) });
    await restoreLessor(lessor, store);
    return { ...r, store, snapshotter, lessor, authState: await readAuthState(store), layout, etcdDbPresent };
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
 * Whether etcd's bbolt file is there and no older than the newest .snap
 * (backup/db-file.ts). One behind it (a leader's snapshot installed before a crash) is
 * removed now; a missing one (a new member, one whose last .snap removed it before a
 * crash, a data dir from an etcd-ts that did not keep it) is written now when small
 * (exportSmallStoreAtSnapshot), else once the member serves (Applier.snapshotForMissingEtcdDb).
 */
async function etcdDbCurrent(layout: DataDirLayout, r: MemberStart, log: Logger): Promise<boolean> {
  if ((await pathKind(layout.boltPath)) !== 'file') return false;
  const consistentIndex = await boltConsistentIndex(layout.boltPath);
  if (consistentIndex >= r.snapshotIndex) return true;
  await removeEtcdDb(layout, log, `its consistent index ${consistentIndex} is behind the newest snapshot's, ${r.snapshotIndex}`);
  return false;
}

/**
 * Writes etcd's bbolt file now when that is cheap and safe at the start: a small store
 * (a new member's is empty) still at its newest .snap's index, so the file's consistent
 * index is a .snap's (or 0), which `etcdctl backup` needs (Applier.snapshotForMissingEtcdDb).
 * A member killed right after its first start then leaves the file too. Whether it wrote.
 */
async function exportSmallStoreAtSnapshot(layout: DataDirLayout, store: MvccStore, r: MemberStart, log: Logger): Promise<boolean> {
  if (store.consistentIndex !== r.snapshotIndex || store.recordBytes() > ALWAYS_EXPORT_BYTES) return false;
  await exportEtcdDb(layout, exportStateOf(store, clusterStateOf(r.membership)), 'start', log);
  return true;
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

/** etcd's checkDuplicateURL: one peer URL under two names (or twice under one). */
function refuseDuplicateUrls(cfg: EtcdConfig): void {
  const pairs = [...cfg.initialCluster].flatMap(([name, urls]) => urls.map((u) => ({ name, url: urlString(u) })));
  if (new Set(pairs.map((p) => p.url)).size === pairs.length) return;
  const listed = pairs.map((p) => `${p.name}=${p.url}`).sort().join(',');
  throw new BootstrapError(`${cfg.discovery !== '' ? 'discovery' : 'initial'} cluster ${listed} has duplicate url`);
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
  if (!(await sameEndpoints(cfg.initialAdvertisePeerUrls, local))) {
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

/**
 * Whether two lists of peer URLs name the same endpoints, host names resolved (etcd's
 * URLStringsEqual): a member may advertise http://10.0.0.1:2380 where the initial
 * cluster, from SRV records say, has http://infra0.example.com:2380.
 */
async function sameEndpoints(a: readonly URL[], b: readonly URL[]): Promise<boolean> {
  const key = (urls: readonly URL[]) => urls.map(urlString).sort().join(',');
  if (key(a) === key(b)) return true;
  if (a.length !== b.length) return false;
  const resolved = async (urls: readonly URL[]): Promise<string> =>
    (await Promise.all(urls.map(async (u) => `${u.protocol}//${await tcpAddress(u.hostname, urlPort(u))}`))).sort().join(',');
  try {
    return (await resolved(a)) === (await resolved(b));
  } catch {
    return false;
  }
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

