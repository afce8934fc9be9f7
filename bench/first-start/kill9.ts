// kill -9 at a random moment of a one-member first start, then a plain start on the same
// data dir: does it serve? etcd-ts and real etcd 3.4.23 alternate in one run. Where each
// kill landed is read from the data dir it left (etcd-ts reads etcd's WAL format):
//   no WAL | WAL, no raft state (created, first Ready not durable) | raft state | ready
// (the killed start had logged "ready to serve client requests").
//
//   npx tsx bench/first-start/kill9.ts [--trials 12]
//
// The window the kill is drawn from is each server's own time to ready, measured by a
// plain first start at the beginning of the run.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { holdsRaftState } from '../../src/server/restart-member.js';
import { WAL } from '../../src/wal/index.js';
import { freePort } from '../free-port.js';
import { type Server, arg, repoRoot } from '../member.js';

type Landed = 'no WAL' | 'WAL, no raft state' | 'raft state' | 'ready';

interface Run {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function launch(server: Server, dataDir: string, client: number, peer: number): Run {
  const args = [
    '--name', 'one',
    '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `one=http://127.0.0.1:${peer}`,
  ];
  const proc = server === 'etcd' ? spawn('etcd', args) : spawn(path.join(repoRoot, 'bin/etcd-ts'), args);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  return { proc, output: () => out, exited };
}

async function kill(run: Run): Promise<void> {
  if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGKILL');
  await run.exited;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timeToReady(server: Server, base: string): Promise<number> {
  const t0 = performance.now();
  const run = launch(server, path.join(base, `${server}-plain`), await freePort(), await freePort());
  while (!run.output().includes('ready to serve client requests')) {
    if (performance.now() - t0 > 60_000) throw new Error(`${server} did not start:\n${run.output()}`);
    await sleep(5);
  }
  const ms = performance.now() - t0;
  await kill(run);
  return ms;
}

/** Where the kill landed, read from a copy of the WAL so the next start finds the data dir untouched. */
async function landed(dataDir: string, killedOutput: string, scratch: string): Promise<Landed> {
  if (killedOutput.includes('ready to serve client requests')) return 'ready';
  const walDir = path.join(dataDir, 'member', 'wal');
  if (!existsSync(walDir) || !WAL.exists(walDir)) return 'no WAL';
  rmSync(scratch, { recursive: true, force: true });
  cpSync(walDir, scratch, { recursive: true });
  const wal = await WAL.open(scratch, { index: 0, term: 0 });
  try {
    return holdsRaftState(await wal.readAll()) ? 'raft state' : 'WAL, no raft state';
  } finally {
    await wal.close();
  }
}

/** Whether a put through the member succeeds within `ms`. */
async function serves(client: number, run: Run, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && run.proc.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) =>
      execFile('etcdctl', ['--endpoints', `127.0.0.1:${client}`, '--command-timeout=1s', 'put', 'k', 'v'], (err) => resolve(err === null)),
    );
    if (ok) return true;
    await sleep(250);
  }
  return false;
}

async function main(): Promise<void> {
  const trials = Number(arg('trials', '12'));
  const base = mkdtempSync(path.join(repoRoot, 'bench-kill9-'));
  const servers: Server[] = ['etcd-ts', 'etcd'];
  const window = new Map<Server, number>();
  const tally = new Map<string, { kills: number; served: number }>();
  try {
    for (const s of servers) window.set(s, await timeToReady(s, base));
    console.log(`time to ready (ms, load ${loadavg()[0]!.toFixed(1)}): ${servers.map((s) => `${s} ${window.get(s)!.toFixed(0)}`).join(', ')}`);
    for (let t = 0; t < trials; t++) {
      for (const s of servers) {
        const dataDir = path.join(base, `${s}-${t}`);
        const client = await freePort();
        const peer = await freePort();
        const delay = Math.random() * 1.2 * window.get(s)!;
        const first = launch(s, dataDir, client, peer);
        await sleep(delay);
        await kill(first);
        const where = await landed(dataDir, first.output(), path.join(base, 'wal-copy'));
        const next = launch(s, dataDir, client, peer);
        const ok = await serves(client, next, 60_000);
        await kill(next);
        if (!ok) console.log(`${s}: killed at ${delay.toFixed(0)} ms (${where}); the next start did not serve in 60 s; its last lines:\n${next.output().trim().split('\n').slice(-3).join('\n')}`);
        const key = `${s} | ${where}`;
        const row = tally.get(key) ?? { kills: 0, served: 0 };
        row.kills++;
        if (ok) row.served++;
        tally.set(key, row);
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  console.log(`\nserver | where the kill landed | kills | next start served   (load ${loadavg()[0]!.toFixed(1)})`);
  for (const [key, row] of [...tally].sort()) console.log(`${key} | ${row.kills} | ${row.served}`);
}

await main();
