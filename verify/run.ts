// One verification run: start a cluster of real member processes, drive the
// workload, watchers and recorders, inject faults and compact, then heal, read
// the final state, stop everything and check the history.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BrokenProxy, type BrokenMode } from './broken-proxy.js';
import { checkHistory, formatReport, type CheckReport } from './check.js';
import { Cluster, type ClusterBinary, type ServerBinary } from './cluster.js';
import { EtcdClient } from './client.js';
import { groupPrefix, type KeySpace } from './generate.js';
import { emptyHistory, historyToJsonLines, type Compaction, type History, type Operation } from './history.js';
import { Nemesis, type NemesisKind } from './nemesis.js';
import { prefixEnd } from './partition.js';
import { Rng } from './rng.js';
import { writeTimeline } from './timeline.js';
import { Watchers } from './watchers.js';
import { Workload } from './workload.js';

export interface RunOptions {
  nodes: number;
  nemesis: NemesisKind[];
  timeSec: number;
  seed: number;
  binary: ClusterBinary;
  clients: number;
  watchers: number;
  space: KeySpace;
  requestTimeoutMs: number;
  snapshotCount: number;
  /** 0 disables compaction */
  compactEveryMs: number;
  broken: BrokenMode | null;
  /**
   * With `broken`: the workload goes on past timeSec until the proxies have cheated this
   * many times (for at most MAX_CHEAT_WAIT_FACTOR × timeSec more), so that a slow machine
   * serving few requests in timeSec still gives the checker cheats to catch.
   */
  minCheats: number;
  /** where results go; default: a new directory under the OS temp dir */
  outDir: string | null;
  /** write history and timeline even when the verdict is valid */
  keep: boolean;
  /** write history and timeline, and keep member data, when the verdict is not valid */
  saveOnFailure: boolean;
  /** send WatchProgressRequests (default: only when every member is etcd-ts; see watchers.ts) */
  progressRequests: boolean | null;
  /** open watches beyond the serving member's revision (default: only when every member is etcd-ts; see watchers.ts) */
  futureWatches: boolean | null;
  /** linearizability search budget */
  checkTimeoutMs: number;
  log(line: string): void;
}

/** how much longer than timeSec a run waits for its proxies' minCheats */
const MAX_CHEAT_WAIT_FACTOR = 10;

export const DEFAULT_RUN: RunOptions = {
  nodes: 3,
  nemesis: ['kill', 'pause', 'partition'],
  timeSec: 60,
  seed: 1,
  binary: 'etcd',
  clients: 8,
  watchers: 3,
  space: { groups: 8, keysPerGroup: 4 },
  requestTimeoutMs: 1000,
  snapshotCount: 100,
  compactEveryMs: 2000,
  broken: null,
  minCheats: 0,
  outDir: null,
  keep: false,
  saveOnFailure: true,
  progressRequests: null,
  futureWatches: null,
  checkTimeoutMs: 5 * 60_000,
  log: (line) => console.log(line),
};

export interface RunResult {
  report: CheckReport;
  history: History;
  /** set when results were written */
  outDir: string | null;
  /** time faults were active */
  faultMs: number;
  nemesisEvents: number;
  cheats: number;
  /** raft terms started during the run (elections that happened) */
  elections: number;
  /** what each member ran */
  members: ServerBinary[];
}

const NOSPACE_QUOTA = 48 * 1024 * 1024;

export async function runJepsen(partial: Partial<RunOptions>): Promise<RunResult> {
  const o: RunOptions = { ...DEFAULT_RUN, ...partial };
  const log = o.log;
  const t0 = performance.now();
  const clock = (): number => performance.now() - t0;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `etcd-ts-jepsen-${stamp}-s${o.seed}-`));
  const rng = new Rng(o.seed);

  const cluster = await Cluster.start({
    size: o.nodes,
    binary: o.binary,
    dir: workDir,
    snapshotCount: o.snapshotCount,
    quotaBackendBytes: o.nemesis.includes('nospace') ? NOSPACE_QUOTA : 0,
    progressNotifyMs: 1000,
    seed: o.seed,
  });
  log(`started ${cluster.members.map((m) => `${m.name} (${m.binary})`).join(', ')} in ${workDir}`);
  const proxies: BrokenProxy[] = [];
  let result: RunResult | null = null;
  // Stoppers for whatever was started, so a run that throws leaves nothing behind.
  const stoppers: (() => Promise<void>)[] = [];
  try {
    const memberEndpoints = cluster.members.map((_, i) => cluster.endpoint(i));
    let endpoints = memberEndpoints;
    if (o.broken !== null) {
      for (const e of memberEndpoints) {
        const p = new BrokenProxy(e, o.broken, rng.int(1, 1 << 30));
        await p.listen();
        proxies.push(p);
      }
      endpoints = proxies.map((p) => `127.0.0.1:${p.port}`);
      log(`broken mode: ${proxies.map(String).join('; ')}`);
    }

    const termAtStart = await cluster.client(0).status(2000).then((st) => st.raftTerm, () => 0);
    const fillerOps: Operation[] = [];
    const compactions: Compaction[] = [];
    const workload = new Workload({
      clients: o.clients,
      space: o.space,
      requestTimeoutMs: o.requestTimeoutMs,
      seed: o.seed,
      clock,
      // like etcd's robustness suite: most clients stick to one member, a few balance over all
      endpointsFor: (c) => (c % 4 === 3 ? endpoints : [endpoints[c % endpoints.length]!]),
    });
    const watchers = new Watchers({
      watchers: o.watchers,
      recorders: Math.min(2, o.nodes),
      space: o.space,
      seed: o.seed,
      endpoints,
      recorderEndpoints: memberEndpoints,
      clock,
      currentRevision: () => workload.lastRevision,
      // etcd 3.4.23's watch bugs (watchers.ts) show through any etcd member, so a mixed cluster gets neither
      progressRequests: o.progressRequests ?? o.binary === 'etcd-ts',
      futureWatches: o.futureWatches ?? o.binary === 'etcd-ts',
    });

    let lastCompact = 0;
    const compact = async (): Promise<void> => {
      // Never past what the recorders have received, so the reference stays complete.
      const target = Math.min(watchers.recordersReached(), workload.lastRevision) - 5;
      if (target <= lastCompact) return;
      const live = cluster.running();
      if (live.length === 0) return;
      const member = rng.pick(live);
      const time = clock();
      try {
        await cluster.client(member.index).compact(target, 2000);
        compactions.push({ time, revision: target, ok: true });
        lastCompact = target;
      } catch (e) {
        // "required revision has been compacted" means someone got there first
        compactions.push({ time, revision: target, ok: false });
        if (/compacted/.test(String(e))) lastCompact = target;
      }
    };

    const nemesis = new Nemesis(cluster, {
      kinds: o.nemesis,
      seed: o.seed,
      clock,
      recordFiller: (op) => fillerOps.push({ ...op, id: -1 }),
      compact,
    });

    watchers.startRecorders();
    workload.start();
    watchers.startWatchers();
    nemesis.start();
    stoppers.push(
      () => nemesis.abort(),
      () => workload.stop(),
      () => watchers.stop(),
    );
    const compactor = o.compactEveryMs > 0 ? setInterval(() => void compact(), o.compactEveryMs) : null;

    const progress = setInterval(() => {
      log(`  t=${(clock() / 1000).toFixed(0)}s ops=${workload.operations.length} rev=${workload.lastRevision} faults=${cluster.network.describe()} members=${cluster.members.map((m) => m.state[0]).join('')}`);
    }, 10_000);
    await new Promise((r) => setTimeout(r, o.timeSec * 1000));
    const cheats = () => proxies.reduce((n, p) => n + p.cheats, 0);
    for (const giveUp = clock() + MAX_CHEAT_WAIT_FACTOR * o.timeSec * 1000; cheats() < o.minCheats && clock() < giveUp; ) {
      await new Promise((r) => setTimeout(r, 250));
    }
    clearInterval(progress);
    if (compactor !== null) clearInterval(compactor);

    log('healing');
    await nemesis.stop();
    await cluster.waitHealthy();
    // Let clients run a moment on the healed cluster, so the end of the history is dense.
    await new Promise((r) => setTimeout(r, 1000));
    await workload.stop();

    // Final state, one linearizable read per group (each stays in its partition).
    const final = new EtcdClient(memberEndpoints);
    let finalRev = workload.lastRevision;
    for (let g = 0; g < o.space.groups; g++) {
      const input = { type: 'range' as const, key: groupPrefix(g), end: prefixEnd(groupPrefix(g)), serializable: false };
      for (let attempt = 0; attempt < 20; attempt++) {
        const op = await workload.issue(-2, final, input);
        if (op?.output) {
          finalRev = Math.max(finalRev, op.output.revision);
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const termAtEnd = await final.status(2000).then((st) => st.raftTerm, () => termAtStart);
    final.close();
    const caughtUp = await watchers.awaitRecorders(finalRev, 20_000);
    if (!caughtUp) log(`  recorders did not reach revision ${finalRev}`);
    await watchers.stop();

    const history = emptyHistory();
    history.operations = [...workload.operations, ...fillerOps].sort((a, b) => a.call - b.call).map((op, id) => ({ ...op, id }));
    history.watches = watchers.sessions;
    history.nemesis = nemesis.events;
    history.compactions = compactions;
    log(
      `run done: ${history.operations.length} operations, ${history.watches.length} watches, ${nemesis.events.length} nemesis events, ` +
        `${termAtEnd - termAtStart} elections, ${compactions.filter((c) => c.ok).length} compactions; checking`,
    );

    const report = checkHistory(history, { timeoutMs: o.checkTimeoutMs });
    log(formatReport(report));
    let outDir: string | null = null;
    if ((report.verdict !== 'valid' && o.saveOnFailure) || o.keep) {
      outDir = o.outDir ?? path.join(workDir, 'results');
      fs.mkdirSync(outDir, { recursive: true });
      fs.writeFileSync(path.join(outDir, 'history.jsonl'), historyToJsonLines(history));
      fs.writeFileSync(path.join(outDir, 'report.txt'), formatReport(report) + '\n');
      writeTimeline(path.join(outDir, 'timeline.html'), history, report);
      log(`history, report and timeline written to ${outDir}`);
    }
    result = { report, history, outDir, faultMs: nemesis.faultMs, nemesisEvents: nemesis.events.length, cheats: cheats(), elections: termAtEnd - termAtStart, members: cluster.members.map((m) => m.binary) };
    return result;
  } finally {
    for (const stop of stoppers) await stop().catch(() => undefined);
    await Promise.all(proxies.map((p) => p.close()));
    await cluster.stop();
    // Keep member data and logs only when something needs looking into.
    if (result !== null && result.outDir === null) fs.rmSync(workDir, { recursive: true, force: true });
  }
}
