// The save's build of etcd's bbolt file from a store (writeEtcdBackend over a bucket view),
// in this process, without a member. Reports wall time and CPU seconds: all threads
// (process.cpuUsage) and the main thread alone (/proc/self/task/PID/stat), which the
// load of a shared machine moves far less than wall time.
//
//   npx tsx bench/snapshot/save-harness.ts [--keys 1000000] [--value-bytes 256] [--rounds 3] [--store DIR] [--keep FILE]
//
// The store (N keys × 256 random bytes, one revision each; --value-bytes other than 256:
// zero bytes, as goload's fill in bench/scale writes) is built once at DIR (default
// /tmp/save-harness-<keys>[-<value bytes>]) and kept for the next run; remove it when done. --keep FILE
// writes one more backup there, to feed import-harness.ts.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BucketRecords, buildStore, MvccStore } from '../../src/mvcc/index.js';
import { encodeKeyValue } from '../../src/mvcc/codec.js';
import { revisionBytes } from '../../src/mvcc/revision.js';
import { writeEtcdBackend } from '../../src/server/backup/etcd-db.js';
import { arg } from '../member.js';

const keys = Number(arg('keys', '1000000'));
const rounds = Number(arg('rounds', '3'));
const valueBytes = Number(arg('value-bytes', '256'));
const storeDir = arg('store', `/tmp/save-harness-${keys}${valueBytes === 256 ? '' : `-${valueBytes}`}`);
const keep = arg('keep', '');
const TICKS_PER_SECOND = 100;

async function* records(): AsyncGenerator<BucketRecords> {
  const value = valueBytes === 256 ? randomBytes(256) : Buffer.alloc(valueBytes);
  for (let at = 0; at < keys; at += 1000) {
    const entries: Array<[Buffer, Buffer]> = [];
    for (let i = at; i < Math.min(keys, at + 1000); i++) {
      const rev = i + 2;
      value.writeUInt32LE(i, 0);
      const kv = { key: Buffer.from(`key-${String(i).padStart(8, '0')}`), createRevision: rev, modRevision: rev, version: 1, value, lease: 0n };
      entries.push([revisionBytes(rev, 0), encodeKeyValue(kv)]);
    }
    yield { bucket: 'key', entries };
  }
  const ci = Buffer.alloc(8);
  ci.writeUInt32BE(keys + 10, 4);
  yield { bucket: 'meta', entries: [[Buffer.from('consistent_index'), ci]] };
}

function mainThreadCpu(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function measure(store: MvccStore, out: string, keepFile = false): Promise<string> {
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = performance.now();
  const view = store.bucketView();
  let size: number;
  try {
    ({ size } = await writeEtcdBackend(out, view, { members: [], removed: [], version: '3.4.0' }));
  } finally {
    await view.close();
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const main = mainThreadCpu() - main0;
  if (!keepFile) rmSync(out);
  const all = (cpu.user + cpu.system) / 1e6;
  return `wall ${wall.toFixed(2)} s  CPU all ${all.toFixed(2)} s  main thread ${main.toFixed(2)} s  ${(size / 1e6).toFixed(1)} MB  load ${os.loadavg()[0]!.toFixed(1)}`;
}

async function main(): Promise<void> {
  if (!existsSync(storeDir)) {
    const t0 = performance.now();
    await buildStore(storeDir, records());
    console.error(`built ${keys} keys at ${storeDir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const store = await MvccStore.open({ dir: storeDir, valueCacheBytes: 0 });
  const out = path.join(os.tmpdir(), `save-harness-${process.pid}.db`);
  try {
    for (let round = 0; round < rounds; round++) {
      console.log(`round ${round}  ${await measure(store, out)}`);
    }
    if (keep !== '') console.log(`kept: ${keep}  ${await measure(store, keep, true)}`);
  } finally {
    await store.close();
    rmSync(out, { force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
