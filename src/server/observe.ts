// Keeps the member's Prometheus gauges current: state that changes on every request is
// sampled once a second rather than updated on the hot path.

import { ETCD_API_VERSION } from './api/maintenance.js';
import { idHex } from './ids.js';
import type { Metrics } from './metrics.js';
import type { EtcdServer } from './server.js';

const SAMPLE_MS = 1000;

export function observeServer(metrics: Metrics, server: EtcdServer): () => void {
  metrics.serverVersion.labels({ server_version: ETCD_API_VERSION }).set(1);
  metrics.clusterVersion.labels({ cluster_version: '3.4' }).set(1);
  metrics.serverId.labels({ server_id: idHex(server.memberId) }).set(1);
  metrics.quotaBackendBytes.set(server.config.quotaBackendBytes);
  let leaderChangesSeen = 0;
  let failedSeen = 0;
  const snapshotsSeen = new Map<bigint, number>();

  const sample = (): void => {
    metrics.hasLeader.set(server.leader !== 0n ? 1 : 0);
    metrics.isLeader.set(server.isLeader ? 1 : 0);
    metrics.isLearner.set(server.isLearner ? 1 : 0);
    metrics.leaderChanges.inc(server.leaderChanges - leaderChangesSeen);
    leaderChangesSeen = server.leaderChanges;
    metrics.proposalsCommitted.set(server.committed);
    metrics.proposalsApplied.set(server.applied);
    metrics.proposalsPending.set(server.pendingProposals);
    metrics.proposalsFailed.inc(server.proposalsFailed - failedSeen);
    failedSeen = server.proposalsFailed;
    metrics.dbTotalSize.set(server.store.dbSize());
    metrics.dbTotalSizeInUse.set(server.store.dbSizeInUse());
    metrics.currentRevision.set(server.store.currentRevision);
    metrics.compactRevision.set(Math.max(0, server.store.compactRevision));
    metrics.snapshotApplyInProgress.set(server.installingSnapshot ? 1 : 0);
    for (const [from, n] of server.snapshotsInstalled) {
      metrics.snapshotReceiveSuccess.labels({ From: idHex(from) }).inc(n - (snapshotsSeen.get(from) ?? 0));
      snapshotsSeen.set(from, n);
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
