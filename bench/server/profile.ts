// CPU profile of one etcd-ts member under goload (etcd's Go client): starts the member with
// `node --cpu-prof`, fills 1000 keys, runs one workload, stops the member with SIGTERM (the
// profile is written as the process exits) and prints the functions with the most self time.
//
//   npx tsx bench/server/profile.ts -- [--op put|get-lin|get-ser] [--clients 64] [--duration 4s]
//       [--url] [--auth] [--top 25] [--keep DIR]
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

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(repoRoot, '.bench-'));
  const profDir = keep || path.join(dir, 'prof');
  mkdirSync(profDir, { recursive: true });
  const [client, peer] = [await freePort(), await freePort()];
  const member = spawn(
    process.execPath,
    [
      '--cpu-prof', '--cpu-prof-dir', profDir,
      path.join(repoRoot, 'bin/etcd-ts'),
      '--name', 'p', '--data-dir', path.join(dir, 'p'),
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `p=http://127.0.0.1:${peer}`, '--log-level', 'warn',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => member.on('exit', r));
  try {
    const endpoint = `127.0.0.1:${client}`;
    for (const deadline = Date.now() + 30_000; ; ) {
      try {
        execFileSync('etcdctl', ['--endpoints', endpoint, 'endpoint', 'health'], { stdio: 'ignore' });
        break;
      } catch {
        if (Date.now() > deadline) throw new Error('etcd-ts did not become healthy');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    execFileSync(goload, ['-endpoints', endpoint, '-op', 'fill', '-keys', '1000']);
    if (auth) enableAuth([endpoint]);
    const args = [
      '-endpoints', url ? `http://${endpoint}` : endpoint,
      '-op', op, '-clients', String(clients), '-conns', String(Math.min(8, clients)), '-duration', duration,
    ];
    const out = auth ? await runAuthload(authloadBinary(), args, () => {}) : execFileSync(goload, args).toString();
    console.log(`${op} c=${clients}${url ? ' (URL endpoint)' : ''}${auth ? ' (auth on)' : ''}: ${out.trim().split('\n').pop()}  load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    member.kill('SIGTERM');
    await exited;
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
