// Filling one member with goload's unique keys of 1 KiB values (bench/scale): until the
// quota alarm or a key count, every acknowledged key written to a file for random gets.

import { execFile, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { call, type Clients, type Member, pool, rssMb, type Server } from '../member.js';

const run = promisify(execFile);

export const VALUE_BYTES = 1024;
const NOSPACE = 'alarm:NOSPACE';
/** Below this many missing keys, a fill is topped up one put at a time (goload runs by time, not count). */
const TOP_UP_BELOW = 2000;

export interface FillOptions {
  goload: string;
  clients: number;
  /** seconds per goload run */
  chunkSeconds: number;
}

/**
 * One goload run's stdout. Its stderr is not kept: at the quota every client logs each
 * refused put and its retry, megabytes a second, past any buffer execFile would allow.
 */
function goloadRun(goload: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(goload, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`goload exited (${signal ?? code}): ${out.slice(-2000)}`))));
  });
}

export const load1 = (): string => os.loadavg()[0]!.toFixed(1);

export function log(server: string, line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${server.padEnd(7)} ${line}`);
}

async function alarmed(addr: string): Promise<boolean> {
  const { stdout } = await run('etcdctl', ['--endpoints', addr, 'alarm', 'list']);
  return stdout.includes(NOSPACE);
}

/** Keys in the whole key space, from a count-only range (the index alone, in both servers). */
export async function countKeys(c: Clients): Promise<number> {
  const r = await call<{ count: string }>(c.kv[0]!, 'Range', { key: Buffer.of(0), range_end: Buffer.of(0), count_only: true });
  return Number(r.count);
}

/**
 * Fills with goload's unique keys until NOSPACE (target undefined) or `target` keys.
 * Every acknowledged key goes to a file in `dir` (for the random gets).
 */
export async function fillMember(
  m: Member,
  c: Clients,
  server: Server,
  target: number | undefined,
  dir: string,
  { goload, clients, chunkSeconds }: FillOptions,
): Promise<{ keys: number; seconds: number; quotaReached: boolean }> {
  const t0 = performance.now();
  let keys = await countKeys(c);
  /** puts/s of the last chunk; none yet, so the first chunk is short */
  let rate: number | undefined;
  for (let chunk = 0; ; chunk++) {
    const remaining = target === undefined ? Number.POSITIVE_INFINITY : target - keys;
    if (remaining < TOP_UP_BELOW) break;
    // aim short of the target: goload runs by time, and an overshoot cannot be undone
    const seconds = rate === undefined ? 2 : Math.max(1, Math.min(chunkSeconds, (0.8 * remaining) / rate));
    const before = keys;
    const c0 = performance.now();
    const stdout = await goloadRun(goload, [
      '-endpoints', m.addr,
      '-op', 'seq',
      '-clients', String(clients),
      '-conns', String(Math.min(8, clients)),
      '-value-size', String(VALUE_BYTES),
      '-warmup', '0s',
      '-duration', `${seconds.toFixed(1)}s`,
      '-acked', path.join(dir, `acked-${chunk}`),
    ]);
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as { errors: number };
    keys = await countKeys(c);
    rate = Math.max(100, (keys - before) / ((performance.now() - c0) / 1000));
    log(server, `fill: ${keys} keys, RSS ${rssMb(m.proc.pid!).toFixed(0)} MB, ${rate.toFixed(0)} puts/s over the last ${seconds.toFixed(0)} s, ${out.errors} errors, load average ${load1()}`);
    if (out.errors > 0 && (await alarmed(m.addr))) return { keys, seconds: (performance.now() - t0) / 1000, quotaReached: true };
    if (target !== undefined && keys >= target) break;
  }
  if (target !== undefined && keys < target) {
    const value = Buffer.alloc(VALUE_BYTES);
    const missing = target - keys;
    await pool(missing, clients, (i) => call(c.kv[i % c.kv.length]!, 'Put', { key: Buffer.from(`scale/top-up-${String(i).padStart(8, '0')}`), value }));
    keys = await countKeys(c);
  }
  return { keys, seconds: (performance.now() - t0) / 1000, quotaReached: false };
}

