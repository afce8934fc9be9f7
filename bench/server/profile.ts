// CPU profile of one etcd-ts member under goload (etcd's Go client): starts the member with
// `node --cpu-prof`, fills 1000 keys, runs one workload, stops the member with SIGTERM (the
// profile is written as the process exits) and prints the functions with the most self time.
//
//   npx tsx bench/server/profile.ts -- [--op put|get-lin|get-ser] [--clients 64] [--duration 4s]
//       [--url] [--auth] [--mixed] [--top 25] [--keep DIR]
//
// --mixed profiles the etcd-ts member of bench.ts's mixed cluster: it and two real etcd
// 3.4.23 members, leadership moved to it with `etcdctl move-leader`, the load sent to all three.
//
// --url dials `http://127.0.0.1:PORT` (a URL endpoint, as etcdctl users write it) instead of
// `127.0.0.1:PORT`. --auth turns auth on after the fill and runs the load as a user with
// readwrite on the keys (authload, simple tokens; put and get-ser only). --keep leaves the .cpuprofile in DIR (open it in Chrome's DevTools).

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { authloadBinary, enableAuth, runAuthload } from '../authload/authload.js';
import { readProfile, selfTime } from '../cpu-profile.js';
import { freePort } from '../free-port.js';
import { nodeFlagsEnv } from '../member.js';
import { moveLeaderTo } from './leader.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const op = arg('op', 'put');
const clients = Number(arg('clients', '64'));
const duration = arg('duration', '4s');
const top = Number(arg('top', '25'));
const goload = arg('goload', '/tmp/goload');
const keep = arg('keep', '');
const url = process.argv.includes('--url');
const auth = process.argv.includes('--auth');
const mixed = process.argv.includes('--mixed');

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(repoRoot, '.bench-'));
  const profDir = keep || path.join(dir, 'prof');
  mkdirSync(profDir, { recursive: true });
  const names = mixed ? ['p', 'e1', 'e2'] : ['p'];
  const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const flags = (i: number): string[] => [
    '--name', names[i]!, '--data-dir', path.join(dir, names[i]!),
    '--listen-client-urls', `http://127.0.0.1:${ports[i]!.client}`, '--advertise-client-urls', `http://127.0.0.1:${ports[i]!.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${ports[i]!.peer}`,
    '--initial-cluster', initialCluster, '--log-level', 'warn',
  ];
  const member = spawn(path.join(repoRoot, 'bin/etcd-ts'), flags(0), { stdio: 'ignore', env: { ...process.env, ...nodeFlagsEnv(['--cpu-prof', '--cpu-prof-dir', profDir]) } });
  const etcds = names.slice(1).map((_, i) => spawn('etcd', flags(i + 1), { stdio: 'ignore' }));
  const exited = new Promise((r) => member.on('exit', r));
  try {
    const endpoints = ports.map((p) => `127.0.0.1:${p.client}`);
    const endpoint = endpoints.join(',');
    for (const deadline = Date.now() + 30_000; ; ) {
      try {
        execFileSync('etcdctl', ['--endpoints', endpoint, 'endpoint', 'health'], { stdio: 'ignore' });
        break;
      } catch {
        if (Date.now() > deadline) throw new Error('the members did not become healthy');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    if (mixed) moveLeaderTo(endpoints, 0);
    execFileSync(goload, ['-endpoints', endpoint, '-op', 'fill', '-keys', '1000']);
    if (auth) enableAuth([endpoint]);
    const args = [
      '-endpoints', url ? endpoints.map((e) => `http://${e}`).join(',') : endpoint,
      '-op', op, '-clients', String(clients), '-conns', String(Math.min(8, clients)), '-duration', duration,
    ];
    const out = auth ? await runAuthload(authloadBinary(), args, () => {}) : execFileSync(goload, args).toString();
    console.log(`${op} c=${clients}${url ? ' (URL endpoint)' : ''}${auth ? ' (auth on)' : ''}${mixed ? ' (etcd-ts leading 2 etcd)' : ''}: ${out.trim().split('\n').pop()}  load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    member.kill('SIGTERM');
    for (const e of etcds) e.kill('SIGKILL');
    await exited;
    await Promise.all(etcds.map((e) => new Promise((r) => (e.exitCode !== null || e.signalCode !== null ? r(null) : e.on('exit', r)))));
  }
  const { file, profile } = readProfile(profDir);
  const { rows } = selfTime(profile);
  console.log('share of busy samples, self time:');
  for (const r of rows.slice(0, top)) console.log(`${(r.share * 100).toFixed(1).padStart(5)} %  ${r.name}`);
  if (keep) console.log(`profile: ${file}`);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
