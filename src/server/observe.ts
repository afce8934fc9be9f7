// Keeps the member's Prometheus gauges current: state that changes on every request is
// sampled once a second rather than updated on the hot path.

import { ETCD_API_VERSION } from './api/maintenance.js';
import { majorMinor } from './cluster-version.js';
import { idHex } from './ids.js';
import type { Metrics } from './metrics.js';
import type { EtcdServer } from './server.js';
import type { PeerCounters } from './transport/index.js';

const SAMPLE_MS = 1000;

/**
 * Samples the member's state into `metrics` once a second until the returned function is
 * called; `peerCounters` gives the transport's byte and failure counts for a peer.
 */
export function observeServer(
  metrics: Metrics,
  server: EtcdServer,
  peerCounters: (id: bigint) => Readonly<PeerCounters> | undefined,
): () => void {
  metrics.serverVersion.labels({ server_version: ETCD_API_VERSION }).set(1);
  metrics.serverId.labels({ server_id: idHex(server.memberId) }).set(1);
  metrics.quotaBackendBytes.set(server.config.quotaBackendBytes);
  let clusterVersionSeen: string | undefined;
  let leaderChangesSeen = 0;
  let failedSeen = 0;
  const snapshotsSeen = new Map<bigint, number>();
  const peersSeen = new Map<bigint, PeerCounters>();

  const sample = (): void => {
    const cv = server.membership.version();
    if (cv !== clusterVersionSeen && cv !== undefined) metrics.setIdentity({ serverVersion: ETCD_API_VERSION, clusterVersion: majorMinor(cv) });
    clusterVersionSeen = cv;
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
    const watch = server.store.watchCounts();
    metrics.watchStreamTotal.set(watch.streams);
    metrics.watcherTotal.set(watch.watchers);
    metrics.slowWatcherTotal.set(watch.slowWatchers);
    metrics.snapshotApplyInProgress.set(server.installingSnapshot ? 1 : 0);
    for (const [from, n] of server.snapshotsInstalled) {
      metrics.snapshotReceiveSuccess.labels({ From: idHex(from) }).inc(n - (snapshotsSeen.get(from) ?? 0));
      snapshotsSeen.set(from, n);
    }
    for (const m of server.membership.list()) {
      if (m.id === server.memberId) continue;
      const now = peerCounters(m.id);
      if (now === undefined) continue;
      const seen = peersSeen.get(m.id) ?? { sentBytes: 0, receivedBytes: 0, sentFailures: 0 };
      // a peer removed and added again starts its counters afresh
      const delta = (k: keyof PeerCounters) => (now[k] >= seen[k] ? now[k] - seen[k] : now[k]);
      const peer = idHex(m.id);
      metrics.peerSentBytes.labels({ To: peer }).inc(delta('sentBytes'));
      metrics.peerReceivedBytes.labels({ From: peer }).inc(delta('receivedBytes'));
      metrics.peerSentFailures.labels({ To: peer }).inc(delta('sentFailures'));
      peersSeen.set(m.id, { ...now });
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
