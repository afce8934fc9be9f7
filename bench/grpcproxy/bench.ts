// Watch coalescing side by side: N watchers on one key (default 10,000, 100 to a
// stream) opened directly on a member, through etcd-ts's grpc-proxy, and through real
// etcd 3.4.23's grpc-proxy, in one run against one real etcd 3.4.23 member. For each:
// the watchers the member holds for them (etcd_debugging_mvcc_watcher_total, less what
// was there before), the RSS of whatever serves the watchers (the proxy, or the member
// when direct), and the event delivery rate: E puts to the key, N × E events delivered,
// divided by the time from the first put to the last delivery. Ratios are etcd-ts's
// proxy over etcd's.
//
//   npx tsx bench/grpcproxy/bench.ts [--watchers 10000] [--per-stream 100] [--events 20]
//                                    [--setups direct,etcd-ts,etcd]

import * as grpc from '@grpc/grpc-js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';
import { pkg } from '../member.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

type Setup = 'direct' | 'etcd-ts' | 'etcd';
const setups = arg('setups', 'direct,etcd-ts,etcd').split(',') as Setup[];
const watchers = Number(arg('watchers', '10000'));
const perStream = Number(arg('per-stream', '100'));
const events = Number(arg('events', '20'));


interface Proc {
  proc: ChildProcess;
  output(): string;
}

function start(cmd: string, args: string[]): Proc {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

async function waitOutput(p: Proc, text: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!p.output().includes(text)) {
    if (Date.now() > deadline || p.proc.exitCode !== null) throw new Error(`no "${text}" in:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null) return;
  const exited = new Promise((r) => p.proc.once('exit', r));
  p.proc.kill('SIGTERM');
  await exited;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function memberWatchers(url: string): Promise<number> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  return Number(/^etcd_debugging_mvcc_watcher_total (\S+)$/m.exec(text)?.[1]);
}

async function settle<T>(read: () => Promise<T>, ms = 1500): Promise<T> {
  await new Promise((r) => setTimeout(r, ms));
  return read();
}

interface Row { setup: Setup; memberWatchers: number; rssMb: number; deliveriesPerSec: number }

async function run(setup: Setup, memberUrl: string, memberPid: number, put: grpc.Client): Promise<Row> {
  let proxy: Proc | undefined;
  let target = memberUrl.replace('http://', '');
  if (setup !== 'direct') {
    const port = await freePort();
    target = `127.0.0.1:${port}`;
    const args = ['grpc-proxy', 'start', '--endpoints', memberUrl, '--listen-addr', target];
    proxy = setup === 'etcd' ? start('etcd', args) : start(path.join(repoRoot, 'bin/etcd-ts'), args);
    await waitOutput(proxy, 'started gRPC proxy');
  }
  try {
    const before = await settle(() => memberWatchers(memberUrl));
    const client = new pkg.etcdserverpb.Watch!(target, grpc.credentials.createInsecure());
    let created = 0;
    let delivered = 0;
    const want = watchers * events;
    let allDelivered!: () => void;
    const done = new Promise<void>((r) => (allDelivered = r));
    const calls: grpc.ClientDuplexStream<object, { created: boolean; events: unknown[] }>[] = [];
    for (let s = 0; s * perStream < watchers; s++) {
      const call = (client as unknown as { Watch(): (typeof calls)[number] }).Watch();
      call.on('error', () => undefined);
      call.on('data', (r) => {
        if (r.created) created++;
        delivered += r.events.length;
        if (delivered === want) allDelivered();
      });
      for (let i = 0; i < perStream && s * perStream + i < watchers; i++) call.write({ create_request: { key: Buffer.from('bench-hot') } });
      calls.push(call);
    }
    while (created < watchers) await new Promise((r) => setTimeout(r, 50));
    const held = (await settle(() => memberWatchers(memberUrl))) - before;
    const rss = rssMb(proxy?.proc.pid ?? memberPid);
    const t0 = performance.now();
    for (let i = 0; i < events; i++) {
      await new Promise<void>((resolve, reject) =>
        (put as unknown as { Put(r: object, cb: (e: Error | null) => void): void }).Put({ key: Buffer.from('bench-hot'), value: Buffer.from(String(i)) }, (e) => (e ? reject(e) : resolve())),
      );
    }
    await done;
    const seconds = (performance.now() - t0) / 1000;
    for (const c of calls) c.cancel();
    client.close();
    return { setup, memberWatchers: held, rssMb: rss, deliveriesPerSec: want / seconds };
  } finally {
    if (proxy) await stop(proxy);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-grpcproxy-'));
  const [client, peer] = [await freePort(), await freePort()];
  const memberUrl = `http://127.0.0.1:${client}`;
  const member = start('etcd', [
    '--name', 'bench', '--data-dir', path.join(dir, 'bench.etcd'),
    '--listen-client-urls', memberUrl, '--advertise-client-urls', memberUrl,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
  ]);
  const put = new pkg.etcdserverpb.KV!(memberUrl.replace('http://', ''), grpc.credentials.createInsecure());
  try {
    await waitOutput(member, 'ready to serve client requests');
    const rows: Row[] = [];
    for (const s of setups) rows.push(await run(s, memberUrl, member.proc.pid!, put));
    console.log(`${watchers} watchers on one key (${perStream} per stream), ${events} puts, upstream: one etcd 3.4.23 member`);
    console.log('setup                     member watchers   RSS (MB)   deliveries/s');
    for (const r of rows) {
      const name = r.setup === 'direct' ? 'direct on the member' : `${r.setup} grpc-proxy`;
      console.log(`${name.padEnd(26)}${String(r.memberWatchers).padStart(15)}${r.rssMb.toFixed(0).padStart(11)}${r.deliveriesPerSec.toFixed(0).padStart(15)}`);
    }
    const ts = rows.find((r) => r.setup === 'etcd-ts');
    const go = rows.find((r) => r.setup === 'etcd');
    if (ts && go) {
      console.log(`etcd-ts proxy / etcd proxy: RSS ×${(ts.rssMb / go.rssMb).toFixed(2)}, delivery rate ×${(ts.deliveriesPerSec / go.deliveriesPerSec).toFixed(2)}`);
    }
  } finally {
    put.close();
    await stop(member);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
