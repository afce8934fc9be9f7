// The timeline of one put at one client on an etcd-ts leader (issues 19 and 20): starts a
// three-member cluster whose first member is etcd-ts and leads (the others real etcd 3.4.23,
// or etcd-ts with --pure), runs goload put at one client, and reads the leader's probe
// (ETCDTS_PROBE, src/server/probe.ts): for each put, when each step happened after the
// request was decoded (or, --via followers, after the follower's MsgProp was read), median
// and p90 over the run, the median over the slowest 1% of puts (where a tail comes from),
// the share of puts the leader's main thread paused for GC in, and how many Readies, peer
// writes and reads each put cost. Beside it the leader's CPU and main-thread switches per
// put from /proc.
//
//   npx tsx bench/server/put-timeline.ts -- [--duration 5s] [--via leader|followers] [--pure]
//       [--ts DIR] [--strace FILE] [--etcd-strace FILE] [--no-etcd] [--keep-probe FILE] [--goload /tmp/goload]
//
// --keep-probe FILE keeps the probe's marks (every step of every put, as the member wrote them).
// Then the same load on a pure etcd cluster's leader, for its ops/s and CPU per put (unless
// --no-etcd). --strace FILE attaches `strace -f -tt` to the etcd-ts leader for the load
// (write, writev, sendmsg, pwrite64, fdatasync, read, epoll waits, futex) and leaves its
// output in FILE; the syscalls per put are printed (and no timeline: strace slows the
// member down). --etcd-strace FILE does the same on the etcd leader.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';
import { leaderIndex, moveLeaderTo } from './leader.js';
import { type Peers, straceTimeline } from './strace-timeline.js';

/** the checkout, whether this runs from bench/ (tsx) or from tsc's dist/bench/ */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..').replace(/\/dist$/, '');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const duration = arg('duration', '5s');
const via = arg('via', 'leader');
const pure = process.argv.includes('--pure');
const tsDir = path.resolve(arg('ts', repoRoot));
const goload = arg('goload', '/tmp/goload');
const straceFile = arg('strace', '');
const etcdStraceFile = arg('etcd-strace', '');
const keepProbe = arg('keep-probe', '');
const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

interface Cluster {
  procs: ChildProcess[];
  endpoints: string[];
  peerPorts: number[];
  dir: string;
  leader: number;
}

async function startCluster(kind: 'ts' | 'etcd', probeFile: string): Promise<Cluster> {
  const dir = mkdtempSync(path.join(repoRoot, '.bench-'));
  const names = ['m0', 'm1', 'm2'];
  const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const procs = names.map((name, i) => {
    const args = [
      '--name', name, '--data-dir', path.join(dir, name),
      '--listen-client-urls', `http://127.0.0.1:${ports[i]!.client}`, '--advertise-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`,
      '--initial-cluster', initialCluster, '--log-level', 'warn',
    ];
    if (kind === 'etcd' || (i > 0 && !pure)) return spawn('etcd', args, { stdio: 'ignore' });
    const env = { ...process.env, ...(i === 0 ? { ETCDTS_PROBE: probeFile } : {}) };
    return spawn(path.join(tsDir, 'bin/etcd-ts'), args, { stdio: 'ignore', env });
  });
  const c: Cluster = { procs, endpoints: ports.map((p) => `127.0.0.1:${p.client}`), peerPorts: ports.map((p) => p.peer), dir, leader: 0 };
  try {
    for (const deadline = Date.now() + 60_000; ; ) {
      try {
        execFileSync('etcdctl', ['--endpoints', c.endpoints.join(','), 'endpoint', 'health'], { stdio: 'ignore' });
        break;
      } catch {
        if (Date.now() > deadline || procs.some((p) => p.exitCode !== null)) throw new Error(`${kind} cluster did not become healthy`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    if (kind === 'ts') moveLeaderTo(c.endpoints, 0);
    else c.leader = leaderIndex(c.endpoints);
    return c;
  } catch (err) {
    await stopCluster(c);
    throw err;
  }
}

async function stopCluster(c: Cluster): Promise<void> {
  // SIGTERM: the etcd-ts member writes its probe's file as it exits
  for (const p of c.procs) p.kill('SIGTERM');
  await Promise.all(c.procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.on('exit', r)))));
  rmSync(c.dir, { recursive: true, force: true });
}

function procCounters(pid: number): { cpuS: number; preempted: number; voluntary: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const n = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { cpuS: (Number(fields[11]) + Number(fields[12])) / ticks, preempted: n('nonvoluntary_ctxt_switches'), voluntary: n('voluntary_ctxt_switches') };
}

interface LoadResult {
  ops: number;
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
  fromMs: number;
  toMs: number;
  peers: Peers | undefined;
  cpuUsPerOp: number;
  preemptedPerOp: number;
  voluntaryPerOp: number;
}

/** Who is at the other end of each of the leader's peer connections (`ss -tnp`: the local port of each member's sockets). */
function peersOf(c: Cluster): Peers {
  const name = (i: number): string => `m${i}`;
  const byPeerPort = new Map(c.peerPorts.flatMap((p, i) => (i === c.leader ? [] : [[p, name(i)] as [number, string]])));
  const byDialPort = new Map<number, string>();
  for (const line of execFileSync('ss', ['-tnpH']).toString().split('\n')) {
    const m = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)\s+users:\(\(".*?",pid=(\d+)/.exec(line);
    if (!m || Number(m[2]) !== c.peerPorts[c.leader]) continue;
    const i = c.procs.findIndex((p) => p.pid === Number(m[3]));
    if (i >= 0 && i !== c.leader) byDialPort.set(Number(m[1]), name(i));
  }
  return { leaderPeerPort: c.peerPorts[c.leader]!, byPeerPort, byDialPort };
}

/** goload put at one client on `endpoints`, the leader's /proc counters around it, optionally under strace. */
async function runLoad(c: Cluster, endpoints: string[], strace: string): Promise<LoadResult> {
  execFileSync(goload, ['-endpoints', c.endpoints.join(','), '-op', 'fill', '-keys', '1000']);
  const pid = c.procs[c.leader]!.pid!;
  let tracer: ChildProcess | undefined;
  if (strace) {
    tracer = spawn('strace', ['-f', '-ttt', '-yy', '-e', 'trace=write,writev,sendmsg,sendto,pwrite64,fdatasync,fsync,read,recvfrom,epoll_wait,epoll_pwait,futex', '-o', strace, '-p', String(pid)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
  }
  const before = procCounters(pid);
  const fromMs = Date.now();
  const out = execFileSync(goload, ['-endpoints', endpoints.join(','), '-op', 'put', '-clients', '1', '-conns', '1', '-duration', duration]).toString();
  const toMs = Date.now();
  const peers = strace ? peersOf(c) : undefined;
  const after = procCounters(pid);
  if (tracer) {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.on('exit', r));
  }
  const r = JSON.parse(out.trim().split('\n').pop()!) as { ops: number; ops_per_s: number; p50_ms: number; p99_ms: number };
  return {
    ...r,
    peers,
    fromMs,
    toMs,
    cpuUsPerOp: ((after.cpuS - before.cpuS) * 1e6) / r.ops,
    preemptedPerOp: (after.preempted - before.preempted) / r.ops,
    voluntaryPerOp: (after.voluntary - before.voluntary) / r.ops,
  };
}

// ---------------------------------------------------------------- the probe's marks

interface Mark {
  ms: number;
  step: string;
  detail: string;
}

/** The marks in [fromMs, toMs] of the wall clock, in time order (a GC pause is written after it, at its start). */
function readMarks(file: string, fromMs: number, toMs: number): Mark[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const epoch = Number(/# start-epoch-ms (\d+)/.exec(lines[0]!)![1]);
  const marks: Mark[] = [];
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const [ns, step, detail] = line.split(' ');
    const ms = Number(ns) / 1e6;
    if (epoch + ms >= fromMs && epoch + ms <= toMs) marks.push({ ms, step: step!, detail: detail ?? '' });
  }
  return marks.sort((a, b) => a.ms - b.ms);
}

/** `entry`: the put's raft index (its commit mark's), which tells its acknowledgements from earlier ones */
type Pred = (m: Mark, seen: Map<string, Mark>, entry: number) => boolean;

/** A MsgAppResp mark's sender and the index it acknowledges (NaN in a probe that did not note it). */
function ack(m: Mark): { from: string; index: number } {
  const [, from, index] = m.detail.split(':');
  return { from: from ?? '', index: Number(index) };
}

/** This put's acknowledgement: a MsgAppResp of an index at or past its entry (not the previous commit's). */
const isAck = (m: Mark, entry: number): boolean => m.step === 'peer-read' && m.detail.startsWith('MsgAppResp') && !(ack(m).index < entry);

/** The steps of one put, in the order looked for: each is the first mark after the previous step's that matches. */
const leaderSteps: Array<[string, Pred]> = [
  ['proposal stepped into raft', (m) => m.step === 'proposed'],
  ['Ready with the entry', (m) => m.step === 'ready' && !m.detail.startsWith('0e')],
  ['MsgApp written, 1st follower', (m) => m.step === 'peer-write' && m.detail.startsWith('msgappv2')],
  ['MsgApp written, 2nd follower', (m, seen) => m.step === 'peer-write' && m.detail.startsWith('msgappv2') && m.detail !== seen.get('MsgApp written, 1st follower')?.detail],
  ['WAL write issued', (m) => m.step === 'wal-save' && m.detail !== '0'],
  ['WAL write durable', (m) => m.step === 'wal-saved' && m.detail !== '0'],
  ['MsgAppResp read, 1st', (m, _, entry) => isAck(m, entry)],
  ['MsgAppResp read, 2nd', (m, seen, entry) => isAck(m, entry) && ack(m).from !== ack(seen.get('MsgAppResp read, 1st') ?? m).from],
  ['commit index advanced', (m) => m.step === 'commit'],
  ['committed entry handed to apply', (m) => m.step === 'apply'],
  ['commit written to a follower', (m) => m.step === 'peer-write'],
  ['applied, waiter answered', (m) => m.step === 'applied'],
  ['response written to the client', (m) => m.step === 'client-write'],
];

/** One put: when each step happened after its start (ms), and the main thread's GC pauses in it. */
interface PutSteps {
  at: Map<string, number>;
  /** ms of garbage collection that began between the put's start and its last step */
  gcMs: number;
}

/** The steps are looked for independently of each other's order (the 2nd MsgAppResp may come after the WAL, or before). */
function timeline(marks: Mark[], isStart: (m: Mark) => boolean, steps: Array<[string, Pred]>): { puts: PutSteps[]; counts: Map<string, number> } {
  const starts: number[] = [];
  marks.forEach((m, i) => isStart(m) && starts.push(i));
  const counts = new Map<string, number>();
  const puts: PutSteps[] = [];
  for (let k = 0; k + 1 < starts.length; k++) {
    const window = marks.slice(starts[k], starts[k + 1]);
    const t0 = window[0]!.ms;
    const seen = new Map<string, Mark>();
    const at = new Map<string, number>();
    // steps that follow the commit are looked for after it; the rest from the start
    const commitAt = window.findIndex((m) => m.step === 'commit');
    const entry = commitAt < 0 ? NaN : Number(window[commitAt]!.detail);
    for (const [name, pred] of steps) {
      const from = ['committed entry handed to apply', 'commit written to a follower', 'applied, waiter answered', 'response written to the client'].includes(name) ? Math.max(commitAt, 0) : 0;
      const m = window.slice(from).find((x) => pred(x, seen, entry));
      if (m === undefined) continue;
      seen.set(name, m);
      at.set(name, m.ms - t0);
    }
    if (commitAt < 0) continue;
    const last = Math.max(...at.values());
    const gcMs = window.filter((m) => m.step === 'gc' && m.ms - t0 <= last).reduce((n, m) => n + parseFloat(m.detail), 0);
    puts.push({ at, gcMs });
    for (const m of window) {
      const key = m.step === 'peer-write' || m.step === 'peer-read' ? `${m.step} ${m.detail.split(':')[0]}` : m.step;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return { puts, counts };
}

/**
 * What the leader's own WAL write costs the puts: a commit waits for it and for the first
 * follower's acknowledgement, so where the write is durable after that ack, the put waits
 * the difference.
 */
function ownWriteCost(puts: PutSteps[]): string {
  let n = 0;
  let later = 0;
  let waited = 0;
  let total = 0;
  for (const p of puts) {
    const own = p.at.get('WAL write durable');
    const first = p.at.get('MsgAppResp read, 1st');
    const end = p.at.get('response written to the client');
    if (own === undefined || first === undefined || end === undefined) continue;
    n++;
    total += end;
    if (own > first) {
      later++;
      waited += own - first;
    }
  }
  if (n === 0) return 'the own WAL write against the first ack: no put had both';
  return `the leader's own WAL write was durable after the first follower's ack in ${((100 * later) / n).toFixed(0)}% of puts, adding ${(waited / n).toFixed(3)} ms to a mean put of ${(total / n).toFixed(3)} ms`;
}

/** The slowest hundredth of `puts` by their last step. */
function slowest(puts: PutSteps[]): PutSteps[] {
  const sorted = [...puts].sort((a, b) => Math.max(...a.at.values()) - Math.max(...b.at.values()));
  return sorted.slice(Math.floor(sorted.length * 0.99));
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function straceSummary(file: string, ops: number): string {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\d+\s+[\d:.]+\s+(\w+)\(/.exec(line);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${(n / ops).toFixed(1)}`).join(', ');
}

async function main(): Promise<void> {
  const probeDir = mkdtempSync(path.join(os.tmpdir(), 'put-timeline-'));
  const probeFile = path.join(probeDir, 'probe.txt');
  try {
    const c = await startCluster('ts', probeFile);
    let r: LoadResult;
    try {
      const endpoints = via === 'followers' ? c.endpoints.slice(1) : via === 'follower' ? [c.endpoints[1]!] : [c.endpoints[0]!];
      r = await runLoad(c, endpoints, straceFile);
    } finally {
      await stopCluster(c);
    }
    const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    console.log(`etcd-ts leading ${pure ? '2 etcd-ts' : '2 etcd'}, put c=1 via ${via}: ${r.ops_per_s.toFixed(0)} ops/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms; leader ${r.cpuUsPerOp.toFixed(0)} µs CPU/put, main thread preempted ${r.preemptedPerOp.toFixed(1)} / yielded ${r.voluntaryPerOp.toFixed(1)} times per put; load ${load}`);
    if (straceFile) console.log(`leader syscalls per put (strace, its overhead included): ${straceSummary(straceFile, r.ops)}`);
    if (straceFile && via !== 'leader') for (const line of straceTimeline(straceFile, r.peers!, r.fromMs, r.toMs)) console.log(line);
    if (keepProbe) copyFileSync(probeFile, keepProbe);
    if (straceFile === '') {
      const marks = readMarks(probeFile, r.fromMs, r.toMs);
      const isStart = via !== 'leader' ? (m: Mark) => m.step === 'peer-read' && m.detail.startsWith('MsgProp') : (m: Mark) => m.step === 'put-decoded';
      const steps = via !== 'leader' ? leaderSteps.filter(([n]) => !['proposal stepped into raft', 'applied, waiter answered', 'response written to the client'].includes(n)) : leaderSteps;
      const { puts, counts } = timeline(marks, isStart, steps);
      const slow = slowest(puts);
      const column = (ps: PutSteps[], name: string) => ps.flatMap((p) => (p.at.has(name) ? [p.at.get(name)!] : []));
      console.log(`${puts.length} puts; ms after ${via !== 'leader' ? "the follower's MsgProp was read" : 'the request was decoded'} (the slowest 1%: ${slow.length} puts):`);
      console.log('step                                 p50      p90   (puts seen)   p50 of the slowest 1%');
      for (const [name] of steps) {
        const xs = column(puts, name);
        console.log(`${name.padEnd(34)} ${quantile(xs, 0.5).toFixed(3).padStart(7)}  ${quantile(xs, 0.9).toFixed(3).padStart(7)}   (${xs.length})`.padEnd(64) + quantile(column(slow, name), 0.5).toFixed(3).padStart(7));
      }
      const withGc = (ps: PutSteps[]) => `${((100 * ps.filter((p) => p.gcMs > 0).length) / ps.length).toFixed(1)}%`;
      console.log(`puts during which the leader's main thread paused for GC: ${withGc(puts)} of all, ${withGc(slow)} of the slowest 1%`);
      console.log(ownWriteCost(puts));
      console.log(`per put: ${[...counts].map(([k, n]) => `${k} ${(n / puts.length).toFixed(2)}`).join(', ')}`);
    }
    if (!process.argv.includes('--no-etcd')) {
      const e = await startCluster('etcd', '');
      try {
        const followers = e.endpoints.filter((_, i) => i !== e.leader);
        const er = await runLoad(e, via === 'followers' ? followers : via === 'follower' ? [followers[0]!] : [e.endpoints[e.leader]!], etcdStraceFile);
        const syscalls = etcdStraceFile ? `; syscalls per put: ${straceSummary(etcdStraceFile, er.ops)}` : '';
        if (etcdStraceFile && via !== 'leader') for (const line of straceTimeline(etcdStraceFile, er.peers!, er.fromMs, er.toMs)) console.log(line);
        console.log(`etcd leading 2 etcd, put c=1 via ${via}: ${er.ops_per_s.toFixed(0)} ops/s, p50 ${er.p50_ms.toFixed(2)} ms, p99 ${er.p99_ms.toFixed(2)} ms; leader ${er.cpuUsPerOp.toFixed(0)} µs CPU/put${syscalls}`);
      } finally {
        await stopCluster(e);
      }
    }
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
