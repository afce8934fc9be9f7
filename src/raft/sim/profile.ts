// What a simulated run looks like: cluster size, raft knobs, network faults and the
// rate of every disturbance. Each seed draws its own profile, so a few hundred seeds
// cover calm and hostile worlds alike.

import type { NetworkFaults } from './network.js';
import type { Rng } from '../../pkg/rng.js';

export interface SimProfile {
  readonly nodes: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** simulation steps per raft tick */
  readonly tickEvery: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly faults: NetworkFaults;
  // per-step probabilities
  readonly proposeRate: number;
  readonly readRate: number;
  readonly crashRate: number;
  /** per Ready that records a vote: crash right after handling it (a failpoint like etcd's raftAfterSave) */
  readonly crashAfterVoteRate: number;
  /** a crashed node restarts after [min, max] steps */
  readonly restartDelay: readonly [number, number];
  /** per Ready: crash after persisting only part of it */
  readonly crashMidReadyRate: number;
  readonly partitionRate: number;
  readonly memberChangeRate: number;
  readonly compactRate: number;
  readonly transferRate: number;
  readonly hostileRate: number;
}

export function drawProfile(rng: Rng, nodes?: number): SimProfile {
  return {
    nodes: nodes ?? rng.pick([1, 3, 3, 5, 5]),
    electionTick: 10,
    heartbeatTick: rng.pick([1, 1, 2]),
    tickEvery: 4,
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    maxSizePerMsg: rng.pick([1024 * 1024, 256, 64]),
    maxInflightMsgs: rng.pick([512, 4, 1]),
    maxUncommittedEntriesSize: rng.pick([0, 0, 2048]),
    faults: {
      drop: rng.pick([0, 0.01, 0.05, 0.15]),
      duplicate: rng.pick([0, 0.02, 0.1]),
      maxDelay: rng.pick([2, 5, 10]),
      longDelayRate: rng.pick([0, 0.01, 0.05]),
      longDelay: 60,
    },
    proposeRate: rng.pick([0.1, 0.3, 0.6]),
    readRate: rng.pick([0.02, 0.1]),
    crashRate: rng.pick([0, 0.0015, 0.004]),
    crashAfterVoteRate: rng.pick([0, 0, 0.2]),
    restartDelay: rng.pick([[20, 300] as const, [1, 40] as const]),
    crashMidReadyRate: rng.pick([0, 0.002, 0.01]),
    partitionRate: rng.pick([0, 0.002, 0.005]),
    memberChangeRate: rng.pick([0, 0.002, 0.006]),
    compactRate: rng.pick([0, 0.01, 0.03]),
    transferRate: rng.pick([0, 0.002]),
    hostileRate: rng.pick([0, 0.005, 0.02]),
  };
}

export const calmFaults: NetworkFaults = { drop: 0, duplicate: 0, maxDelay: 3, longDelayRate: 0, longDelay: 0 };
