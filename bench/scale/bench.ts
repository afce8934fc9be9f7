// Scale: one member filled with unique keys of 1 KiB values up to etcd's backend quota,
// beside real etcd 3.4.23 in the same run (issue 19). etcd goes first: it fills until it
// refuses puts with `etcdserver: mvcc: database space exceeded` (its NOSPACE alarm), and
// etcd-ts is then filled to the same key count. For each server:
//
//   fill      goload (etcd's Go client) `-op seq` at 64 clients, in chunks, until the quota
//             alarm (etcd) or etcd's key count (etcd-ts; the last few hundred keys by a Node
//             client, so the counts are equal); puts/s averaged over the whole fill
//   RSS       after a settle pause, anonymous + file pages (bbolt maps its file; LevelDB
//             maps its tables)
//   keys-only `etcdctl get '' --from-key --keys-only` over every key: wall time, RSS after
//   gets      random linearizable gets of keys the fill acknowledged, 64 clients
//             (getload, beside this file: goload's gets read goload's own key space):
//             most values are cold (on disk, not in any cache)
//   restart   SIGTERM (its time: etcd-ts writes etcd's bbolt file as it stops), then a start on the same data dir: time from spawn to the ready
//             line, the key count after it (must equal the count before), RSS once settled
//
//   npx tsc -p tsconfig.json && npx tsx bench/scale/bench.ts
//       [--servers etcd,etcd-ts]        which servers, in this order (etcd first sets the key count)
//       [--quota-backend-bytes N]       both servers' quota (default etcd's 2 GiB)
//       [--keys N]                      fill to N keys instead of etcd's quota (per-key figures)
//       [--clients 64] [--chunk 20]     goload's clients; seconds per goload run
//       [--gets-seconds 10] [--settle 5]
//       [--ts DIR]                      the etcd-ts build to run (a built checkout; default this one)
//       [--heap-log FILE]               etcd-ts: its JS heap / external / native split at each reading
//       [--goload /tmp/goload]
//
// goload's seq values are zero bytes: LevelDB compresses them, bbolt does not, so etcd-ts's
// data dir is far smaller and never reaches the quota first (its quota counts its files).
// Disk space: both data dirs go under the repository; etcd's is about the quota.

import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  arg,
  Clients,
  type Member,
  repoRoot,
  rssMb,
  rssSplitMb,
  type Server,
  shutDownMember,
  startMember,
  stopMember,
} from '../member.js';
import { goBinary } from '../go-binary.js';
import { countKeys, fillMember, load1, log } from './fill.js';

const run = promisify(execFile);

const servers = arg('servers', 'etcd,etcd-ts').split(',') as Server[];
for (const s of servers) if (s !== 'etcd' && s !== 'etcd-ts') throw new Error(`--servers ${s}: expected etcd or etcd-ts`);
const quotaBytes = arg('quota-backend-bytes', String(2 * 1024 ** 3));
const keysArg = arg('keys', '');
const clients = Number(arg('clients', '64'));
const chunkSeconds = Number(arg('chunk', '20'));
const getsSeconds = Number(arg('gets-seconds', '10'));
const tsDir = arg('ts', repoRoot);
const settleMs = Number(arg('settle', '5')) * 1000;
const heapLog = arg('heap-log', '');
const goload = arg('goload', '/tmp/goload');

const READY = 'ready to serve client requests';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reading {
  rss: number;
  anon: number;
  file: number;
  load: string;
}

interface Result {
  keys: number;
  fillSeconds: number;
  quotaReached: boolean;
  diskMb: number;
  filled: Reading;
  keysOnlySeconds: number;
  afterKeysOnly: Reading;
  getsPerSecond: number;
  getP50: number;
  stopSeconds: number;
  restartSeconds: number;
  keysAfterRestart: number;
  restarted: Reading;
}

function reading(pid: number): Reading {
  return { rss: rssMb(pid), ...rssSplitMb(pid), load: load1() };
}

async function settledReading(m: Member, server: Server, stage: string): Promise<Reading> {
  await sleep(settleMs);
  const r = reading(m.proc.pid!);
  log(server, `${stage}: RSS ${r.rss.toFixed(0)} MB (anon ${r.anon.toFixed(0)}, file ${r.file.toFixed(0)}), load average ${r.load}`);
  if (heapLog && server === 'etcd-ts') {
    appendFileSync(heapLog, `${JSON.stringify({ stage, rssMb: Math.round(r.rss) })}\n`);
    m.proc.kill('SIGUSR2');
    await sleep(2000);
  }
  return r;
}

function fill(m: Member, c: Clients, server: Server, target: number | undefined, dir: string): Promise<{ keys: number; seconds: number; quotaReached: boolean }> {
  return fillMember(m, c, server, target, dir, { goload, clients, chunkSeconds });
}

/** Random gets of the keys the fill acknowledged (every file in `dir`), by getload. */
async function randomGets(m: Member, dir: string): Promise<{ perSecond: number; p50: number }> {
  const getload = goBinary(path.join(repoRoot, 'bench/scale/getload'), path.join(os.tmpdir(), 'etcdts-getload'));
  const files = readdirSync(dir).map((f) => path.join(dir, f));
  const { stdout } = await run(getload, ['-endpoints', m.addr, '-clients', String(clients), '-duration', `${getsSeconds}s`, ...files]);
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { ops_per_s: number; p50_ms: number; errors: number };
  if (r.errors > 0) throw new Error(`getload: ${r.errors} gets failed or found nothing`);
  return { perSecond: r.ops_per_s, p50: r.p50_ms };
}

/**
 * One stage whose failure should not cost the stages after it (a range that never
 * answers must not leave the restart unmeasured): logged, and `failed` stands in.
 */
async function attempt<T>(server: Server, stage: string, failed: T, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    log(server, `${stage} FAILED: ${(err as Error).message.split('\n').slice(0, 4).join(' | ')}`);
    return failed;
  }
}

function diskMb(dataDir: string): number {
  return Number(execFileSync('du', ['-sk', dataDir]).toString().split('\t')[0]) / 1024;
}

/** Waits until `file` holds `text`; resolves with the time it was seen. */
async function waitForLine(file: string, text: string, stop: () => boolean): Promise<number> {
  while (!stop()) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes(text)) return performance.now();
    await sleep(20);
  }
  throw new Error(`${file}: no "${text}"`);
}

async function measure(server: Server, target: number | undefined): Promise<Result> {
  const nodeArgs = heapLog ? ['--expose-gc', '--import', path.join(repoRoot, 'bench/memory/heap-log.mjs')] : [];
  const opts = { tsDir, dirPrefix: '.bench-scale-', readySeconds: 600, args: ['--quota-backend-bytes', quotaBytes], nodeArgs, env: { HEAP_LOG: heapLog } };
  let m = await startMember(server, opts);
  let c = new Clients(m.addr);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'scale-acked-'));
  try {
    await settledReading(m, server, 'idle');
    const f = await fill(m, c, server, target, scratch);
    log(server, `filled: ${f.keys} keys in ${f.seconds.toFixed(0)} s (${(f.keys / f.seconds).toFixed(0)} puts/s)${f.quotaReached ? ', quota reached' : ''}`);
    const filled = await settledReading(m, server, 'filled');

    const keysOnlySeconds = await attempt(server, 'keys-only range', NaN, async () => {
      const k0 = performance.now();
      await run('etcdctl', ['--endpoints', m.addr, '--command-timeout', '600s', 'get', '', '--from-key', '--keys-only'], { maxBuffer: 1024 ** 3 });
      return (performance.now() - k0) / 1000;
    });
    const afterKeysOnly = reading(m.proc.pid!);
    log(server, `keys-only range of everything: ${keysOnlySeconds.toFixed(1)} s, RSS after ${afterKeysOnly.rss.toFixed(0)} MB`);

    const gets = await attempt(server, 'random gets', { perSecond: NaN, p50: NaN }, () => randomGets(m, scratch));
    log(server, `random gets: ${gets.perSecond.toFixed(0)}/s, p50 ${gets.p50} ms, load average ${load1()}`);

    c.close();
    const dataMb = diskMb(m.place.dataDir);
    // etcd-ts writes etcd's bbolt file of the whole store as it stops
    const s0 = performance.now();
    await shutDownMember(m);
    const stopSeconds = (performance.now() - s0) / 1000;
    log(server, `stopped (SIGTERM) in ${stopSeconds.toFixed(1)} s`);
    const logFile = path.join(m.dir, 'restart.log');
    const spawned = performance.now();
    let started = false;
    const ready = waitForLine(logFile, READY, () => started && m.proc.exitCode !== null);
    // the bench's own `--log-level warn` would hide the ready line: a later flag wins in both servers
    m = await startMember(server, { ...opts, place: m.place, logFile, args: [...opts.args, '--log-level', 'info'] });
    started = true;
    const restartSeconds = ((await ready) - spawned) / 1000;
    c = new Clients(m.addr);
    const keysAfterRestart = await countKeys(c);
    log(server, `restart: ready after ${restartSeconds.toFixed(1)} s, ${keysAfterRestart} keys`);
    if (keysAfterRestart !== f.keys) throw new Error(`${server}: ${f.keys} keys before the restart, ${keysAfterRestart} after`);
    const restarted = await settledReading(m, server, 'restarted');
    return { keys: f.keys, fillSeconds: f.seconds, quotaReached: f.quotaReached, diskMb: dataMb, filled, keysOnlySeconds, afterKeysOnly, getsPerSecond: gets.perSecond, getP50: gets.p50, stopSeconds, restartSeconds, keysAfterRestart, restarted };
  } finally {
    c.close();
    await stopMember(m);
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!existsSync(goload)) throw new Error(`${goload} missing: bash /work/shared/goload/build.sh ${goload}`);
  const free = Number(execFileSync('df', ['-Pk', repoRoot]).toString().split('\n')[1]!.split(/\s+/)[3]) * 1024;
  if (free < 2.5 * Number(quotaBytes)) throw new Error(`${(free / 1024 ** 3).toFixed(1)} GiB free under ${repoRoot}: the quota of ${quotaBytes} bytes needs ~2.5× that`);
  const results = new Map<Server, Result>();
  let target = keysArg === '' ? undefined : Number(keysArg);
  for (const s of servers) {
    const r = await measure(s, target);
    results.set(s, r);
    // the first server's count, past the quota or --keys (goload overshoots), is everyone's
    target = results.values().next().value!.keys;
  }
  const etcd = results.get('etcd');
  const rows: Array<[string, (r: Result) => number, number]> = [
    ['keys', (r) => r.keys, 0],
    ['fill, puts/s', (r) => r.keys / r.fillSeconds, 0],
    ['data dir, MB', (r) => r.diskMb, 0],
    ['RSS filled, MB', (r) => r.filled.rss, 0],
    ['  anonymous', (r) => r.filled.anon, 0],
    ['  file pages', (r) => r.filled.file, 0],
    ['keys-only range, s', (r) => r.keysOnlySeconds, 1],
    ['RSS after it, MB', (r) => r.afterKeysOnly.rss, 0],
    ['random gets/s', (r) => r.getsPerSecond, 0],
    ['  p50, ms', (r) => r.getP50, 2],
    ['stop (SIGTERM), s', (r) => r.stopSeconds, 1],
    ['restart to ready, s', (r) => r.restartSeconds, 1],
    ['RSS restarted, MB', (r) => r.restarted.rss, 0],
  ];
  console.log(`\nquota ${quotaBytes} bytes, ${clients} clients, 1 KiB values; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`${''.padEnd(22)}${servers.map((s) => s.padStart(12)).join('')}${etcd && results.has('etcd-ts') ? 'etcd-ts/etcd'.padStart(14) : ''}`);
  for (const [name, f, digits] of rows) {
    const cells = servers.map((s) => f(results.get(s)!).toFixed(digits).padStart(12)).join('');
    const ts = results.get('etcd-ts');
    const ratio = etcd && ts ? (f(ts) / f(etcd)).toFixed(2).padStart(14) : '';
    console.log(`${name.padEnd(22)}${cells}${ratio}`);
  }
  for (const s of servers) {
    const r = results.get(s)!;
    console.log(`${s}: load average at the readings ${[r.filled, r.afterKeysOnly, r.restarted].map((x) => x.load).join(', ')}; quota reached: ${r.quotaReached}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
