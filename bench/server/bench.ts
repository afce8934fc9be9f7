// Side-by-side benchmark: real etcd 3.4.23 and etcd-ts, same machine, same disk, same
// load client (goload, etcd's official Go client: it costs the client far less CPU than a
// Node client would), alternating server by server, round by round. Prints ratios.
//
//   npm run bench:server -- [--members 1|3] [--duration 5s] [--rounds 2] [--goload /tmp/goload] [--check-perf]
//       [--ts LABEL=DIR[,VAR=VALUE...]]... [--url] [--only NAME,NAME...] [--mixed] [--auth-rate N]
//       [--snapshot [--snapshot-keys 1000000] [--snapshot-rounds 1]] [--settle SECONDS] [--warmup 3s]
//
// --ts runs an etcd-ts build other than this one (DIR: a built checkout; VAR=VALUE: its
// environment), several times for several builds, each beside etcd in the same rounds; e.g.
// `--ts base=/tmp/base --ts new=. --ts nocap=.,ETCDTS_HEAP_GROWING_PERCENT=0`. Default: this
// checkout as "etcd-ts". --url adds rows where goload dials `http://127.0.0.1:PORT` (a URL
// endpoint, as etcdctl users write it; grpc-go then sends `:authority: http://...`). --only
// keeps the named rows (e.g. `put c=64,get-ser c=64`).
//
// Rows ending in "auth" run with auth on, on a cluster of their own filled as the others':
// root and a user with readwrite on the keys' prefix, `auth enable`, and the load runs as
// that user (authload, bench/authload: goload's counterpart with --user/--password; simple
// tokens). The same member also runs each of those loads with auth off, through authload
// without credentials (before enabling auth in even rounds, after disabling it in odd
// ones): auth on / auth off is printed from that pair, round by round (throughput, and CPU
// per op), so that it compares auth and nothing else — not the client, not the member. The
// ratio to the goload row on another member is printed beside it. --auth-rate N caps both
// sides of that pair at N requests a second (authload -rate): closed-loop, the side answered
// faster batches more and pays less CPU per request, so at a rate both reach their CPU per
// request compares the work per request alone.
//
// --mixed (with --members 3) runs each etcd-ts build as one member of a mixed cluster: 2 ×
// etcd + 1 × etcd-ts, the etcd-ts member made leader with `etcdctl move-leader`, beside the
// pure etcd cluster in the same rounds; the put rows only (1, 64, 256 clients). The rows
// are labelled `LABEL+2etcd`. With 3 members the leader's own CPU per op is printed beside
// the cluster's (the member that led once the cluster was up): in a mixed cluster the
// etcd-ts leader is where the two clusters differ.
//
// Each cluster is filled with 1000 keys and then warmed up, unmeasured, by --warmup of puts
// at 64 clients (0s: none) before its first row: the rows measure a server that has been
// serving, not the first seconds after its start, in which etcd-ts's JavaScript is still
// being compiled by V8 (put c=1, the first row, ran at 0.73 of etcd right after the start
// and 0.9-1.0 after a few seconds of load, bench/server/README.md). etcd gets the same.
//
// RSS is read right after each cluster's last load (the "RSS after load" line). --settle N
// also reads it N seconds later, no requests meanwhile (what an idle member keeps: etcd-ts
// gives some back once idle, src/pkg/idle-gc.ts), as a second column. A build run with
// ETCDTS_MEMORY_REPORT=FILE in its --ts environment is sent SIGUSR2 after those readings,
// and appends where its RSS is to FILE (src/pkg/memory-report.ts).
//
// --check-perf also runs `etcdctl check perf --load=s` (60 s) on each server every round and
// prints its verdicts: they judge latency, so they live here rather than in a test.
//
// --snapshot adds the snapshot rows after the load rows (`--only snapshot`: those alone):
// on one member of each server, 1 M keys × 256 B (--snapshot-keys), `etcdctl snapshot save`
// as MB/s with the member's peak RSS during it, then `snapshot restore` and the first start
// on the restored data dir, with etcd-ts's import time; ratios to etcd. One round by
// default (--snapshot-rounds; the fill alone takes minutes). The measurement is
// bench/snapshot's (snapshot.ts), which its README describes.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { authloadBinary, disableAuth, enableAuth, runAuthload } from '../authload/authload.js';
import { freePort } from '../free-port.js';
import { tsBuildsFromArgs } from '../member.js';
import { measureSnapshot, roundLine, type SnapshotResult, snapshotReport } from '../snapshot/snapshot.js';
import { leaderIndex, moveLeaderTo } from './leader.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const members = Number(arg('members', '1'));
const duration = arg('duration', '5s');
const rounds = Number(arg('rounds', '2'));
const goload = arg('goload', '/tmp/goload');
const checkPerf = process.argv.includes('--check-perf');
const mixed = process.argv.includes('--mixed');
if (mixed && members !== 3) throw new Error('--mixed runs 2 × etcd + 1 × etcd-ts: it needs --members 3');
/** A mixed cluster's rows are labelled after the build that leads it. */
const MIXED_SUFFIX = '+2etcd';
const authRate = Number(arg('auth-rate', '0'));
const settleSeconds = Number(arg('settle', '0'));
const warmup = arg('warmup', '3s');

const tsBuilds = tsBuildsFromArgs();

/** 'etcd' or the label of an etcd-ts build. */
type Server = string;

interface Workload {
  name: string;
  op: 'put' | 'get-lin' | 'get-ser';
  clients: number;
  /** goload dials http://IP:PORT rather than IP:PORT. */
  url?: boolean;
  /** with auth on, as a user who may read and write the keys: the name of the same load's auth-off row */
  authOff?: string;
}

const allWorkloads: Workload[] =
  members === 1
    ? [
        { name: 'put c=1', op: 'put', clients: 1 },
        { name: 'put c=64', op: 'put', clients: 64 },
        // issue 19's third put target; its batches are the largest one member makes
        { name: 'put c=256', op: 'put', clients: 256 },
        { name: 'get-lin c=64', op: 'get-lin', clients: 64 },
        { name: 'get-ser c=64', op: 'get-ser', clients: 64 },
        { name: 'put c=64 auth', op: 'put', clients: 64, authOff: 'put c=64' },
        { name: 'get-ser c=64 auth', op: 'get-ser', clients: 64, authOff: 'get-ser c=64' },
      ]
    : [
        { name: 'put c=1', op: 'put', clients: 1 },
        { name: 'put c=64', op: 'put', clients: 64 },
        { name: 'put c=256', op: 'put', clients: 256 },
        { name: 'get-lin c=64', op: 'get-lin', clients: 64 },
      ];
if (process.argv.includes('--url')) {
  allWorkloads.push(
    { name: 'put c=64 url', op: 'put', clients: 64, url: true },
    { name: 'get-ser c=64 url', op: 'get-ser', clients: 64, url: true },
  );
}
// a mixed cluster is measured on puts, where the leader's peer protocol carries everything
if (mixed) allWorkloads.splice(0, allWorkloads.length, ...allWorkloads.filter((w) => w.op === 'put'));
const only = arg('only', '');
const onlyNames = only === '' ? [] : only.split(',');
const workloads = only === '' ? allWorkloads : allWorkloads.filter((w) => onlyNames.includes(w.name));
/** the snapshot rows: `--snapshot`, or `snapshot` among the --only names */
const snapshotRows = process.argv.includes('--snapshot') || onlyNames.includes('snapshot');
const snapshotKeys = Number(arg('snapshot-keys', '1000000'));
const snapshotRounds = Number(arg('snapshot-rounds', '1'));
if (workloads.length === 0 && !snapshotRows) throw new Error(`--only ${only}: no such rows (${[...allWorkloads.map((w) => w.name), 'snapshot'].join(', ')})`);
/** the auth rows' auth-off loads print as `NAME (off)` */
const nameWidth = Math.max(0, ...workloads.map((w) => w.name.length + (w.authOff === undefined ? 0 : ' (off)'.length)));

interface Result {
  ops_per_s: number;
  ops: number;
  /** median latency: issue 19's single-client targets are on it (etcd's + 0.1 ms with one member, 1.2× with three) */
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** CPU the members used per operation (µs), goload's own 500 ms warm-up included: on a shared machine it varies less than throughput. */
  cpu_us_per_op: number;
  /** the leader's share of it (the member that led when the cluster started; NaN with one member) */
  leader_cpu_us_per_op: number;
  /**
   * times per op the leader's main thread was switched out while it could run (nonvoluntary
   * context switches): for etcd-ts, its one JavaScript thread; for etcd, one of Go's threads only
   */
  leader_preempted_per_op: number;
  /**
   * µs per op that thread spent runnable but waiting for a core (/proc/PID/schedstat): on
   * two cores shared by three members and goload, what a preemption costs the pipeline
   */
  leader_waited_us_per_op: number;
}

interface Cluster {
  procs: ChildProcess[];
  endpoints: string[];
  dir: string;
  /** index of the member that led once the cluster was up (a mixed cluster's etcd-ts member) */
  leader: number;
}

/** A cluster that answers; a start that fails (on a shared machine, mostly a port taken meanwhile) is tried again on new ports. */
async function startCluster(server: Server): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartCluster(server);
    } catch (err) {
      if (attempt === 3) throw err;
      console.error(`${(err as Error).message}; starting again`);
    }
  }
}

async function tryStartCluster(server: Server): Promise<Cluster> {
  // data on the same disk for both: the working directory's file system
  const dir = mkdtempSync(path.join(repoRoot, '.bench-'));
  const names = Array.from({ length: members }, (_, i) => `m${i}`);
  const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const build = tsBuilds.find((b) => b.label === server || `${b.label}${MIXED_SUFFIX}` === server);
  const procs = names.map((name, i) => {
    const args = [
      '--name', name,
      '--data-dir', path.join(dir, name),
      '--listen-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
      '--advertise-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`,
      '--initial-cluster', initialCluster,
      '--log-level', 'warn',
    ];
    // in a mixed cluster only the first member is etcd-ts
    if (build === undefined || (server !== build.label && i > 0)) return spawn('etcd', args, { stdio: 'ignore' });
    // the command as users run it: bin/etcd-ts starts Node with its own flags
    return spawn(path.join(build.dir, 'bin/etcd-ts'), args, { stdio: 'ignore', env: { ...process.env, ...build.env } });
  });
  const c = { procs, endpoints: ports.map((p) => `127.0.0.1:${p.client}`), dir, leader: 0 };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      execFileSync('etcdctl', ['--endpoints', c.endpoints.join(','), 'endpoint', 'health'], { stdio: 'ignore' });
      if (server.endsWith(MIXED_SUFFIX)) moveLeaderTo(c.endpoints, 0);
      else if (members > 1) c.leader = leaderIndex(c.endpoints);
      return c;
    } catch {
      // a member that exited (e.g. a port taken by another session meanwhile) never will be
      const exited = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (exited !== undefined || Date.now() > deadline) {
        await stopCluster(c);
        throw new Error(`${server} did not become healthy${exited ? ` (a member exited: ${exited.exitCode ?? exited.signalCode})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function stopCluster(c: Cluster): Promise<void> {
  for (const p of c.procs) p.kill('SIGKILL');
  await Promise.all(c.procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.on('exit', r)))));
  rmSync(c.dir, { recursive: true, force: true });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU time (user + system) the cluster's processes (or the one at `only`) have used so far, in µs. */
function cpuUs(c: Cluster, only?: number): number {
  let ticks = 0;
  for (const p of only === undefined ? c.procs : [c.procs[only]!]) {
    // fields after the command name: state is field 3, utime 14 and stime 15
    const fields = readFileSync(`/proc/${p.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1e6) / CLOCK_TICKS_PER_S;
}
/** The nonvoluntary context switches of the process's main thread so far. */
function preemptions(c: Cluster, i: number): number {
  return Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${c.procs[i]!.pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** µs the member's main thread has waited in the run queue (schedstat's second field, ns). */
function runqueueWaitUs(c: Cluster, i: number): number {
  return Number(readFileSync(`/proc/${c.procs[i]!.pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/**
 * How a load runs: goload (the rows without auth), or authload as the bench user (auth on)
 * or without credentials (the same load with auth off, for the on/off ratio).
 */
type Client = 'goload' | 'authload as user' | 'authload without credentials';

async function load(c: Cluster, w: Workload, client: Client): Promise<Result> {
  const args = [
    '-endpoints', c.endpoints.map((e) => (w.url ? `http://${e}` : e)).join(','),
    '-op', w.op,
    '-clients', String(w.clients),
    '-conns', String(Math.min(8, w.clients)),
    '-duration', duration,
  ];
  let cpuBefore = cpuUs(c);
  let leaderBefore = cpuUs(c, c.leader);
  let preemptedBefore = preemptions(c, c.leader);
  let waitedBefore = runqueueWaitUs(c, c.leader);
  // with auth on, CPU is counted from when the connections have authenticated: each
  // Authenticate is one bcrypt, paid once per connection rather than per request
  const out =
    client === 'goload'
      ? execFileSync(goload, args).toString()
      : await runAuthload(authload!, [...args, '-rate', String(authRate)], () => ((cpuBefore = cpuUs(c)), (leaderBefore = cpuUs(c, c.leader)), (preemptedBefore = preemptions(c, c.leader)), (waitedBefore = runqueueWaitUs(c, c.leader))), client === 'authload as user');
  const r = JSON.parse(out.trim().split('\n').pop()!) as Omit<Result, 'cpu_us_per_op' | 'leader_cpu_us_per_op' | 'leader_preempted_per_op' | 'leader_waited_us_per_op'>;
  const leader = members > 1 ? (cpuUs(c, c.leader) - leaderBefore) / r.ops : NaN;
  const preempted = members > 1 ? (preemptions(c, c.leader) - preemptedBefore) / r.ops : NaN;
  const waited = members > 1 ? (runqueueWaitUs(c, c.leader) - waitedBefore) / r.ops : NaN;
  return { ...r, cpu_us_per_op: (cpuUs(c) - cpuBefore) / r.ops, leader_cpu_us_per_op: leader, leader_preempted_per_op: preempted, leader_waited_us_per_op: waited };
}

/** SIGUSR2 to an etcd-ts build's members that run with ETCDTS_MEMORY_REPORT, and a moment for them to write it. */
async function memoryReport(c: Cluster, server: Server): Promise<void> {
  const build = tsBuilds.find((b) => b.label === server || `${b.label}${MIXED_SUFFIX}` === server);
  if (build?.env.ETCDTS_MEMORY_REPORT === undefined) return;
  // in a mixed cluster only the first member is etcd-ts
  for (const p of server.endsWith(MIXED_SUFFIX) ? c.procs.slice(0, 1) : c.procs) p.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 3000));
}

/** `etcdctl check perf --load=s`: its PASS/FAIL lines (throughput, slowest request, stddev). */
function runCheckPerf(c: Cluster): string[] {
  let out: string;
  try {
    out = execFileSync('etcdctl', ['--endpoints', c.endpoints.join(','), 'check', 'perf', '--load=s'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    out = String((err as { stdout?: Buffer }).stdout ?? '');
  }
  return out.split('\n').filter((l) => /^(PASS|FAIL)|took too long|too high/.test(l));
}

/** Time from kill -9 of the leader to the next write acknowledged by the survivors. */
function failoverMs(c: Cluster): number {
  const status = JSON.parse(
    execFileSync('etcdctl', ['--endpoints', c.endpoints.join(','), 'endpoint', 'status', '-w', 'json']).toString(),
  ) as Array<{ Status: { header: { member_id: number }; leader: number } }>;
  const leader = status.findIndex((s) => s.Status.leader === s.Status.header.member_id);
  if (leader < 0) throw new Error('no leader to kill');
  const survivors = c.endpoints.filter((_, i) => i !== leader);
  const t0 = performance.now();
  c.procs[leader]!.kill('SIGKILL');
  for (;;) {
    try {
      execFileSync('etcdctl', ['--endpoints', survivors.join(','), '--command-timeout=500ms', 'put', 'failover', 'x'], { stdio: 'ignore' });
      return performance.now() - t0;
    } catch {
      // no leader yet
    }
  }
}

/** Built only when an auth row runs. */
const authload = workloads.some((w) => w.authOff !== undefined) ? authloadBinary() : undefined;

async function main(): Promise<void> {
  const servers: Server[] = ['etcd', ...tsBuilds.map((b) => (mixed ? `${b.label}${MIXED_SUFFIX}` : b.label))];
  if (workloads.length > 0) await loadRows(servers);
  if (snapshotRows) await snapshotRowsOf(servers);
}

/** The snapshot rows (bench/snapshot/snapshot.ts), etcd and each build alternating as the load rows do. */
async function snapshotRowsOf(servers: Server[]): Promise<void> {
  const results: Record<Server, SnapshotResult[]> = Object.fromEntries(servers.map((s) => [s, []]));
  for (let round = 0; round < snapshotRounds; round++) {
    for (const server of servers.map((_, i) => servers[(i + round) % servers.length]!)) {
      const build = tsBuilds.find((b) => b.label === server);
      const target = build === undefined ? { server: 'etcd' as const } : { server: 'etcd-ts' as const, tsDir: build.dir, env: build.env };
      const r = await measureSnapshot(target, { keys: snapshotKeys, profileDir: '' });
      results[server]!.push(r);
      console.error(roundLine(round, server, r, snapshotKeys));
    }
  }
  console.log(`\n${snapshotReport(results, snapshotKeys).join('\n')}`);
}

async function loadRows(servers: Server[]): Promise<void> {
  if (!existsSync(goload)) {
    console.error(`building goload into ${goload} (Debian golang-go + golang-etcd-server-dev)`);
    execFileSync('bash', [path.join(repoRoot, '../shared/goload/build.sh'), goload], { stdio: 'inherit' });
  }
  const results: Record<Server, Record<string, Result[]>> = Object.fromEntries(servers.map((s) => [s, {}]));
  /** each auth row's load with auth off, on the auth row's member, through authload without credentials */
  const authOffResults: Record<Server, Record<string, Result[]>> = Object.fromEntries(servers.map((s) => [s, {}]));
  const rss: Record<Server, number[]> = Object.fromEntries(servers.map((s) => [s, []]));
  const settledRss: Record<Server, number[]> = Object.fromEntries(servers.map((s) => [s, []]));
  const failover: Record<Server, number[]> = Object.fromEntries(servers.map((s) => [s, []]));
  const perfVerdicts: Partial<Record<Server, string[][]>> = {};
  const pad = Math.max(...servers.map((s) => s.length));
  // The auth rows get a cluster of their own, filled alike: auth stays on once enabled, and
  // each row runs on the same store (same history) as its auth-off row does.
  const offRows = workloads.filter((w) => w.authOff === undefined);
  const authRows = workloads.filter((w) => w.authOff !== undefined);
  for (let round = 0; round < rounds; round++) {
    // Each round starts with the next server, so none always runs first (or last).
    const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
    for (const server of order) {
      for (const rows of [offRows, authRows]) {
        if (rows.length === 0) continue;
        const c = await startCluster(server);
        try {
          execFileSync(goload, ['-endpoints', c.endpoints.join(','), '-op', 'fill', '-keys', '1000']);
          if (warmup !== '0s') execFileSync(goload, ['-endpoints', c.endpoints.join(','), '-op', 'put', '-clients', '64', '-conns', '8', '-duration', warmup]);
          const report = (name: string, r: Result) =>
            console.error(
              `round ${round} ${server.padEnd(pad)} ${name.padEnd(nameWidth)} ${r.ops_per_s.toFixed(0)} ops/s p50 ${r.p50_ms.toFixed(2)} p99 ${r.p99_ms.toFixed(2)} ms cpu ${r.cpu_us_per_op.toFixed(0)} µs/op` +
                `${members > 1 ? ` (leader ${r.leader_cpu_us_per_op.toFixed(0)}, its main thread preempted ${r.leader_preempted_per_op.toFixed(1)}/op, waited ${r.leader_waited_us_per_op.toFixed(0)} µs/op for a core)` : ''} errors ${r.errors}`,
            );
          if (rows === offRows) {
            for (const w of rows) {
              const r = await load(c, w, 'goload');
              (results[server]![w.name] ??= []).push(r);
              report(w.name, r);
            }
          } else {
            // auth off then on in even rounds, on then off in odd ones: neither side always
            // runs on the member that has served longer
            for (const on of round % 2 === 0 ? [false, true] : [true, false]) {
              if (on) enableAuth(c.endpoints);
              else if (round % 2 === 1) disableAuth(c.endpoints);
              for (const w of rows) {
                const r = await load(c, w, on ? 'authload as user' : 'authload without credentials');
                ((on ? results : authOffResults)[server]![w.name] ??= []).push(r);
                report(on ? w.name : `${w.name} (off)`, r);
              }
            }
          }
          rss[server]!.push(Math.max(...c.procs.map((p) => rssMb(p.pid!))));
          if (settleSeconds > 0) {
            await new Promise((r) => setTimeout(r, settleSeconds * 1000));
            settledRss[server]!.push(Math.max(...c.procs.map((p) => rssMb(p.pid!))));
          }
          await memoryReport(c, server);
          if (rows === authRows) continue;
          if (checkPerf) (perfVerdicts[server] ??= []).push(runCheckPerf(c));
          if (members > 1) {
            failover[server]!.push(failoverMs(c));
            console.error(`round ${round} ${server.padEnd(pad)} failover ${failover[server]!.at(-1)!.toFixed(0)} ms`);
          }
        } finally {
          await stopCluster(c);
        }
      }
    }
  }
  const median = (xs: number[]): number => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  console.log(`\n${members} member(s), ${rounds} rounds of ${duration}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('medians; ratio: the median of the per-round ratios to etcd (throughput; CPU per op: etcd\'s over the server\'s, so higher is better for both)');
  const leaderColumns = members > 1 ? '  leader µs/op  ratio' : '';
  console.log(`${'workload'.padEnd(nameWidth)} ${'server'.padEnd(pad)}  ${'ops/s'.padStart(8)}  ratio  ${'p50'.padStart(9)}  ${'p99'.padStart(9)}  cpu µs/op  ratio${leaderColumns}`);
  for (const w of workloads) {
    const e = results.etcd![w.name]!;
    for (const server of servers) {
      const t = results[server]![w.name]!;
      const ratio = server === 'etcd' ? '' : median(t.map((r, i) => r.ops_per_s / e[i]!.ops_per_s)).toFixed(2);
      const cpuRatio = server === 'etcd' ? '' : median(t.map((r, i) => e[i]!.cpu_us_per_op / r.cpu_us_per_op)).toFixed(2);
      const leaderRatio = server === 'etcd' ? '' : median(t.map((r, i) => e[i]!.leader_cpu_us_per_op / r.leader_cpu_us_per_op)).toFixed(2);
      const leader = members > 1 ? `  ${median(t.map((r) => r.leader_cpu_us_per_op)).toFixed(0).padStart(12)}  ${leaderRatio.padStart(5)}` : '';
      console.log(
        `${w.name.padEnd(nameWidth)} ${server.padEnd(pad)}  ${median(t.map((r) => r.ops_per_s)).toFixed(0).padStart(8)}  ${ratio.padStart(5)}  ${median(t.map((r) => r.p50_ms)).toFixed(2).padStart(7)}ms  ${median(t.map((r) => r.p99_ms)).toFixed(2).padStart(7)}ms` +
          `  ${median(t.map((r) => r.cpu_us_per_op)).toFixed(0).padStart(9)}  ${cpuRatio.padStart(5)}${leader}`,
      );
    }
  }
  // throughput on over off, and CPU per op off over on: below 1 means auth costs
  const onOff = (on: Result[], off: Result[]) => ({
    ops: on.map((r, i) => r.ops_per_s / off[i]!.ops_per_s),
    cpu: on.map((r, i) => off[i]!.cpu_us_per_op / r.cpu_us_per_op),
  });
  for (const w of workloads) {
    if (w.authOff === undefined) continue;
    console.log(`${w.name}: auth on / auth off on the same member through the same client (authload; without credentials when off), median, then each round (cpu: CPU per op off / on):`);
    for (const s of servers) {
      const r = onOff(results[s]![w.name]!, authOffResults[s]![w.name]!);
      const rounds = r.ops.map((x, i) => `${x.toFixed(2)} (${r.cpu[i]!.toFixed(2)})`).join(' ');
      console.log(`  ${s.padEnd(pad)} ${median(r.ops).toFixed(2)} (cpu ${median(r.cpu).toFixed(2)})   rounds: ${rounds}`);
    }
    const goloadOff = results.etcd![w.authOff];
    if (goloadOff === undefined) continue;
    const vsGoload = servers.map((s) => {
      const r = onOff(results[s]![w.name]!, results[s]![w.authOff!]!);
      return `${s} ${median(r.ops).toFixed(2)} (cpu ${median(r.cpu).toFixed(2)})`;
    });
    console.log(`  over the "${w.authOff}" row instead (goload, another member): ${vsGoload.join(', ')}`);
  }
  console.log(`RSS after load (max member, median): ${servers.map((s) => `${s} ${median(rss[s]!).toFixed(0)} MB`).join(', ')}`);
  if (settleSeconds > 0) {
    console.log(`RSS ${settleSeconds} s after the load (max member, median): ${servers.map((s) => `${s} ${median(settledRss[s]!).toFixed(0)} MB`).join(', ')}`);
  }
  for (const server of servers) {
    for (const [round, lines] of (perfVerdicts[server] ?? []).entries()) console.log(`check perf, ${server}, round ${round}: ${lines.join('; ')}`);
  }
  if (members > 1) {
    console.log(`failover (kill -9 of the leader to the next acknowledged write, median): ${servers.map((s) => `${s} ${median(failover[s]!).toFixed(0)} ms`).join(', ')}`);
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
