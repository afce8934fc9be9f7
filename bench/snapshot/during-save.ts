// How a member answers its clients while it sends backups: goload's puts at one client
// while `etcdctl snapshot save` runs back to back, etcd 3.4.23 and etcd-ts in one run,
// the order alternating by round, as ratios. Each run is `split.ts --load` on a copy of
// the store kept at --keep (filled once per server, N keys × 256 random bytes).
//
//   npx tsx bench/snapshot/during-save.ts [--keys 1000000] [--rounds 2] [--duration 10s]
//       [--keep /tmp/during-save-store] [--ts DIR] [--goload /tmp/goload]

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { arg, repoRoot, type Server } from '../member.js';

const keys = arg('keys', '1000000');
const rounds = Number(arg('rounds', '2'));
const duration = arg('duration', '10s');
const keep = path.resolve(arg('keep', `/tmp/during-save-store-${keys}`));
const tsDir = arg('ts', '');
const goload = arg('goload', '/tmp/goload');

interface Run {
  opsPerS: number;
  p50: number;
  p99: number;
  saves: number;
}

async function run(server: Server): Promise<Run> {
  const args = ['tsx', path.join(repoRoot, 'bench/snapshot/split.ts'), '--keys', keys, '--keep', keep, '--server', server, '--load', duration, '--goload', goload];
  if (server === 'etcd-ts' && tsDir !== '') args.push('--ts', tsDir);
  const { stdout } = await promisify(execFile)('npx', args, { cwd: repoRoot, maxBuffer: 16 << 20 });
  const puts = /during saves: (\d+)\/s, p50 ([\d.]+) ms, p99 ([\d.]+) ms/.exec(stdout);
  const saves = /saves completed meanwhile: (\d+)/.exec(stdout);
  if (!puts || !saves) throw new Error(`split.ts --load printed no result:\n${stdout}`);
  return { opsPerS: Number(puts[1]), p50: Number(puts[2]), p99: Number(puts[3]), saves: Number(saves[1]) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const results: Record<Server, Run[]> = { etcd: [], 'etcd-ts': [] };
  for (let r = 0; r < rounds; r++) {
    const order: Server[] = r % 2 === 0 ? ['etcd', 'etcd-ts'] : ['etcd-ts', 'etcd'];
    for (const server of order) {
      const x = await run(server);
      results[server].push(x);
      console.log(`round ${r} ${server.padEnd(7)} ${x.opsPerS} puts/s, p50 ${x.p50} ms, p99 ${x.p99} ms, ${x.saves} saves`);
    }
  }
  console.log(`\nputs at 1 client during back-to-back saves of ${keys} keys, ${rounds} round(s) of ${duration}; medians`);
  console.log('server     puts/s   ratio  p50 ms  p99 ms  saves');
  for (const server of ['etcd', 'etcd-ts'] as const) {
    const xs = results[server];
    const ratios = xs.map((x, i) => x.opsPerS / results.etcd[i]!.opsPerS);
    const ratio = server === 'etcd' ? '' : median(ratios).toFixed(2);
    console.log(
      `${server.padEnd(9)} ${median(xs.map((x) => x.opsPerS)).toFixed(0).padStart(7)} ${ratio.padStart(7)} ${median(xs.map((x) => x.p50)).toFixed(2).padStart(7)} ${median(xs.map((x) => x.p99)).toFixed(2).padStart(7)} ${median(xs.map((x) => x.saves)).toFixed(0).padStart(6)}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
