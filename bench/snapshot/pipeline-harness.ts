// The save's JavaScript alone: a million revision records, as classic-level hands them to
// the export's worker (the LevelDB key as a string, the value as a Buffer, in batches of
// 1000), through the bbolt stream writer to an output that only counts the bytes. No
// LevelDB, no thread, no client: what the worker's own code costs per record, which a
// save's wall time hides under the CPU the rest of the machine takes.
//
//   npx tsx bench/snapshot/pipeline-harness.ts [--keys 1000000] [--rounds 5]

import { randomBytes } from 'node:crypto';
import { DEFAULT_PAGE_SIZE, planStreamLayout, streamBolt } from '../../src/bbolt/index.js';
import { encodeKeyValue } from '../../src/mvcc/codec.js';
import { REV_BYTES_LEN, revisionDbKey } from '../../src/mvcc/revision.js';
import { arg } from '../member.js';

const keys = Number(arg('keys', '1000000'));
const rounds = Number(arg('rounds', '5'));

const batches: Array<Array<readonly [string, Buffer]>> = [];
let dataBytes = 0;
let maxPairBytes = 0;
const value = randomBytes(256);
for (let at = 0; at < keys; at += 1000) {
  const batch: Array<readonly [string, Buffer]> = [];
  for (let i = at; i < Math.min(keys, at + 1000); i++) {
    const rev = i + 2;
    const kv = encodeKeyValue({ key: Buffer.from(`key-${String(i).padStart(8, '0')}`), createRevision: rev, modRevision: rev, version: 1, value, lease: 0n });
    batch.push([revisionDbKey(rev, 0, false).toString('latin1'), kv]);
    dataBytes += REV_BYTES_LEN + kv.length;
    maxPairBytes = Math.max(maxPairBytes, REV_BYTES_LEN + kv.length);
  }
  batches.push(batch);
}
const layout = planStreamLayout([{ name: Buffer.from('key'), records: keys, dataBytes, maxPairBytes, maxKeyBytes: REV_BYTES_LEN }], DEFAULT_PAGE_SIZE)!;

async function* records(): AsyncGenerator<ReadonlyArray<readonly [string, Buffer]>> {
  for (const b of batches) {
    yield b;
    // as the export's abortable() lets its event loop run between batches
    await new Promise((resolve) => setImmediate(resolve));
  }
}

for (let round = 0; round < rounds; round++) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  await streamBolt(
    layout,
    (async function* () {
      yield { name: Buffer.from('key'), entries: records() };
    })(),
    async (bufs) => {
      for (const b of bufs) bytes += b.length;
    },
  );
  const cpu = process.cpuUsage(cpu0);
  console.log(`round ${round}  wall ${(performance.now() - t0).toFixed(0)} ms  CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms  ${(bytes / 1e6).toFixed(1)} MB`);
}
