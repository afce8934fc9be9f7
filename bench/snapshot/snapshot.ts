// `etcdctl snapshot save` and the first start after `etcdctl snapshot restore`, measured on
// one member of real etcd 3.4.23 or of an etcd-ts build: N keys × 256 random bytes written
// in txns of 100 puts, then the save, the restore and the first start on the restored data
// dir. Used by bench/snapshot/bench.ts and by `npm run bench:server -- --snapshot`; what
// each figure is: bench/snapshot/README.md.
//
// Save: MB/s of key-value data saved (N × 256 B over the wall time of `etcdctl snapshot
// save`, which includes etcdctl writing and fsyncing the file), the file size, and the
// member's RSS before the save and at its peak during it (sampled every 20 ms), split into
// anonymous memory (what the member allocates: the store must not be held in memory) and
// mapped file pages (LevelDB maps its table files, so reading the whole store maps them all).
//
// First start: the member is stopped, the saved file goes through `etcdctl snapshot
// restore` into a new data dir, and the same server starts on it; timed from the spawn to
// `etcdctl endpoint health` passing (polled every 200 ms). etcd opens the restored bbolt
// file as it is; etcd-ts imports it into its LevelDB store first.
//
// With a profile directory, etcd-ts runs under `node --cpu-prof` for the save (restarted
// after the fill, so the profile holds the start, the save and the shutdown; only the
// save's window is summarized) and for the first start, and the functions with the most
// self time are printed. The profiles stay in the directory.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readProfile, selfTime } from '../cpu-profile.js';
import { freePort } from '../free-port.js';
import { call, Clients, type Member, pool, rssSplitMb, type Server, shutDownMember, startMember, stopMember } from '../member.js';

const run = promisify(execFile);

export const VALUE_BYTES = 256;
/** under etcd's default --max-txn-ops of 128 */
const PUTS_PER_TXN = 100;
const RSS_SAMPLE_MS = 20;
const PROFILE_ROWS = 20;
/** a start on a restored or refilled data dir of a million keys takes long on a loaded machine */
const READY_SECONDS = 600;
const ETCDCTL_ENV = { ...process.env, ETCDCTL_API: '3' };

/** What runs: etcd, or an etcd-ts build (a built checkout and its environment). */
export interface Target {
  server: Server;
  /** etcd-ts: the checkout (default: this one) */
  tsDir?: string;
  env?: Record<string, string>;
}

export interface SnapshotOptions {
  keys: number;
  /** etcd-ts runs under `node --cpu-prof` with its profiles here ('' : not profiled) */
  profileDir: string;
}

export interface SnapshotResult {
  saveSeconds: number;
  fileBytes: number;
  anonBeforeMb: number;
  anonPeakMb: number;
  fileBeforeMb: number;
  filePeakMb: number;
  /** `etcdctl snapshot restore` of the saved file */
  restoreSeconds: number;
  /** spawn to healthy on the restored data dir */
  firstStartSeconds: number;
  /** etcd-ts: the import of the bbolt file into LevelDB, as its log reports it */
  importSeconds: number | undefined;
}

export async function fill(c: Clients, keyCount: number): Promise<void> {
  const txns = Math.ceil(keyCount / PUTS_PER_TXN);
  await pool(txns, 8, async (t) => {
    const success = [];
    for (let i = t * PUTS_PER_TXN; i < Math.min(keyCount, (t + 1) * PUTS_PER_TXN); i++) {
      success.push({ request_put: { key: Buffer.from(`bench/${String(i).padStart(8, '0')}`), value: randomBytes(VALUE_BYTES) } });
    }
    await call(c.kv[t % c.kv.length]!, 'Txn', { compare: [], success, failure: [] });
  });
}

/** `node --cpu-prof` into a new directory under `profileDir`, for etcd-ts when profiling. */
function profiled(server: Server, profileDir: string, label: string): string[] {
  if (profileDir === '' || server !== 'etcd-ts') return [];
  const dir = path.join(profileDir, `${label}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

function printProfile(what: string, nodeArgs: string[], window?: { fromEnd: number; toEnd: number }): void {
  if (nodeArgs.length === 0) return;
  const { file, profile } = readProfile(nodeArgs[2]!);
  const { busySeconds, rows } = selfTime(profile, window);
  console.error(`${what}: ${busySeconds.toFixed(1)} s busy (${file}); self time, share of busy samples:`);
  for (const r of rows.slice(0, PROFILE_ROWS)) console.error(`${(r.share * 100).toFixed(1).padStart(5)} %  ${r.name}`);
}

/** Saves a snapshot of `m`, sampling its RSS meanwhile; `m` keeps running. */
async function save(m: Member, file: string): Promise<Pick<SnapshotResult, 'saveSeconds' | 'fileBytes' | 'anonBeforeMb' | 'anonPeakMb' | 'fileBeforeMb' | 'filePeakMb'> & { started: number; ended: number }> {
  const pid = m.proc.pid!;
  const before = rssSplitMb(pid);
  const peak = { ...before };
  const sampler = setInterval(() => {
    const now = rssSplitMb(pid);
    peak.anon = Math.max(peak.anon, now.anon);
    peak.file = Math.max(peak.file, now.file);
  }, RSS_SAMPLE_MS);
  const started = performance.now();
  try {
    await run('etcdctl', ['--endpoints', m.addr, '--command-timeout=600s', 'snapshot', 'save', file], { env: ETCDCTL_ENV });
  } finally {
    clearInterval(sampler);
  }
  const ended = performance.now();
  return {
    saveSeconds: (ended - started) / 1000,
    fileBytes: statSync(file).size,
    anonBeforeMb: before.anon,
    anonPeakMb: peak.anon,
    fileBeforeMb: before.file,
    filePeakMb: peak.file,
    started,
    ended,
  };
}

/** One member of `target`: fill, save, restore, first start; its data dir is removed at the end. */
export async function measureSnapshot(target: Target, opts: SnapshotOptions): Promise<SnapshotResult> {
  const { server } = target;
  const run1 = { tsDir: target.tsDir, env: target.env };
  let m = await startMember(server, { ...run1, dirPrefix: '.bench-snap-' });
  try {
    const c = new Clients(m.addr);
    try {
      await fill(c, opts.keys);
    } finally {
      c.close();
    }
    const saveProf = profiled(server, opts.profileDir, 'save');
    if (saveProf.length > 0) {
      await shutDownMember(m);
      m = await startMember(server, { ...run1, place: m.place, nodeArgs: saveProf, readySeconds: READY_SECONDS });
    }
    await new Promise((r) => setTimeout(r, 2000)); // let the last batch commit and the heap settle
    const file = path.join(m.dir, 'backup.db');
    const saved = await save(m, file);
    await shutDownMember(m);
    // the profile ends as the process exits: the save's window, counted back from there
    const exited = performance.now();
    printProfile(`${server} save`, saveProf, { fromEnd: (exited - saved.started) / 1000, toEnd: (exited - saved.ended) / 1000 });

    const restored = { dir: m.dir, dataDir: path.join(m.dir, 'restored'), client: await freePort(), peer: await freePort() };
    const r0 = performance.now();
    await run(
      'etcdctl',
      ['snapshot', 'restore', file, '--name', 'm0', '--data-dir', restored.dataDir,
        '--initial-cluster', `m0=http://127.0.0.1:${restored.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${restored.peer}`],
      { env: ETCDCTL_ENV },
    );
    const restoreSeconds = (performance.now() - r0) / 1000;
    rmSync(file);
    const startProf = profiled(server, opts.profileDir, 'first-start');
    const logFile = path.join(m.dir, 'first-start.log');
    const s0 = performance.now();
    m = await startMember(server, { ...run1, place: restored, nodeArgs: startProf, readySeconds: READY_SECONDS, args: ['--log-level', 'info'], logFile });
    const firstStartSeconds = (performance.now() - s0) / 1000;
    await shutDownMember(m);
    printProfile(`${server} first start`, startProf);
    return { ...saved, restoreSeconds, firstStartSeconds, importSeconds: importTook(readFileSync(logFile, 'utf8')) };
  } finally {
    await stopMember(m);
  }
}

/** The import's duration from etcd-ts's log line for it (etcd has none: it opens the file as it is). */
function importTook(log: string): number | undefined {
  const line = log.split('\n').find((l) => l.includes("imported etcd's bbolt db"));
  const ms = line === undefined ? undefined : /"took":"(\d+)ms"/.exec(line)?.[1];
  return ms === undefined ? undefined : Number(ms) / 1000;
}

/** One line per measured round, to stderr as the rounds go. */
export function roundLine(round: number, label: string, r: SnapshotResult, keys: number): string {
  const dataMb = (keys * VALUE_BYTES) / 1e6;
  return (
    `round ${round} ${label.padEnd(7)} save ${r.saveSeconds.toFixed(2)} s, ${(dataMb / r.saveSeconds).toFixed(1)} MB/s, file ${(r.fileBytes / 1e6).toFixed(1)} MB, ` +
    `RSS anon ${r.anonBeforeMb.toFixed(0)} -> ${r.anonPeakMb.toFixed(0)} MB peak, file ${r.fileBeforeMb.toFixed(0)} -> ${r.filePeakMb.toFixed(0)} MB peak; ` +
    `restore ${r.restoreSeconds.toFixed(2)} s, first start ${r.firstStartSeconds.toFixed(2)} s` +
    `${r.importSeconds === undefined ? '' : ` (import ${r.importSeconds.toFixed(2)} s)`}; load ${loadAverage()}`
  );
}

export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(1)).join(' ');
}

/**
 * The table of means per server (`results` keyed by label, etcd's as 'etcd'), then each
 * etcd-ts build's ratios to etcd: save speed, and first start time.
 */
export function snapshotReport(results: Record<string, SnapshotResult[]>, keys: number): string[] {
  const dataMb = (keys * VALUE_BYTES) / 1e6;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const labels = Object.keys(results).filter((l) => results[l]!.length > 0);
  const rounds = Math.max(...labels.map((l) => results[l]!.length));
  const out = [
    `snapshot save of ${keys} keys × ${VALUE_BYTES} B (${dataMb.toFixed(1)} MB of values), ${rounds} round(s); ${os.cpus().length} cores, load average ${loadAverage()}`,
    'server      MB/s  file MB  anon RSS before / peak  file RSS before / peak  restore s  first start s  import s',
  ];
  for (const label of labels) {
    const rs = results[label]!;
    const m = (f: (r: SnapshotResult) => number) => mean(rs.map(f)).toFixed(0);
    out.push(
      `${label.padEnd(8)} ${(dataMb / mean(rs.map((r) => r.saveSeconds))).toFixed(1).padStart(7)} ${(mean(rs.map((r) => r.fileBytes)) / 1e6).toFixed(1).padStart(8)} ` +
        `${m((r) => r.anonBeforeMb).padStart(12)} / ${m((r) => r.anonPeakMb).padEnd(6)} MB ${m((r) => r.fileBeforeMb).padStart(11)} / ${m((r) => r.filePeakMb).padEnd(6)} MB ` +
        `${mean(rs.map((r) => r.restoreSeconds)).toFixed(2).padStart(9)} ${mean(rs.map((r) => r.firstStartSeconds)).toFixed(2).padStart(14)} ` +
        `${rs.some((r) => r.importSeconds === undefined) ? '-' : mean(rs.map((r) => r.importSeconds!)).toFixed(2).padStart(9)}`,
    );
  }
  const etcd = results['etcd'] ?? [];
  for (const label of labels.filter((l) => l !== 'etcd' && etcd.length > 0)) {
    const avg = (rs: SnapshotResult[], f: (r: SnapshotResult) => number) => mean(rs.map(f));
    const ts = results[label]!;
    out.push(`${label} / etcd save speed: ${(avg(etcd, (r) => r.saveSeconds) / avg(ts, (r) => r.saveSeconds)).toFixed(2)}x`);
    out.push(`${label} / etcd first start after restore: ${(avg(ts, (r) => r.firstStartSeconds) / avg(etcd, (r) => r.firstStartSeconds)).toFixed(2)}x the time`);
  }
  return out;
}
