// Memory side by side: real etcd 3.4.23 and etcd-ts (compiled bin/etcd-ts), one after the
// other on free ports, driven by the same load, RSS read from /proc/<pid>/status after a
// settle pause, split into anonymous and file pages (both stores map their data files:
// reads show up as file pages the kernel can take back). Stages: idle; 100 k puts of
// distinct keys (256-byte random values); 100 k leases (TTL one hour, so none expires);
// then rounds of "overwrite the same 100 k keys, compact to the current revision".
//
//   npx tsx bench/memory/bench.ts [--servers etcd,etcd-ts,base=/tmp/base] [--keys 100000] [--leases 100000]
//                                 [--rounds 5] [--settle 5] [--node-options '--max-semi-space-size=4']
//                                 [--snapshot-count 10000] [--heap-log FILE]   (etcd-ts: JS heap / external / native split per stage)
//                                 [--server-args '--experimental-enable-lease-checkpoint --experimental-enable-lease-checkpoint-persist']   (both servers)
//
// --servers: `etcd`, `etcd-ts` (this checkout) and LABEL=DIR (the etcd-ts build at DIR, a
// built checkout: an old commit beside the new one), measured one after the other in that
// order; every etcd-ts column gets its ratio to etcd's.
//
// The puts go as txns of 10 puts each (one raft entry, one revision per txn): a Node
// client spends ~300 µs of CPU per call, and 600 k single puts per server would take most
// of the time budget on this 2-core machine. Leases cannot be batched and go one grant per call, 256 in flight.

import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, call, Clients, type Member, pool, repoRoot, rssMb, rssSplitMb, serverTargets, startMember, type Target, stopMember } from '../member.js';

const targets = serverTargets(arg('servers', 'etcd,etcd-ts'));
const keyCount = Number(arg('keys', '100000'));
const leaseCount = Number(arg('leases', '100000'));
const rounds = Number(arg('rounds', '5'));
const settleMs = Number(arg('settle', '5')) * 1000;
const nodeOptions = arg('node-options', '');
/** flags for both servers, after the bench's own */
const serverArgs = arg('server-args', '').split(' ').filter(Boolean);
/** etcd-ts only: after each RSS reading, collect garbage in the member and log its heap figures here */
const heapLog = arg('heap-log', '');
const PUTS_PER_TXN = 10;
/**
 * Both servers keep the raft log since the last snapshot (plus 5000 entries) in memory.
 * A txn of 10 puts is one entry, so etcd's default of 100 k entries would hold ten times
 * the bytes a plain-put load does; scaled down by the same factor, the log holds what it
 * would under 100 k plain puts.
 */
const snapshotCount = arg('snapshot-count', '10000');
const VALUE_BYTES = 256;

const keyOf = (i: number) => Buffer.from(`bench/${String(i).padStart(8, '0')}`);

/** Writes every key once (random values, so neither store can compress them away); returns the last revision. */
async function putAll(c: Clients): Promise<number> {
  let rev = 0;
  const txns = Math.ceil(keyCount / PUTS_PER_TXN);
  await pool(txns, 16, async (t) => {
    const success = [];
    for (let i = t * PUTS_PER_TXN; i < Math.min(keyCount, (t + 1) * PUTS_PER_TXN); i++) {
      success.push({ request_put: { key: keyOf(i), value: randomBytes(VALUE_BYTES) } });
    }
    const r = await call<{ header: { revision: string } }>(c.kv[t % c.kv.length]!, 'Txn', { compare: [], success, failure: [] });
    rev = Math.max(rev, Number(r.header.revision));
  });
  return rev;
}

async function grantAll(c: Clients): Promise<void> {
  await pool(leaseCount, 256, async (i) => {
    await call(c.lease[i % c.lease.length]!, 'LeaseGrant', { TTL: 3600, ID: 0 });
  });
}

function start(t: Target): Promise<Member> {
  const nodeArgs = nodeOptions.split(' ').filter(Boolean);
  if (heapLog) nodeArgs.push('--expose-gc', '--import', path.join(repoRoot, 'bench/memory/heap-log.mjs'));
  return startMember(t.server, { dirPrefix: '.bench-mem-', args: ['--snapshot-count', snapshotCount, ...serverArgs], nodeArgs, tsDir: t.tsDir, env: { HEAP_LOG: heapLog } });
}

/** RSS after the settle pause, split: anonymous (what the process allocated) and file pages (LevelDB's and bbolt's mapped data files, the binary) */
interface Reading {
  rss: number;
  anon: number;
  file: number;
}

async function settledReading(pid: number): Promise<Reading> {
  await new Promise((r) => setTimeout(r, settleMs));
  return { rss: rssMb(pid), ...rssSplitMb(pid) };
}

async function measure(t: Target): Promise<Map<string, Reading>> {
  const out = new Map<string, Reading>();
  const m = await start(t);
  const c = new Clients(m.addr);
  const pid = m.proc.pid!;
  let loadStart = performance.now();
  const record = async (stage: string) => {
    const loadSeconds = (performance.now() - loadStart) / 1000;
    const r = await settledReading(pid);
    out.set(stage, r);
    console.error(
      `${t.label.padEnd(7)} ${stage.padEnd(22)} ${r.rss.toFixed(0)} MB (anon ${r.anon.toFixed(0)}, file ${r.file.toFixed(0)})  load took ${loadSeconds.toFixed(1)} s, load average ${os.loadavg()[0]!.toFixed(1)}`,
    );
    if (heapLog && t.server === 'etcd-ts') {
      appendFileSync(heapLog, `${JSON.stringify({ server: t.label, stage, rssMb: Math.round(r.rss) })}\n`);
      m.proc.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 2000));
      appendFileSync(heapLog, `${JSON.stringify({ server: t.label, stage, rssMbAfterGc: Math.round(rssMb(pid)) })}\n`);
    }
    loadStart = performance.now();
  };
  try {
    await record('idle');
    await putAll(c);
    await record(KEYS_STAGE);
    await grantAll(c);
    await record(LEASES_STAGE);
    for (let r = 1; r <= rounds; r++) {
      const rev = await putAll(c);
      await call(c.kv[0]!, 'Compact', { revision: rev, physical: true });
      await record(`overwrite+compact #${r}`);
    }
  } finally {
    c.close();
    await stopMember(m);
  }
  return out;
}

const KEYS_STAGE = `+${keyCount / 1000}k keys`;
const LEASES_STAGE = `+${leaseCount / 1000}k leases`;

async function main(): Promise<void> {
  const results = new Map<string, Map<string, Reading>>();
  for (const t of targets) results.set(t.label, await measure(t));
  const stages = [...results.values().next().value!.keys()];
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const etcd = results.get('etcd');
  const tsLabels = targets.filter((t) => t.server === 'etcd-ts').map((t) => t.label);
  const ratioLabels = etcd === undefined ? [] : tsLabels;
  const cell = (r: Reading) => `${r.rss.toFixed(0)} (${r.anon.toFixed(0)}+${r.file.toFixed(0)})`.padStart(16);
  console.log(`\nRSS in MB (anon+file) after a ${settleMs / 1000} s settle; ${os.cpus().length} cores, load average ${load}`);
  console.log(`${'stage'.padEnd(22)} ${targets.map((t) => t.label.padStart(16)).join(' ')}${ratioLabels.map((l) => `${l}/etcd`.padStart(14)).join('')}`);
  for (const stage of stages) {
    const row = targets.map((t) => cell(results.get(t.label)!.get(stage)!)).join(' ');
    const ratios = ratioLabels.map((l) => (results.get(l)!.get(stage)!.rss / etcd!.get(stage)!.rss).toFixed(2).padStart(14)).join('');
    console.log(`${stage.padEnd(22)} ${row}${ratios}`);
  }
  // what the load added, scaled to 100 k: the stage minus the stage before it
  for (const t of targets) {
    const r = results.get(t.label)!;
    const per100k = (stage: string, before: string, n: number) => ((r.get(stage)!.rss - r.get(before)!.rss) * 100_000) / n;
    const keys = keyCount > 0 ? `${per100k(KEYS_STAGE, 'idle', keyCount).toFixed(0)} MB per 100k keys` : '';
    const leases = leaseCount > 0 ? `${per100k(LEASES_STAGE, KEYS_STAGE, leaseCount).toFixed(0)} MB per 100k leases` : '';
    console.log(`${t.label}: ${[keys, leases].filter(Boolean).join(', ')}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
