// npm run jepsen -- --nodes 3 --nemesis kill,pause,partition --time 60 --seed S [--binary etcd|etcd-ts|mixed]
//
// Prints a verdict; exit status 0 = valid, 1 = anomalies found, 2 = inconclusive,
// 64 = bad arguments. On failure the history (JSON lines), a report and an HTML
// timeline are written to the directory it names.
//
// `--check FILE` re-checks a recorded history.jsonl without running anything.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKEN_MODES, type BrokenMode } from './broken-proxy.js';
import { checkHistory, formatReport } from './check.js';
import { CLUSTER_BINARIES, type ClusterBinary } from './cluster.js';
import { historyFromJsonLines } from './history.js';
import { NEMESIS_KINDS, parseNemesis } from './nemesis.js';
import { DEFAULT_RUN, runJepsen } from './run.js';
import { writeTimeline } from './timeline.js';

const USAGE = `usage: npm run jepsen -- [options]
  --nodes N            members (default ${DEFAULT_RUN.nodes})
  --nemesis LIST       comma-separated faults from ${NEMESIS_KINDS.join(',')} or none (default ${DEFAULT_RUN.nemesis.join(',')})
  --time SECONDS       workload duration (default ${DEFAULT_RUN.timeSec})
  --seed S             seed for workload and fault schedule (default ${DEFAULT_RUN.seed})
  --binary B           etcd (/usr/bin/etcd), etcd-ts (node bin/etcd-ts) or mixed (members
                       alternate etcd-ts and etcd in one cluster) (default etcd)
  --clients N          concurrent KV clients (default ${DEFAULT_RUN.clients})
  --watchers N         concurrent watchers (default ${DEFAULT_RUN.watchers})
  --snapshot-count N   member --snapshot-count (default ${DEFAULT_RUN.snapshotCount})
  --compact-every MS   compaction period, 0 = off (default ${DEFAULT_RUN.compactEveryMs})
  --progress-requests on|off
                       send WatchProgressRequests (default: on for etcd-ts, off for etcd 3.4.23 and mixed,
                       which orders their answers wrongly: etcd-io/etcd#15220)
  --future-watches on|off
                       open watches beyond the serving member's revision (default: on for etcd-ts,
                       off for etcd 3.4.23 and mixed, which then delivers events below the start revision
                       after a snapshot restore)
  --broken MODE        put a cheating proxy on the client ports: ${BROKEN_MODES.join(', ')}
  --out DIR            where to write history, report and timeline
  --keep               write them even when the history is valid
  --check FILE         check a recorded history.jsonl instead of running`;

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(64);
}

function isClusterBinary(b: string): b is ClusterBinary {
  return (CLUSTER_BINARIES as readonly string[]).includes(b);
}

function int(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${v}"`);
  return n;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        nodes: { type: 'string' },
        nemesis: { type: 'string' },
        time: { type: 'string' },
        seed: { type: 'string' },
        binary: { type: 'string' },
        clients: { type: 'string' },
        watchers: { type: 'string' },
        'snapshot-count': { type: 'string' },
        'compact-every': { type: 'string' },
        broken: { type: 'string' },
        'progress-requests': { type: 'string' },
        'future-watches': { type: 'string' },
        out: { type: 'string' },
        keep: { type: 'boolean' },
        check: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (v.check !== undefined) {
    const history = historyFromJsonLines(fs.readFileSync(v.check, 'utf8'));
    const report = checkHistory(history);
    console.log(formatReport(report));
    if (report.verdict !== 'valid') {
      const out = v.out ?? path.dirname(v.check);
      writeTimeline(path.join(out, 'timeline.html'), history, report);
      console.log(`timeline written to ${path.join(out, 'timeline.html')}`);
    }
    return report.verdict === 'valid' ? 0 : report.verdict === 'invalid' ? 1 : 2;
  }
  const binary = v.binary ?? 'etcd';
  if (!isClusterBinary(binary)) fail(`--binary must be one of ${CLUSTER_BINARIES.join(', ')}, got "${binary}"`);
  if (v.broken !== undefined && !(BROKEN_MODES as readonly string[]).includes(v.broken)) fail(`--broken must be one of ${BROKEN_MODES.join(', ')}`);
  let nemesis;
  try {
    nemesis = v.nemesis === undefined ? DEFAULT_RUN.nemesis : parseNemesis(v.nemesis);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  const pr = v['progress-requests'];
  if (pr !== undefined && pr !== 'on' && pr !== 'off') fail('--progress-requests must be on or off');
  const fw = v['future-watches'];
  if (fw !== undefined && fw !== 'on' && fw !== 'off') fail('--future-watches must be on or off');
  const nodes = int(v.nodes, 'nodes', DEFAULT_RUN.nodes);
  if (nodes < 1) fail('--nodes must be at least 1');
  const result = await runJepsen({
    nodes,
    nemesis,
    timeSec: int(v.time, 'time', DEFAULT_RUN.timeSec),
    seed: int(v.seed, 'seed', DEFAULT_RUN.seed),
    binary,
    clients: int(v.clients, 'clients', DEFAULT_RUN.clients),
    watchers: int(v.watchers, 'watchers', DEFAULT_RUN.watchers),
    snapshotCount: int(v['snapshot-count'], 'snapshot-count', DEFAULT_RUN.snapshotCount),
    compactEveryMs: int(v['compact-every'], 'compact-every', DEFAULT_RUN.compactEveryMs),
    broken: (v.broken as BrokenMode | undefined) ?? null,
    progressRequests: pr === undefined ? null : pr === 'on',
    futureWatches: fw === undefined ? null : fw === 'on',
    outDir: v.out ?? null,
    keep: v.keep ?? false,
  });
  console.log(`faults active ${(result.faultMs / 1000).toFixed(1)}s over ${result.nemesisEvents} nemesis events`);
  if (result.outDir !== null) console.log(`results: ${result.outDir}`);
  return result.report.verdict === 'valid' ? 0 : result.report.verdict === 'invalid' ? 1 : 2;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(2);
  },
);
