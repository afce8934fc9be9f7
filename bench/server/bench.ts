// Side-by-side benchmark: real etcd 3.4.23 and etcd-ts, same machine, same disk, same
// load client (goload, etcd's official Go client: it costs the client far less CPU than a
// Node client would), alternating server by server, round by round. Prints ratios.
//
//   npm run bench:server -- [--members 1|3] [--duration 5s] [--rounds 2] [--goload /tmp/goload] [--check-perf]
//
// --check-perf also runs `etcdctl check perf --load=s` (60 s) on each server every round and
// prints its verdicts: they judge latency, so they live here rather than in a test.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';

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

type Server = 'etcd' | 'etcd-ts';

interface Workload {
  name: string;
  op: 'put' | 'get-lin' | 'get-ser';
  clients: number;
}

const workloads: Workload[] =
  members === 1
    ? [
        { name: 'put c=1', op: 'put', clients: 1 },
        { name: 'put c=64', op: 'put', clients: 64 },
        { name: 'get-lin c=64', op: 'get-lin', clients: 64 },
        { name: 'get-ser c=64', op: 'get-ser', clients: 64 },
      ]
    : [
        { name: 'put c=1', op: 'put', clients: 1 },
        { name: 'put c=64', op: 'put', clients: 64 },
        { name: 'put c=256', op: 'put', clients: 256 },
        { name: 'get-lin c=64', op: 'get-lin', clients: 64 },
      ];

interface Result {
  ops_per_s: number;
  p99_ms: number;
  errors: number;
}

interface Cluster {
  procs: ChildProcess[];
  endpoints: string[];
  dir: string;
}

async function startCluster(server: Server): Promise<Cluster> {
  // data on the same disk for both: the working directory's file system
  const dir = mkdtempSync(path.join(repoRoot, '.bench-'));
  const names = Array.from({ length: members }, (_, i) => `m${i}`);
  const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
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
    return server === 'etcd'
      ? spawn('etcd', args, { stdio: 'ignore' })
      : spawn(process.execPath, [path.join(repoRoot, 'bin/etcd-ts'), ...args], { stdio: 'ignore' });
  });
  const endpoints = ports.map((p) => `127.0.0.1:${p.client}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      execFileSync('etcdctl', ['--endpoints', endpoints.join(','), 'endpoint', 'health'], { stdio: 'ignore' });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${server} did not become healthy`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { procs, endpoints, dir };
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

function load(c: Cluster, w: Workload): Result {
  const out = execFileSync(goload, [
    '-endpoints', c.endpoints.join(','),
    '-op', w.op,
    '-clients', String(w.clients),
    '-conns', String(Math.min(8, w.clients)),
    '-duration', duration,
  ]).toString();
  return JSON.parse(out.trim().split('\n').pop()!) as Result;
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

async function main(): Promise<void> {
  if (!existsSync(goload)) {
    console.error(`building goload into ${goload} (Debian golang-go + golang-etcd-server-dev)`);
    execFileSync('bash', [path.join(repoRoot, '../shared/goload/build.sh'), goload], { stdio: 'inherit' });
  }
  const results: Record<Server, Record<string, Result[]>> = { etcd: {}, 'etcd-ts': {} };
  const rss: Record<Server, number[]> = { etcd: [], 'etcd-ts': [] };
  const failover: Record<Server, number[]> = { etcd: [], 'etcd-ts': [] };
  const perfVerdicts: Partial<Record<Server, string[][]>> = {};
  for (let round = 0; round < rounds; round++) {
    const order: Server[] = round % 2 === 0 ? ['etcd', 'etcd-ts'] : ['etcd-ts', 'etcd'];
    for (const server of order) {
      const c = await startCluster(server);
      try {
        execFileSync(goload, ['-endpoints', c.endpoints.join(','), '-op', 'fill', '-keys', '1000']);
        for (const w of workloads) {
          const r = load(c, w);
          (results[server][w.name] ??= []).push(r);
          console.error(`round ${round} ${server.padEnd(7)} ${w.name.padEnd(14)} ${r.ops_per_s.toFixed(0)} ops/s p99 ${r.p99_ms.toFixed(2)} ms errors ${r.errors}`);
        }
        rss[server].push(Math.max(...c.procs.map((p) => rssMb(p.pid!))));
        if (checkPerf) (perfVerdicts[server] ??= []).push(runCheckPerf(c));
        if (members > 1) {
          failover[server].push(failoverMs(c));
          console.error(`round ${round} ${server.padEnd(7)} failover ${failover[server].at(-1)!.toFixed(0)} ms`);
        }
      } finally {
        await stopCluster(c);
      }
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`\n${members} member(s), ${rounds} rounds of ${duration}, ${os.cpus().length} cores`);
  console.log('workload        etcd ops/s  etcd-ts ops/s  ratio   etcd p99  etcd-ts p99');
  for (const w of workloads) {
    const e = results.etcd[w.name]!;
    const t = results['etcd-ts'][w.name]!;
    const eo = mean(e.map((r) => r.ops_per_s));
    const to = mean(t.map((r) => r.ops_per_s));
    console.log(
      `${w.name.padEnd(14)} ${eo.toFixed(0).padStart(10)} ${to.toFixed(0).padStart(14)} ${(to / eo).toFixed(2).padStart(6)} ` +
        `${mean(e.map((r) => r.p99_ms)).toFixed(2).padStart(8)}ms ${mean(t.map((r) => r.p99_ms)).toFixed(2).padStart(9)}ms`,
    );
  }
  console.log(`RSS after load (max member): etcd ${mean(rss.etcd).toFixed(0)} MB, etcd-ts ${mean(rss['etcd-ts']).toFixed(0)} MB`);
  for (const server of ['etcd', 'etcd-ts'] as const) {
    for (const [round, lines] of (perfVerdicts[server] ?? []).entries()) console.log(`check perf, ${server}, round ${round}: ${lines.join('; ')}`);
  }
  if (members > 1) {
    console.log(
      `failover (kill -9 of the leader to the next acknowledged write): etcd ${mean(failover.etcd).toFixed(0)} ms, etcd-ts ${mean(failover['etcd-ts']).toFixed(0)} ms`,
    );
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
