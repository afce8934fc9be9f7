import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take minutes (most of it waiting on clusters, or on etcd's fixed 5-minute
 * lease checkpoint interval; the raft simulators' on one core), slowest first, by the wall
 * times npm test printed on the last fresh-clone run. They start
 * before everything else so that the other workers run the short files beside them: on a
 * fresh clone vitest has no timings and would start the largest files first, leaving a long
 * one to finish alone at the end.
 */
const LONGEST_FIRST = [
  'test/e2e/lease-checkpoint.test.ts',
  'test/e2e/patroni.test.ts',
  'test/e2e/leader-change.test.ts',
  'test/e2e/mixed-cluster.test.ts',
  'test/raft/sim-members.test.ts',
  'test/e2e/jepsen.test.ts',
  'test/e2e/grpc-proxy.test.ts',
  'test/e2e/cluster.test.ts',
  'test/raft/sim.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = LONGEST_FIRST.indexOf(relative(f.project.config.root, f.moduleId));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // CPU seconds per test file, for scripts/test.sh's table (only when ETCD_TS_CPU_LOG is set)
    setupFiles: ['test/cpu-seconds.ts'],
    // Generous: at a load average of 30-40 on two cores (other work beside the suite) a case
    // takes 2-5 times as long as on a quiet machine; at 120 s, value-cache's 128 MB case (99 s
    // alone at load 30) timed out in a full run at load 40. A hung case still ends here.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Five files at once on two cores: the lease checkpoint file sits idle for five minutes
    // (etcd's fixed interval), and the other end-to-end files spend much of their time
    // waiting on elections, start-ups and timers (with three, a quiet fresh clone kept 1.4
    // cores busy: 794 s wall for 1,120 CPU s; with five 1.7-1.8: 644-674 s for 1,131-1,225).
    // Five became possible once freePort reserved its ports machine-wide (bench/free-port.ts):
    // before, two workers could draw the same port. npm test prints each file's CPU beside its
    // wall time: check there before raising this, the suites' CPU is what bounds the run.
    // At load 26-40 (three other sessions on the cores) five workers took 3,416 s for 1,403
    // CPU s, the heaviest sim-members 150, mixed-cluster 91, patroni 85, sim 66, cluster 57,
    // leader-change 53, first-start-crash 42, corrupt-check 39, grpc-proxy 37 (bench/suite/README.md).
    maxWorkers: 5,
    sequence: { sequencer: LongestFirst },
  },
});
