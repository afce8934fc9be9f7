// Restart at scale, beside etcd 3.4.23 in the same run (issue 19): each server is filled
// once with goload's unique keys of 1 KiB values, stopped with SIGTERM, then restarted
// --rounds times on the same data dir, the variants alternating:
//
//   etcd       etcd 3.4.23 (its treeIndex rebuilt from bbolt's key bucket)
//   image      etcd-ts, its key index read from the image its last clean stop saved
//   records    etcd-ts with that image removed first: every record read, as after a crash
//   crashed    etcd-ts with the image and etcd's bbolt file removed first, as a crash after
//              a .snap that removed the file leaves the dir (the file is written again)
//
// For each start: time from spawn to `ready to serve client requests`, the member's CPU
// seconds then (/proc/PID/stat), the key count (must equal the fill's), RSS after a
// settle; for etcd-ts also the time of its phases from its log lines. For each SIGTERM
// stop: its time (etcd-ts exports etcd's bbolt file of the whole store, then saves the
// key index).
//
//   npx tsc -p tsconfig.json && node dist/scripts/bundle.js && npx tsx bench/scale/restart.ts
//       [--keys 500000] [--rounds 2] [--servers etcd,etcd-ts] [--ts DIR] [--settle 3]
//       [--cpu-prof DIR]     etcd-ts's restarts under `node --cpu-prof` (one profile per start, in DIR)

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, Clients, cpuSeconds, type Member, repoRoot, rssMb, type Server, shutDownMember, startMember, stopMember } from '../member.js';
import { countKeys, fillMember, load1, log } from './fill.js';

const servers = arg('servers', 'etcd,etcd-ts').split(',') as Server[];
/** the first server fills to --keys (goload overshoots a little); the others to its count */
let keys = Number(arg('keys', '500000'));
const rounds = Number(arg('rounds', '2'));
const tsDir = arg('ts', repoRoot);
const settleMs = Number(arg('settle', '3')) * 1000;
const cpuProf = arg('cpu-prof', '');
const goload = arg('goload', '/tmp/goload');

/** what each server was filled to: a restart must find exactly that */
const filledKeys = new Map<Server, number>();
const READY = 'ready to serve client requests';
const IMAGE_FILE = 'ETCDTS_KEY_INDEX';

type Variant = 'etcd' | 'image' | 'records' | 'crashed';

interface Start {
  variant: Variant;
  readySeconds: number;
  cpuSeconds: number;
  rssMb: number;
  stopSeconds: number;
  /** etcd-ts: seconds from spawn to each log line that marks a phase */
  phases: Record<string, number>;
  load: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** etcd-ts's log lines that end a phase of its start or stop, by message. */
const PHASE_LINES: Record<string, string> = {
  'restored mvcc store': 'store open',
  'restarting local member': 'WAL read',
  [READY]: 'ready',
  "wrote etcd's bbolt db": 'bbolt export',
  'saved the key index for the next open': 'key index saved',
};

function phasesOf(logFile: string, spawnedAtMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; ts?: string; took?: string; reason?: string };
    const phase = Object.entries(PHASE_LINES).find(([msg]) => l.msg?.startsWith(msg))?.[1];
    const name = phase !== undefined && l.reason !== undefined ? `${phase} at ${l.reason}` : phase;
    if (name === undefined || l.ts === undefined) continue;
    out[name] = (Date.parse(l.ts) - spawnedAtMs) / 1000;
    if (l.took !== undefined) out[`${name} (took)`] = Number.parseInt(l.took, 10) / 1000;
  }
  return out;
}

/** When `file` first holds `text` (polled from before the spawn, so the time is the line's, not the health check's). */
async function waitForLine(file: string, text: string): Promise<number> {
  const deadline = Date.now() + 1_200_000;
  while (Date.now() < deadline) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes(text)) return performance.now();
    await sleep(20);
  }
  throw new Error(`${file}: no "${text}"`);
}

async function restartOnce(server: Server, variant: Variant, m: Member, round: number): Promise<{ m: Member; start: Start }> {
  const logFile = path.join(m.dir, `start-${variant}-${round}.log`);
  if (variant === 'records' || variant === 'crashed') rmSync(path.join(m.place.dataDir, 'member/leveldb', IMAGE_FILE), { force: true });
  if (variant === 'crashed') rmSync(path.join(m.place.dataDir, 'member/snap/db'), { force: true });
  const profDir = cpuProf && server === 'etcd-ts' ? path.join(cpuProf, `${variant}-${round}`) : '';
  if (profDir) mkdirSync(profDir, { recursive: true });
  const spawnedWall = Date.now();
  const spawned = performance.now();
  const ready = waitForLine(logFile, READY);
  const started = startMember(server, {
    tsDir,
    place: m.place,
    logFile,
    readySeconds: 1200,
    args: ['--log-level', 'info'],
    nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  });
  const next = await started;
  const readyAt = await ready;
  const cpu = cpuSeconds(next.proc.pid!);
  const c = new Clients(next.addr);
  const got = await countKeys(c);
  c.close();
  if (got !== filledKeys.get(server)) throw new Error(`${variant}: ${got} keys after the restart, ${filledKeys.get(server)} before`);
  await sleep(settleMs);
  const rss = rssMb(next.proc.pid!);
  const s0 = performance.now();
  await shutDownMember(next);
  const stopSeconds = (performance.now() - s0) / 1000;
  const start: Start = {
    variant,
    readySeconds: (readyAt - spawned) / 1000,
    cpuSeconds: cpu,
    rssMb: rss,
    stopSeconds,
    phases: server === 'etcd-ts' ? phasesOf(logFile, spawnedWall) : {},
    load: load1(),
  };
  log(server, `${variant} #${round}: ready ${start.readySeconds.toFixed(1)} s, ${cpu.toFixed(1)} CPU s, RSS ${rss.toFixed(0)} MB, stop ${stopSeconds.toFixed(1)} s, load ${start.load}${
    Object.keys(start.phases).length ? `; ${Object.entries(start.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}` : ''
  }`);
  return { m: next, start };
}

async function filled(server: Server, target: number): Promise<Member> {
  const m = await startMember(server, { tsDir, dirPrefix: '.bench-restart-', readySeconds: 600, args: ['--quota-backend-bytes', String(8 * 1024 ** 3)] });
  const c = new Clients(m.addr);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'restart-acked-'));
  try {
    const f = await fillMember(m, c, server, target, scratch, { goload, clients: 64, chunkSeconds: 20 });
    if (f.keys < target) throw new Error(`${server}: filled ${f.keys} keys, not ${target}`);
    keys = f.keys;
    filledKeys.set(server, f.keys);
    log(server, `filled: ${f.keys} keys in ${f.seconds.toFixed(0)} s`);
  } catch (err) {
    c.close();
    await stopMember(m);
    throw err;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  c.close();
  const s0 = performance.now();
  await shutDownMember(m);
  log(server, `first stop (SIGTERM) in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
  return m;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  if (!existsSync(goload)) throw new Error(`${goload} missing: bash /work/shared/goload/build.sh ${goload}`);
  const members = new Map<Server, Member>();
  const starts: Start[] = [];
  try {
    for (const s of servers) members.set(s, await filled(s, keys));
    const variants: Array<[Server, Variant]> = [];
    if (members.has('etcd')) variants.push(['etcd', 'etcd']);
    if (members.has('etcd-ts')) variants.push(['etcd-ts', 'image'], ['etcd-ts', 'records'], ['etcd-ts', 'crashed']);
    for (let round = 1; round <= rounds; round++) {
      // alternating, and each round's order reversed, so a load that drifts favours nobody
      const order = round % 2 ? variants : [...variants].reverse();
      for (const [server, variant] of order) {
        const r = await restartOnce(server, variant, members.get(server)!, round);
        members.set(server, r.m);
        starts.push(r.start);
      }
    }
  } finally {
    for (const m of members.values()) await stopMember(m);
  }
  console.log(`\n${keys} keys of 1 KiB, ${rounds} rounds; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`${'variant'.padEnd(10)}${'ready s'.padStart(10)}${'CPU s'.padStart(10)}${'RSS MB'.padStart(10)}${'stop s'.padStart(10)}   (medians; each run below)`);
  for (const v of ['etcd', 'image', 'records', 'crashed'] as Variant[]) {
    const rs = starts.filter((s) => s.variant === v);
    if (rs.length === 0) continue;
    const col = (f: (s: Start) => number, d: number) => median(rs.map(f)).toFixed(d).padStart(10);
    console.log(`${v.padEnd(10)}${col((s) => s.readySeconds, 1)}${col((s) => s.cpuSeconds, 1)}${col((s) => s.rssMb, 0)}${col((s) => s.stopSeconds, 1)}`);
  }
  for (const s of starts) console.log(JSON.stringify(s));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
