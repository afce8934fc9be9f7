// CPU seconds (user + system, from /proc) a member spends from spawn to "ready to serve
// client requests", and while idle, beside real etcd 3.4.23 in the same run, servers
// alternating in every round. Three measures:
//   fresh    a first start on an empty data dir
//   restart  a start on a copy of a data dir holding --keys keys (written once per server)
//   idle     CPU per minute of a one-member cluster doing nothing, from 2 s after ready
// --baseline DIR adds another built etcd-ts checkout (e.g. `git archive` of an older
// commit, `npx tsc` run in it, node_modules linked) as a third server: before/after.
//
//   npx tsx bench/first-start/cpu.ts [--rounds 5] [--keys 10000] [--idle-rounds 2] [--idle-seconds 30] [--baseline DIR]

import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { freePort } from '../free-port.js';
import { Clients, type Server, arg, call, cpuSeconds, pool, repoRoot, shutDownMember, startMember } from '../member.js';

interface Subject {
  label: string;
  server: Server;
  /** etcd-ts only: the built checkout */
  tsDir?: string;
}

const rounds = Number(arg('rounds', '5'));
const keys = Number(arg('keys', '10000'));
const idleRounds = Number(arg('idle-rounds', '2'));
const idleSeconds = Number(arg('idle-seconds', '30'));
const baseline = arg('baseline', '');

const subjects: Subject[] = [
  { label: 'etcd 3.4.23', server: 'etcd' },
  { label: 'etcd-ts', server: 'etcd-ts', tsDir: repoRoot },
  ...(baseline === '' ? [] : [{ label: `etcd-ts (${path.basename(baseline)})`, server: 'etcd-ts' as const, tsDir: path.resolve(baseline) }]),
];

const READY = 'ready to serve client requests';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load1 = () => loadavg()[0]!;

interface Started {
  proc: ChildProcess;
  /** the member's CPU seconds when its ready line came out */
  cpuAtReady: number;
  exited: Promise<void>;
}

/** Starts a one-member cluster named m0 on `dataDir` and resolves when it logs that it is ready. */
async function startToReady(s: Subject, dataDir: string): Promise<Started> {
  const client = await freePort();
  const peer = await freePort();
  const args = [
    '--name', 'm0',
    '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `m0=http://127.0.0.1:${peer}`,
  ];
  const proc = s.server === 'etcd' ? spawn('etcd', args) : spawn(path.join(s.tsDir!, 'bin/etcd-ts'), args);
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      if (out.includes(READY)) return;
      out += d.toString();
      // read at once, before the member does anything else
      if (out.includes(READY)) resolve({ proc, cpuAtReady: cpuSeconds(proc.pid!), exited });
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`${s.label} exited before ready:\n${out.slice(-3000)}`)));
  });
}

async function stop(st: Started): Promise<void> {
  st.proc.kill('SIGKILL');
  await st.exited;
}

/** A data dir holding `keys` keys of 100 bytes, written through the server itself and shut down cleanly. */
async function seededDataDir(s: Subject): Promise<{ dir: string; dataDir: string }> {
  const m = await startMember(s.server, { ...(s.tsDir === undefined ? {} : { tsDir: s.tsDir }), readySeconds: 120 });
  const clients = new Clients(m.addr);
  const value = Buffer.alloc(100, 'v');
  await pool(keys, 64, (i) => call(clients.kv[i % clients.kv.length]!, 'Put', { key: Buffer.from(`key-${String(i).padStart(8, '0')}`), value }));
  clients.close();
  await shutDownMember(m);
  return { dir: m.dir, dataDir: m.place.dataDir };
}

type Measure = 'fresh' | 'restart' | 'idle';
const results = new Map<string, { cpu: number[]; load: number[] }>();
function record(s: Subject, what: Measure, cpu: number, load: number): void {
  const key = `${s.label}|${what}`;
  const r = results.get(key) ?? { cpu: [], load: [] };
  r.cpu.push(cpu);
  r.load.push(load);
  results.set(key, r);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(repoRoot, '.bench-first-start-'));
  const seeded = new Map<Subject, { dir: string; dataDir: string }>();
  try {
    for (const s of subjects) seeded.set(s, await seededDataDir(s));
    let n = 0;
    for (let r = 0; r < rounds; r++) {
      // a different server goes first each round, so none always starts on a quieter machine
      for (const s of [...subjects.slice(r % subjects.length), ...subjects.slice(0, r % subjects.length)]) {
        const fresh = path.join(scratch, `fresh-${n}`);
        let load = load1();
        let st = await startToReady(s, fresh);
        await stop(st);
        record(s, 'fresh', st.cpuAtReady, load);

        const copy = path.join(scratch, `restart-${n++}`);
        cpSync(seeded.get(s)!.dataDir, copy, { recursive: true });
        load = load1();
        st = await startToReady(s, copy);
        await stop(st);
        record(s, 'restart', st.cpuAtReady, load);
        rmSync(fresh, { recursive: true, force: true });
        rmSync(copy, { recursive: true, force: true });
      }
    }
    for (let r = 0; r < idleRounds; r++) {
      for (const s of subjects) {
        const dataDir = path.join(scratch, `idle-${n++}`);
        const st = await startToReady(s, dataDir);
        await sleep(2000);
        const load = load1();
        const before = cpuSeconds(st.proc.pid!);
        await sleep(idleSeconds * 1000);
        record(s, 'idle', ((cpuSeconds(st.proc.pid!) - before) * 60) / idleSeconds, load);
        await stop(st);
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    for (const { dir } of seeded.values()) rmSync(dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }

  const etcd = subjects[0]!.label;
  console.log(`\n| measure | server | CPU s (median) | ÷ etcd | runs | load avg (1 min) |\n|---|---|---|---|---|---|`);
  const units: Record<Measure, string> = { fresh: 'first start, to ready', restart: `restart with ${keys} keys, to ready`, idle: 'idle, CPU s per minute' };
  for (const what of ['fresh', 'restart', 'idle'] as const) {
    const ref = results.get(`${etcd}|${what}`);
    for (const s of subjects) {
      const r = results.get(`${s.label}|${what}`);
      if (r === undefined || ref === undefined) continue;
      const load = `${Math.min(...r.load).toFixed(0)}–${Math.max(...r.load).toFixed(0)}`;
      console.log(`| ${units[what]} | ${s.label} | ${median(r.cpu).toFixed(2)} | ${(median(r.cpu) / median(ref.cpu)).toFixed(1)}× | ${r.cpu.length} | ${load} |`);
    }
  }
}

await main();
