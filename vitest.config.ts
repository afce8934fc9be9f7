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
  'test/raft/sim-members.test.ts',
  'test/e2e/mixed-cluster.test.ts',
  'test/e2e/grpc-proxy.test.ts',
  'test/e2e/first-start-crash.test.ts',
  'test/e2e/jepsen.test.ts',
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

/**
 * Test files that need no process of their own: they change nothing process-wide (no chdir,
 * environment, signal handlers, mocks, memory or GC measurements, no in-process etcd server
 * with its metrics registry) and leave no process behind (the members, real etcd and etcdctl
 * they start are killed and reaped by the file's own hooks). They run one after another in
 * shared worker processes (`isolate: false`): an isolated file costs 0.3-0.5 CPU s just to
 * exist (a forked worker, its setup, its imports compiled and evaluated afresh), which is
 * most of what the in-process units among them cost, and an end-to-end file's worker more
 * (19 such files shared: 126-135 CPU s of the machine for them against 144, session 17).
 * Everything else keeps a fresh worker per file. bench/suite/README.md has the figures.
 */
const SHARED_WORKER = [
  'test/architecture/start-imports.test.ts',
  'test/bbolt/etcd-buckets.test.ts',
  'test/bbolt/reader.test.ts',
  'test/bbolt/write-fault.test.ts',
  'test/config/file.test.ts',
  'test/config/flags.test.ts',
  'test/config/logger.test.ts',
  'test/config/parse.test.ts',
  'test/config/systemd.test.ts',
  'test/config/values.test.ts',
  'test/e2e/auth-cert-cn.test.ts',
  'test/e2e/auth-flood.test.ts',
  'test/e2e/auth-input.test.ts',
  'test/e2e/auto-compaction.test.ts',
  'test/e2e/clients.test.ts',
  'test/e2e/cluster-version.test.ts',
  'test/e2e/dual-scheme.test.ts',
  'test/e2e/etcd-db-export.test.ts',
  'test/e2e/etcdctl.test.ts',
  'test/e2e/event-loop-sampling.test.ts',
  'test/e2e/free-port.test.ts',
  'test/e2e/full-disk.test.ts',
  'test/e2e/gateway-mode.test.ts',
  'test/e2e/harness.test.ts',
  'test/e2e/hostile-grpc.test.ts',
  'test/e2e/hostile-h2.test.ts',
  'test/e2e/hostile-peer.test.ts',
  'test/e2e/huge-range.test.ts',
  'test/e2e/legacy-layout.test.ts',
  'test/e2e/lock-election.test.ts',
  'test/e2e/max-streams.test.ts',
  'test/e2e/native-heap-trim.test.ts',
  'test/e2e/peer-cert-cn.test.ts',
  'test/e2e/peer-warning.test.ts',
  'test/e2e/quota.test.ts',
  'test/e2e/raft-entry.test.ts',
  'test/e2e/reconfig.test.ts',
  'test/e2e/remotes.test.ts',
  'test/e2e/restore.test.ts',
  'test/e2e/tls.test.ts',
  'test/e2e/unix-sockets.test.ts',
  'test/e2e/v2-auth.test.ts',
  'test/e2e/v2.test.ts',
  'test/gateway/calls.test.ts',
  'test/gateway/codec.test.ts',
  'test/gateway/etcd3gw.test.ts',
  'test/gateway/gateway.test.ts',
  'test/gateway/lock-election.test.ts',
  'test/grpc/codes.test.ts',
  'test/grpc/h2.test.ts',
  'test/grpc/server.test.ts',
  'test/listener/grpc-connection.test.ts',
  'test/listener/http.test.ts',
  'test/listener/metrics.test.ts',
  'test/listener/peer.test.ts',
  'test/listener/serve.test.ts',
  'test/listener/tls.test.ts',
  'test/mvcc/build.test.ts',
  'test/mvcc/codec.test.ts',
  'test/mvcc/compactor.test.ts',
  'test/mvcc/crash.test.ts',
  'test/mvcc/history.test.ts',
  'test/mvcc/key-table.test.ts',
  'test/mvcc/kv.test.ts',
  'test/mvcc/maintenance.test.ts',
  'test/mvcc/range-slices.test.ts',
  'test/mvcc/watch.test.ts',
  'test/raft/election-features.test.ts',
  'test/raft/hostile.test.ts',
  'test/raft/membership.test.ts',
  'test/raft/paper.test.ts',
  'test/raft/rawnode.test.ts',
  'test/raft/read-forward.test.ts',
  'test/raft/replication.test.ts',
  'test/raft/sim-broken-driver.test.ts',
  'test/raft/sim-checker.test.ts',
  'test/raft/smoke.test.ts',
  'test/raft/term-limit.test.ts',
  'test/raft/trace/datadriven.test.ts',
  'test/raft/trace/trace.test.ts',
  'test/raft/units.test.ts',
  'test/raftpb/boundaries.test.ts',
  'test/raftpb/codec.test.ts',
  'test/raftpb/varint-size.test.ts',
  'test/server/apply.test.ts',
  'test/server/backup/etcd-db.test.ts',
  'test/server/cluster-version.test.ts',
  'test/server/first-start-wal.test.ts',
  'test/server/import/snapshot-data.test.ts',
  'test/server/leader-calls.test.ts',
  'test/server/lessor.test.ts',
  'test/server/member-listeners.test.ts',
  'test/server/pb.test.ts',
  'test/server/proto-descriptor.test.ts',
  'test/server/raft-node.test.ts',
  'test/server/range-encoder.test.ts',
  'test/server/range-perms.test.ts',
  'test/server/read-index.test.ts',
  'test/server/received-db.test.ts',
  'test/server/simple-token.test.ts',
  'test/server/snapshot-frames.test.ts',
  'test/server/v2store.test.ts',
  'test/server/wait.test.ts',
  'test/server/wire-check.test.ts',
  'test/transport/leader-rpc.test.ts',
  'test/transport/malformed.test.ts',
  'test/transport/snapshot.test.ts',
  'test/transport/stream-codec.test.ts',
  'test/transport/stream.test.ts',
  'test/transport/tls-members.test.ts',
  'test/verify/broken.test.ts',
  'test/verify/cli.test.ts',
  'test/verify/linearizability.test.ts',
  'test/verify/peer-proxy.test.ts',
  'test/verify/reference.test.ts',
  'test/verify/synth.test.ts',
  'test/verify/timeline.test.ts',
  'test/verify/watch.test.ts',
  'test/wal/crash.test.ts',
  'test/wal/etcd.test.ts',
  'test/wal/faults.test.ts',
  'test/wal/format.test.ts',
  'test/wal/snapshotter.test.ts',
  'test/wal/uint64.test.ts',
];

export default defineConfig({
  test: {
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
    projects: [
      { extends: true, test: { name: 'shared-worker', include: SHARED_WORKER, isolate: false } },
      { extends: true, test: { name: 'isolated', include: ['test/**/*.test.ts'], exclude: SHARED_WORKER } },
    ],
  },
});
