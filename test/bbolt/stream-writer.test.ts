// streamBolt against real bbolt: a file sent front to back in a layout fixed from the
// buckets' sizes before the first key (stream-layout.ts) passes bbolt's check and reads
// back exactly, and the sizes' bound holds however the keys and values are sized
// (seeded; the seed is in every failure message).

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BucketSource } from '../../src/bbolt/index.js';
import { type BucketSize, bucketPagesBound, planStreamLayout } from '../../src/bbolt/stream-layout.js';
import { streamBolt } from '../../src/bbolt/stream-writer.js';
import { seededRandom } from '../../src/pkg/rng.js';
import { cleanup, tempDir } from '../e2e/harness.js';
import { boltCheck, boltDump, ourDump } from './real-bolt.js';

type Data = Array<{ name: Buffer; entries: Array<[Buffer, Buffer]> }>;

async function* source(data: Data): AsyncIterable<BucketSource> {
  for (const b of data) {
    yield {
      name: b.name,
      entries: (async function* () {
        for (let i = 0; i < b.entries.length; i += 1000) yield b.entries.slice(i, i + 1000);
      })(),
    };
  }
}

const dumpOf = (data: Data): string =>
  data.map((b) => `B ${b.name.toString('hex')}\n${b.entries.map(([k, v]) => `K ${k.toString('hex')} ${v.toString('hex')}\n`).join('')}`).join('');

function sizes(data: Data): BucketSize[] {
  return data.map((b) => ({
    name: b.name,
    records: b.entries.length,
    dataBytes: b.entries.reduce((n, [k, v]) => n + k.length + v.length, 0),
    maxPairBytes: Math.max(0, ...b.entries.map(([k, v]) => k.length + v.length)),
    maxKeyBytes: Math.max(0, ...b.entries.map(([k]) => k.length)),
  }));
}

/** `n` sorted unique keys of `keyBytes` bytes, each with a value of `valueBytes()` bytes. */
function bucket(name: string, n: number, keyBytes: number, valueBytes: () => number): Data[number] {
  const entries: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < n; i++) {
    const k = Buffer.alloc(keyBytes);
    k.writeUIntBE(i, keyBytes - Math.min(6, keyBytes), Math.min(6, keyBytes));
    entries.push([k, Buffer.alloc(valueBytes(), i % 251)]);
  }
  return { name: Buffer.from(name), entries };
}

/** Sends the file into `file`, as a client would receive it; checks it is the layout's size. */
async function streamTo(file: string, data: Data): Promise<{ size: number; keys: number }> {
  const layout = planStreamLayout(sizes(data), 4096);
  if (layout === undefined) throw new Error('no layout');
  const got: Buffer[] = [];
  const r = await streamBolt(layout, source(data), async (bufs) => {
    for (const b of bufs) got.push(Buffer.from(b));
  });
  const all = Buffer.concat(got);
  expect(all.length).toBe(layout.size);
  writeFileSync(file, all);
  return r;
}

describe('streamBolt', () => {
  const dir = tempDir('etcd-ts-bbolt-s-');
  afterAll(cleanup);
  let n = 0;
  const fresh = () => path.join(dir, `s${n++}.db`);

  async function verify(file: string, data: Data, why: string): Promise<void> {
    const check = await boltCheck(file);
    expect(check.output, why).toBe('');
    expect(check.ok, why).toBe(true);
    const expected = dumpOf(data);
    expect((await boltDump(file)) === expected, `${why}: bbolt reads what was sent`).toBe(true);
    expect((await ourDump(file)) === expected, `${why}: BoltFile reads what was sent`).toBe(true);
  }

  it("sends etcd's shape of store (inline buckets, 100k revisions of 256-byte values) that bbolt checks clean and reads back", async () => {
    const data: Data = [
      bucket('alarm', 0, 1, () => 0),
      bucket('key', 100_000, 17, () => 290),
      bucket('lease', 3000, 8, () => 20),
      bucket('members', 3, 16, () => 120),
      bucket('meta', 3, 20, () => 8),
    ];
    const file = fresh();
    const r = await streamTo(file, data);
    expect(r.keys).toBe(103_006);
    await verify(file, data, 'etcd-shaped');
  });

  it('never outgrows the bound, whatever the sizes (seeded), and each file passes bbolt check', async () => {
    const seed0 = Number(process.env.BBOLT_SEED ?? Date.now() % 1_000_000);
    for (let i = 0; i < 8; i++) {
      const seed = seed0 + i;
      const rand = seededRandom(seed);
      // sizes up to the bound's limit (a quarter page per element), small and large mixed
      const max = Math.floor(rand() * 1000) + 1;
      const data: Data = [
        bucket('a', Math.floor(rand() * 20_000), 1 + Math.floor(rand() * 8) + 8, () => Math.floor(rand() * Math.max(1, max - 20))),
        bucket('b', Math.floor(rand() * 50), 4, () => Math.floor(rand() * 30)),
      ];
      const file = fresh();
      await streamTo(file, data);
      await verify(file, data, `seed ${seed} (rerun with BBOLT_SEED=${seed})`);
    }
  });

  it('has no layout for elements above a quarter page (those buckets are written to a file first)', () => {
    const b: BucketSize = { name: Buffer.from('k'), records: 10, dataBytes: 20_000, maxPairBytes: 2000, maxKeyBytes: 10 };
    expect(bucketPagesBound(b, 4096)).toBeUndefined();
    expect(planStreamLayout([b], 4096)).toBeUndefined();
  });
});
