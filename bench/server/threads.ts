// Where a member's CPU goes, thread by thread: one member under goload (etcd's Go client),
// the CPU each of its threads used during the load (/proc/PID/task/*/stat) divided by the
// operations done, for etcd-ts builds side by side (and real etcd's process total), each
// round starting every server afresh, in turn. "main" is etcd-ts's event loop (the gRPC
// server, raft, the WAL's encoding, apply); the other threads are grouped by the name the
// kernel has for them, which on Node 20 here is "node" for all of them alike: V8's helpers
// (parallel scavenges, concurrent marking, the optimizing compiler), the libuv pool (the
// WAL's durable write, LevelDB's batch write) and LevelDB's own compaction thread.
//
//   npx tsx bench/server/threads.ts -- [--op put] [--clients 64] [--duration 5s] [--rounds 3]
//       [--goload /tmp/goload] [--ts LABEL=DIR[,VAR=VALUE...]]... [--no-etcd]

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { arg, type Member, startMember, stopMember, tsBuildsFromArgs } from '../member.js';
import { threadCpu } from '../thread-cpu.js';

const op = arg('op', 'put');
const clients = arg('clients', '64');
const duration = arg('duration', '5s');
const rounds = Number(arg('rounds', '3'));
const goload = arg('goload', '/tmp/goload');
const withEtcd = !process.argv.includes('--no-etcd');


interface Sample {
  opsPerS: number;
  /** µs of CPU per operation by thread group, and "total" */
  usPerOp: Map<string, number>;
}

async function measure(m: Member): Promise<Sample> {
  const pid = m.proc.pid!;
  execFileSync(goload, ['-endpoints', m.addr, '-op', 'fill', '-keys', '1000']);
  const before = threadCpu(pid);
  const out = execFileSync(goload, ['-endpoints', m.addr, '-op', op, '-clients', clients, '-conns', '8', '-duration', duration]).toString();
  const after = threadCpu(pid);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { ops: number; ops_per_s: number };
  const usPerOp = new Map<string, number>();
  let total = 0;
  for (const [group, s] of after) {
    const used = s - (before.get(group) ?? 0);
    total += used;
    usPerOp.set(group, (used * 1e6) / r.ops);
  }
  usPerOp.set('total', (total * 1e6) / r.ops);
  return { opsPerS: r.ops_per_s, usPerOp };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const builds = tsBuildsFromArgs();
  const servers = [...(withEtcd ? [{ label: 'etcd', dir: '', env: {} }] : []), ...builds];
  const samples = new Map<string, Sample[]>(servers.map((s) => [s.label, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const s of servers) {
      const m = await startMember(s.label === 'etcd' ? 'etcd' : 'etcd-ts', { tsDir: s.dir || undefined, env: s.env });
      try {
        const r = await measure(m);
        samples.get(s.label)!.push(r);
        const parts = [...r.usPerOp].map(([g, us]) => `${g} ${us.toFixed(1)}`).join(', ');
        console.log(`round ${round} ${s.label}: ${r.opsPerS.toFixed(0)} ops/s; CPU µs/op: ${parts}`);
      } finally {
        await stopMember(m);
      }
    }
  }
  console.log(`\n${op} c=${clients}, ${rounds} rounds of ${duration}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; medians:`);
  for (const [label, rs] of samples) {
    const groups = [...new Set(rs.flatMap((r) => [...r.usPerOp.keys()]))];
    const parts = groups.map((g) => `${g} ${median(rs.map((r) => r.usPerOp.get(g) ?? 0)).toFixed(1)}`).join(', ');
    console.log(`  ${label.padEnd(8)} ${median(rs.map((r) => r.opsPerS)).toFixed(0).padStart(6)} ops/s; CPU µs/op: ${parts}`);
  }
}

await main();
