// The v2 requests a member proposes about the cluster itself, as etcd 3.4 does: its own
// attributes once a leader exists (etcd's publish), and, on the leader, the cluster
// version its ClusterVersionMonitor decides.

import type { Logger } from 'pino';
import { idHex } from './ids.js';
import type { Proposals } from './proposals.js';
import { attributesRequest, clusterVersionRequest } from './v2request.js';

export interface PublishParts {
  readonly proposals: Proposals;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** --name and --advertise-client-urls */
  readonly name: string;
  readonly clientUrls: readonly string[];
  readonly electionMs: number;
  leader(): bigint;
  onLeaderChange(fn: () => void): () => void;
  /** aborted when the member stops */
  readonly stopping: AbortSignal;
  readonly log: Logger;
}

/**
 * Proposes this member's name and client URLs until they are applied here (true), or
 * the member stops first (false). Without a leader it waits for one.
 */
export async function publish(p: PublishParts): Promise<boolean> {
  const { stopping, log } = p;
  while (!stopping.aborted) {
    if (p.leader() === 0n) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          off();
          stopping.removeEventListener('abort', done);
          resolve();
        };
        const off = p.onLeaderChange(done);
        stopping.addEventListener('abort', done);
      });
      continue;
    }
    try {
      // Raft may drop a proposal silently (e.g. before this member knows it is one):
      // retry on a short period rather than the full request timeout.
      await p.proposals.proposeV2((id) => attributesRequest(id, p.memberId, p.name, p.clientUrls), Math.max(1000, 2 * p.electionMs));
      log.info(
        { 'local-member-id': idHex(p.memberId), 'cluster-id': idHex(p.clusterId) },
        `published {Name:${p.name} ClientURLs:[${p.clientUrls.join(' ')}]} to cluster ${idHex(p.clusterId)}`,
      );
      return true;
    } catch (err) {
      if (stopping.aborted) return false;
      log.warn({ error: (err as Error).message }, 'failed to publish local member to cluster through raft');
      await new Promise((r) => setTimeout(r, Math.min(500, p.electionMs)));
    }
  }
  return false;
}

/** Sets the cluster version through raft (the leader's ClusterVersionMonitor decides it). */
export async function proposeClusterVersion(proposals: Proposals, version: string): Promise<void> {
  await proposals.proposeV2((id) => clusterVersionRequest(id, version));
}
