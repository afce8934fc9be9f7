// Where one `etcdctl snapshot save` spends its time: one member filled with N keys × 256 B
// (snapshot.ts's fill), then several saves in a row, each with the member's CPU per
// thread (/proc/PID/task/*/stat, sampled every 50 ms) split at the moment the member logs
// "sending database snapshot to client" (etcd-ts: its bbolt file is written then; what
// follows is the stream), and etcdctl's own CPU (/usr/bin/time) and log ("fetched snapshot").
//
//   npx tsx bench/snapshot/split.ts [--keys 300000] [--saves 2] [--server etcd-ts|etcd] [--ts DIR]
//       [--restart] [--cpu-prof DIR] [--keep DIR] [--write-first] [--load 10s]
//
// --restart stops the member cleanly after the fill and starts it again before the saves.
// --cpu-prof DIR (etcd-ts, implies --restart) runs the member under `node --cpu-prof` for
// the saves and prints the self time of the saves' window. --keep DIR fills a data dir at
// DIR once and starts every later run on a copy of it (DIR/<server>, one per server), so
// builds can be compared on the same store without filling it again. --write-first puts
// one 2 KiB value before the saves: etcd-ts then builds its bbolt file on disk before it
// sends a byte (a record above a quarter page does not fit the streamed layout), and its
// log gives the two phases apart ("written-in": the build; "sent-in": the stream alone).
// --load 10s times no save: goload (--goload, default /tmp/goload) puts at one client for
// that long while saves run back to back, and its rate and latency are printed.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readProfile, selfTime } from '../cpu-profile.js';
import { freePort } from '../free-port.js';
import { arg, call, Clients, type Server, shutDownMember, startMember, stopMember } from '../member.js';
import { threadCpu } from '../thread-cpu.js';
import { fill } from './snapshot.js';

const keys = Number(arg('keys', '300000'));
const saves = Number(arg('saves', '2'));
const server = arg('server', 'etcd-ts') as Server;
const tsDir = arg('ts', '');
const profileDir = arg('cpu-prof', '');
const keep = arg('keep', '');
const writeFirst = process.argv.includes('--write-first');
const restart = process.argv.includes('--restart') || profileDir !== '';
const load = arg('load', '');
const goload = arg('goload', '/tmp/goload');

type ThreadCpu = Map<string, number>;

function diff(a: ThreadCpu, b: ThreadCpu): string {
  const rows = [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0.005);
  const total = rows.reduce((n, [, v]) => n + v, 0);
  return `${total.toFixed(2)} s [${rows.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}]`;
}

function etcdctlSave(addr: string, file: string): Promise<{ user: number; sys: number; log: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', 'TIME %U %S', 'etcdctl', '--endpoints', addr, '--command-timeout=600s', 'snapshot', 'save', file], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    p.stdout.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr.on('data', (d: Buffer) => (log += d.toString()));
    p.on('exit', (code) => {
      const m = /TIME ([\d.]+) ([\d.]+)/.exec(log);
      if (code !== 0 || !m) reject(new Error(`etcdctl exited ${code}: ${log}`));
      else resolve({ user: Number(m[1]), sys: Number(m[2]), log });
    });
  });
}

/**
 * --load: goload's puts at one client for `load` while saves run back to back; the
 * member's answer to its clients while it sends a backup.
 */
async function putsDuringSaves(addr: string, dir: string): Promise<void> {
  let saving = true;
  let saved = 0;
  const saves = (async () => {
    for (; saving; saved++) await etcdctlSave(addr, path.join(dir, 'backup-load.db'));
  })();
  try {
    // not execFileSync: the saves' etcdctl processes are awaited meanwhile
    const { stdout: out } = await promisify(execFile)(goload, ['-endpoints', addr, '-op', 'put', '-clients', '1', '-duration', load]);
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { ops_per_s: number; p50_ms: number; p99_ms: number };
    console.log(`puts at 1 client during saves: ${r.ops_per_s.toFixed(0)}/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms`);
  } finally {
    saving = false;
    await saves;
  }
  console.log(`  saves completed meanwhile: ${saved}`);
}

async function main(): Promise<void> {
  const opts = { dirPrefix: '.bench-split-', readySeconds: 600, args: ['--log-level', 'info'], ...(tsDir ? { tsDir: path.resolve(tsDir) } : {}) };
  const logFile = `/tmp/split-${process.pid}.log`;
  const kept = keep === '' ? '' : path.resolve(keep, server);
  if (profileDir !== '') mkdirSync(profileDir, { recursive: true });
  const nodeArgs = profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', mkdtempSync(path.join(path.resolve(profileDir), 'split-'))];
  let m = await startMember(server, { ...opts, logFile, ...(kept !== '' && existsSync(kept) ? { place: await copyOf(kept) } : {}) });
  try {
    if (kept === '' || !existsSync(kept)) {
      const c = new Clients(m.addr);
      try {
        await fill(c, keys);
      } finally {
        c.close();
      }
      if (kept !== '') {
        await shutDownMember(m);
        mkdirSync(path.dirname(kept), { recursive: true });
        execFileSync('cp', ['-a', m.place.dataDir, kept]);
        m = await startMember(server, { ...opts, place: m.place, logFile });
      }
    }
    if (restart) {
      await shutDownMember(m);
      m = await startMember(server, { ...opts, place: m.place, logFile, nodeArgs });
    }
    if (writeFirst) {
      const c = new Clients(m.addr, 1);
      try {
        await call(c.kv[0]!, 'Put', { key: Buffer.from('split-write-first'), value: Buffer.alloc(2048, 1) });
      } finally {
        c.close();
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
    if (load !== '') return await putsDuringSaves(m.addr, m.dir);
    const pid = m.proc.pid!;
    const savesStarted = performance.now();
    for (let i = 0; i < saves; i++) {
      const file = path.join(m.dir, `backup-${i}.db`);
      const samples: Array<{ t: number; cpu: ThreadCpu }> = [];
      const sample = () => samples.push({ t: Date.now(), cpu: threadCpu(pid) });
      sample();
      const timer = setInterval(sample, 50);
      const t0 = Date.now();
      const ctl = await etcdctlSave(m.addr, file);
      clearInterval(timer);
      sample();
      const wall = (Date.now() - t0) / 1000;
      const size = statSync(file).size;
      rmSync(file);
      // the split: the member's "sending" line (etcd-ts; etcd's comes as its stream starts)
      let split: number | undefined;
      {
        const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('sending database snapshot to client'));
        const last = lines.at(-1);
        try {
          if (last !== undefined) split = Date.parse((JSON.parse(last) as { ts: string }).ts);
        } catch {
          // etcd's own log lines are not JSON
        }
      }
      const took = /"fetched snapshot".*?"took":\s*"([^"]+)"/.exec(ctl.log)?.[1];
      const first = samples[0]!;
      const last = samples.at(-1)!;
      const mid = split === undefined ? undefined : samples.find((s) => s.t >= split);
      console.log(`save ${i}: ${wall.toFixed(2)} s wall, ${(size / 1e6).toFixed(1)} MB, ${((keys * 256) / 1e6 / wall).toFixed(1)} MB/s of values; etcdctl CPU ${(ctl.user + ctl.sys).toFixed(2)} s (user ${ctl.user}, sys ${ctl.sys}), its "took" ${took}`);
      if (mid !== undefined) {
        console.log(`  build ${((mid.t - first.t) / 1000).toFixed(2)} s wall, member CPU ${diff(first.cpu, mid.cpu)}`);
        console.log(`  stream ${((last.t - mid.t) / 1000).toFixed(2)} s wall, member CPU ${diff(mid.cpu, last.cpu)}`);
      } else console.log(`  member CPU ${diff(first.cpu, last.cpu)}`);
    }
    const savesEnded = performance.now();
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('database snapshot'));
    for (const l of lines) console.log(`  log: ${l.slice(0, 300)}`);
    if (nodeArgs.length > 0) {
      await shutDownMember(m);
      const exited = performance.now();
      const { file, profile } = readProfile(nodeArgs[2]!);
      const { busySeconds, rows } = selfTime(profile, { fromEnd: (exited - savesStarted) / 1000, toEnd: (exited - savesEnded) / 1000 });
      console.log(`saves: main thread ${busySeconds.toFixed(2)} s busy (${file}); self time, share of busy samples:`);
      for (const r of rows.slice(0, 25)) console.log(`${(r.share * 100).toFixed(1).padStart(5)} %  ${r.name}`);
    }
  } finally {
    // a clean stop first: a member run with ETCDTS_PROBE writes its marks as it exits
    await shutDownMember(m);
    await stopMember(m);
    rmSync(logFile, { force: true });
  }
}

/** A copy of the kept data dir `src`, in a new bench dir with its own ports. */
async function copyOf(src: string): Promise<{ dir: string; dataDir: string; client: number; peer: number }> {
  const dir = mkdtempSync(path.join(process.cwd(), '.bench-split-'));
  const dataDir = path.join(dir, 'm0');
  execFileSync('cp', ['-a', src, dataDir]);
  return { dir, dataDir, client: await freePort(), peer: await freePort() };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
