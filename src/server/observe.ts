// Keeps the member's Prometheus gauges current: state that changes on every request is
// sampled once a second rather than updated on the hot path; leadership as it changes.

import { ETCD_API_VERSION } from './api/maintenance.js';
import { majorMinor } from './cluster-version.js';
import { idHex } from './ids.js';
import type { Metrics } from './metrics.js';
import type { EtcdServer } from './server.js';
import type { PeerCounters } from './transport/index.js';

const SAMPLE_MS = 1000;
const NO_PEER_COUNTS: PeerCounters = { sentBytes: 0, receivedBytes: 0, sentFailures: 0, heartbeatSendFailures: 0, receivedFailures: 0, disconnects: 0 };

/** What the member counts, as its metrics name them. */
export interface MemberStats {
  /** etcd_server_leader_changes_seen_total */
  readonly leaderChanges: number;
  /** etcd_server_slow_read_indexes_total */
  readonly slowReadIndexes: number;
  /** etcd_server_proposals_pending */
  readonly pendingProposals: number;
  /** etcd_server_proposals_failed_total: dropped or timed out */
  readonly proposalsFailed: number;
  /** etcd_debugging_server_lease_expired_total: expired leases this member revoked as leader */
  readonly leasesExpired: number;
  /** etcd_server_learner_promote_successes: learners this member promoted as leader */
  readonly learnerPromotions: number;
  /** etcd_server_slow_apply_total */
  readonly slowApplies: number;
  /** etcd_network_snapshot_receive_success: leader snapshots installed, by sending member */
  readonly snapshotsInstalled: ReadonlyMap<bigint, number>;
  /** etcd_server_snapshot_apply_in_progress_total: a received store is being saved or swapped in */
  readonly installingSnapshot: boolean;
}

/**
 * Samples the member's state into `metrics` once a second until the returned function is
 * called; `peerCounters` gives the transport's byte and failure counts for a peer,
 * `peerActive` whether its streams are up.
 */
export function observeServer(
  metrics: Metrics,
  server: EtcdServer,
  peerCounters: (id: bigint) => Readonly<PeerCounters> | undefined,
  peerActive: (id: bigint) => boolean,
): () => void {
  metrics.serverVersion.labels({ server_version: ETCD_API_VERSION }).set(1);
  metrics.serverId.labels({ server_id: idHex(server.memberId) }).set(1);
  metrics.quotaBackendBytes.set(server.config.quotaBackendBytes);
  let leaderChangesSeen = 0;
  let failedSeen = 0;
  let slowAppliesSeen = 0;
  let slowReadIndexesSeen = 0;
  let promotionsSeen = 0;
  const snapshotsSeen = new Map<bigint, number>();
  const peersSeen = new Map<bigint, PeerCounters>();

  const sample = (): void => {
    const stats = server.stats;
    metrics.hasLeader.set(server.leader !== 0n ? 1 : 0);
    metrics.isLeader.set(server.isLeader ? 1 : 0);
    metrics.isLearner.set(server.isLearner ? 1 : 0);
    metrics.leaderChanges.inc(stats.leaderChanges - leaderChangesSeen);
    leaderChangesSeen = stats.leaderChanges;
    metrics.proposalsCommitted.set(server.committed);
    metrics.proposalsApplied.set(server.applied);
    metrics.proposalsPending.set(stats.pendingProposals);
    metrics.proposalsFailed.inc(stats.proposalsFailed - failedSeen);
    failedSeen = stats.proposalsFailed;
    metrics.slowApply.inc(stats.slowApplies - slowAppliesSeen);
    slowAppliesSeen = stats.slowApplies;
    metrics.slowReadIndexes.inc(stats.slowReadIndexes - slowReadIndexesSeen);
    slowReadIndexesSeen = stats.slowReadIndexes;
    metrics.learnerPromoteSucceed.inc(stats.learnerPromotions - promotionsSeen);
    promotionsSeen = stats.learnerPromotions;
    metrics.dbTotalSize.set(server.store.dbSize());
    metrics.dbTotalSizeInUse.set(server.store.dbSizeInUse());
    metrics.currentRevision.set(server.store.currentRevision);
    metrics.compactRevision.set(Math.max(0, server.store.compactRevision));
    metrics.snapshotApplyInProgress.set(stats.installingSnapshot ? 1 : 0);
    for (const [from, n] of stats.snapshotsInstalled) {
      metrics.snapshotReceiveSuccess.labels({ From: idHex(from) }).inc(n - (snapshotsSeen.get(from) ?? 0));
      snapshotsSeen.set(from, n);
    }
    const local = idHex(server.memberId);
    for (const m of server.membership.list()) {
      if (m.id === server.memberId) continue;
      const now = peerCounters(m.id);
      if (now === undefined) continue;
      const seen = peersSeen.get(m.id) ?? NO_PEER_COUNTS;
      // a peer removed and added again starts its counters afresh
      const delta = (k: keyof PeerCounters) => (now[k] >= seen[k] ? now[k] - seen[k] : now[k]);
      const peer = idHex(m.id);
      metrics.peerSentBytes.labels({ To: peer }).inc(delta('sentBytes'));
      metrics.peerReceivedBytes.labels({ From: peer }).inc(delta('receivedBytes'));
      metrics.peerSentFailures.labels({ To: peer }).inc(delta('sentFailures'));
      metrics.peerReceivedFailures.labels({ From: peer }).inc(delta('receivedFailures'));
      metrics.heartbeatSendFailures.inc(delta('heartbeatSendFailures'));
      metrics.disconnectedPeers.labels({ Local: local, Remote: peer }).inc(delta('disconnects'));
      metrics.activePeers.labels({ Local: local, Remote: peer }).set(peerActive(m.id) ? 1 : 0);
      peersSeen.set(m.id, { ...now });
    }
  };
  // The cluster version is set at the moment it changes, as etcd's SetVersion does: a
  // scrape right after "enabled capabilities for version" must show it.
  const showClusterVersion = (version: string): void => metrics.setIdentity({ serverVersion: ETCD_API_VERSION, clusterVersion: majorMinor(version) });
  const current = server.membership.version();
  if (current !== undefined) showClusterVersion(current);
  const stopWatchingVersion = server.membership.onVersionSet((_previous, version) => showClusterVersion(version));
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  // Who leads is what monitoring asks first after a restart or a failover: sampled the
  // moment it changes, not up to a second later.
  const stopWatchingLeader = server.onLeaderChange(() => {
    metrics.hasLeader.set(server.leader !== 0n ? 1 : 0);
    metrics.isLeader.set(server.isLeader ? 1 : 0);
  });
  return () => {
    clearInterval(timer);
    stopWatchingLeader();
    stopWatchingVersion();
  };
}
