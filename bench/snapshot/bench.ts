// `etcdctl snapshot save` side by side: real etcd 3.4.23 and etcd-ts (compiled bin/etcd-ts),
// one member each, one after the other (alternating order by round), same disk, the same
// N keys × 256 random bytes written in txns of 100 puts. Reports MB/s of key-value data
// saved (N × 256 B over the wall time of `etcdctl snapshot save`, which includes etcdctl
// writing and fsyncing the file), the file sizes, and the member's RSS before the save and
// at its peak during it (sampled every 20 ms), split into anonymous memory (what the
// member allocates: the store must not be held in memory) and mapped file pages
// (LevelDB maps its table files, so reading the whole store maps them all).
//
//   npm run bench:snapshot -- [--keys 100000] [--rounds 1] [--servers etcd,etcd-ts]

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { arg, call, Clients, pool, rssSplitMb, type Server, startMember, stopMember } from '../member.js';

const run = promisify(execFile);

const servers = arg('servers', 'etcd,etcd-ts').split(',') as Server[];
const keyCount = Number(arg('keys', '100000'));
const rounds = Number(arg('rounds', '1'));
const VALUE_BYTES = 256;
/** under etcd's default --max-txn-ops of 128 */
const PUTS_PER_TXN = 100;
const RSS_SAMPLE_MS = 20;

interface Result {
  seconds: number;
  fileBytes: number;
  anonBeforeMb: number;
  anonPeakMb: number;
  fileBeforeMb: number;
  filePeakMb: number;
}

async function fill(c: Clients): Promise<void> {
  const txns = Math.ceil(keyCount / PUTS_PER_TXN);
  await pool(txns, 8, async (t) => {
    const success = [];
    for (let i = t * PUTS_PER_TXN; i < Math.min(keyCount, (t + 1) * PUTS_PER_TXN); i++) {
      success.push({ request_put: { key: Buffer.from(`bench/${String(i).padStart(8, '0')}`), value: randomBytes(VALUE_BYTES) } });
    }
    await call(c.kv[t % c.kv.length]!, 'Txn', { compare: [], success, failure: [] });
  });
}

async function measure(server: Server): Promise<Result> {
  const m = await startMember(server, { dirPrefix: '.bench-snap-' });
  const c = new Clients(m.addr);
  try {
    await fill(c);
    c.close();
    await new Promise((r) => setTimeout(r, 2000)); // let the last batch commit and the heap settle
    const pid = m.proc.pid!;
    const before = rssSplitMb(pid);
    const peak = { ...before };
    const sampler = setInterval(() => {
      const now = rssSplitMb(pid);
      peak.anon = Math.max(peak.anon, now.anon);
      peak.file = Math.max(peak.file, now.file);
    }, RSS_SAMPLE_MS);
    const file = path.join(m.dir, 'backup.db');
    const t0 = performance.now();
    try {
      await run('etcdctl', ['--endpoints', m.addr, '--command-timeout=600s', 'snapshot', 'save', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    const fileBytes = statSync(file).size;
    rmSync(file);
    return { seconds, fileBytes, anonBeforeMb: before.anon, anonPeakMb: peak.anon, fileBeforeMb: before.file, filePeakMb: peak.file };
  } finally {
    c.close();
    await stopMember(m);
  }
}

async function main(): Promise<void> {
  const results: Record<Server, Result[]> = { etcd: [], 'etcd-ts': [] };
  const dataMb = (keyCount * VALUE_BYTES) / 1e6;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      const r = await measure(s);
      results[s].push(r);
      console.error(
        `round ${round} ${s.padEnd(7)} ${r.seconds.toFixed(2)} s, ${(dataMb / r.seconds).toFixed(1)} MB/s, file ${(r.fileBytes / 1e6).toFixed(1)} MB, ` +
          `RSS anon ${r.anonBeforeMb.toFixed(0)} -> ${r.anonPeakMb.toFixed(0)} MB peak, file ${r.fileBeforeMb.toFixed(0)} -> ${r.filePeakMb.toFixed(0)} MB peak`,
      );
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`\nsnapshot save of ${keyCount} keys × ${VALUE_BYTES} B (${dataMb.toFixed(1)} MB of values), ${rounds} round(s); ${os.cpus().length} cores, load average ${load}`);
  console.log('server      MB/s  file MB  anon RSS before / peak  file RSS before / peak');
  for (const s of servers) {
    const rs = results[s];
    const m = (f: (r: Result) => number) => mean(rs.map(f)).toFixed(0);
    console.log(
      `${s.padEnd(8)} ${(dataMb / mean(rs.map((r) => r.seconds))).toFixed(1).padStart(7)} ${(mean(rs.map((r) => r.fileBytes)) / 1e6).toFixed(1).padStart(8)} ` +
        `${m((r) => r.anonBeforeMb).padStart(12)} / ${m((r) => r.anonPeakMb).padEnd(6)} MB ${m((r) => r.fileBeforeMb).padStart(11)} / ${m((r) => r.filePeakMb)} MB`,
    );
  }
  if (results.etcd.length > 0 && results['etcd-ts'].length > 0) {
    const seconds = (s: Server) => mean(results[s].map((r) => r.seconds));
    console.log(`etcd-ts / etcd save speed: ${(seconds('etcd') / seconds('etcd-ts')).toFixed(2)}x`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
