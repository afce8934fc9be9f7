// writeBolt against real bbolt: every file it writes passes bbolt's check and reads back
// identically through bbolt and through BoltFile; seeded random bucket sets (a seed is in
// every failure message); damaged copies are refused, never misread.

import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BoltFile, BoltFormatError, type BucketSource, writeBolt } from '../../src/bbolt/index.js';
import { seededRandom } from '../../src/pkg/rng.js';
import { cleanup, tempDir } from '../e2e/harness.js';
import { boltCheck, boltDump, ourDump } from './real-bolt.js';

type Data = Array<{ name: Buffer; entries: Array<[Buffer, Buffer]> }>;

/** `data` as writeBolt takes it, each bucket's entries cut into batches of 1 to 300 (seeded). */
async function* source(data: Data, seed = 0): AsyncIterable<BucketSource> {
  const rand = seededRandom(seed);
  for (const b of data) {
    yield {
      name: b.name,
      entries: (async function* () {
        for (let i = 0; i < b.entries.length; ) {
          const n = 1 + Math.floor(rand() * 300);
          yield b.entries.slice(i, i + n);
          i += n;
        }
      })(),
    };
  }
}

const dumpOf = (data: Data): string =>
  data.map((b) => `B ${b.name.toString('hex')}\n${b.entries.map(([k, v]) => `K ${k.toString('hex')} ${v.toString('hex')}\n`).join('')}`).join('');

function bytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function sortedUnique(keys: Buffer[]): Buffer[] {
  keys.sort(Buffer.compare);
  return keys.filter((k, i) => i === 0 || !k.equals(keys[i - 1]!));
}

/**
 * A random database: 1-5 buckets, each empty, tiny, or a few hundred keys of mixed sizes;
 * `small` keeps values to a page or two (a file of at most a few MB, nearly all of it
 * branch, leaf and overflow-head pages) instead of up to 1 MiB (files up to ~20 MB,
 * mostly overflow pages of value bytes).
 */
function randomData(seed: number, small = false): Data {
  const rand = seededRandom(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = sortedUnique(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => bytes(rand, 1 + Math.floor(rand() * 12))));
  return names.map((name) => {
    const n = pick([0, 1, 3, 20, 300]);
    const keys = sortedUnique(
      Array.from({ length: n }, () => bytes(rand, pick([1, 1, 2, 8, 17, 64, 300, 4096]))),
    );
    return {
      name,
      entries: keys.map((k): [Buffer, Buffer] => [k, bytes(rand, pick([0, 0, 1, 10, 100, 1000, 5000, small ? 9000 : rand() < 0.05 ? 1 << 20 : 70_000]))]),
    };
  });
}

describe('writeBolt', () => {
  const dir = tempDir('etcd-ts-bbolt-w-');
  afterAll(cleanup);
  let n = 0;
  const fresh = () => path.join(dir, `w${n++}.db`);

  async function verify(file: string, data: Data, why: string): Promise<void> {
    const check = await boltCheck(file);
    expect(check.output, why).toBe('');
    expect(check.ok, why).toBe(true);
    const expected = dumpOf(data);
    expect((await boltDump(file)) === expected, `${why}: bbolt reads what was written`).toBe(true);
    expect((await ourDump(file)) === expected, `${why}: BoltFile reads what was written`).toBe(true);
  }

  it('writes seeded random bucket sets that bbolt checks clean and reads back exactly', async () => {
    const seed0 = Number(process.env.BBOLT_SEED ?? Date.now() % 1_000_000);
    for (let i = 0; i < 12; i++) {
      const seed = seed0 + i;
      const data = randomData(seed);
      const file = fresh();
      await writeBolt(file, source(data, seed));
      await verify(file, data, `seed ${seed} (rerun with BBOLT_SEED=${seed})`);
    }
  });

  it('writes an empty bucket, a 100k-key bucket and 1 MiB values; the size is whole pages', async () => {
    const rand = seededRandom(1);
    const big: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < 100_000; i++) {
      const k = Buffer.alloc(8);
      k.writeBigUInt64BE(BigInt(i * 7 + 3));
      big.push([k, bytes(rand, Math.floor(rand() * 40))]);
    }
    const data: Data = [
      { name: Buffer.from('a-empty'), entries: [] },
      { name: Buffer.from('b-100k'), entries: big },
      { name: Buffer.from('c-huge'), entries: [[Buffer.from('x'), bytes(rand, 1 << 20)], [Buffer.from('y'), Buffer.alloc(0)], [Buffer.from('z'), bytes(rand, (1 << 20) + 1)]] },
    ];
    const file = fresh();
    const r = await writeBolt(file, source(data));
    expect(r.keys).toBe(100_003);
    expect(statSync(file).size).toBe(r.size);
    expect(r.size % 4096).toBe(0);
    await verify(file, data, '100k keys');
    const f = await BoltFile.open(file);
    expect(f.pageSize).toBe(4096);
    await f.close();
  });

  it('refuses unsorted, duplicate and empty keys and bucket names, and leaves no file', async () => {
    const k = (s: string) => Buffer.from(s);
    const cases: Array<[Data, RegExp]> = [
      [[{ name: k('b'), entries: [[k('2'), k('')], [k('1'), k('')]] }], /key 31 in bucket "b" does not sort after 32/],
      [[{ name: k('b'), entries: [[k('1'), k('')], [k('1'), k('')]] }], /does not sort after/],
      [[{ name: k('b'), entries: [[k(''), k('v')]] }], /empty key in bucket "b"/],
      [[{ name: k('b'), entries: [] }, { name: k('a'), entries: [] }], /bucket name 61 in the root bucket does not sort after 62/],
      [[{ name: k(''), entries: [] }], /empty bucket name/],
      [[{ name: k('b'), entries: [[Buffer.alloc(32769, 1), k('')]] }], /exceeds bbolt's 32768/],
    ];
    for (const [data, msg] of cases) {
      const file = fresh();
      await expect(writeBolt(file, source(data))).rejects.toThrow(msg);
      expect(existsSync(file)).toBe(false);
    }
  });

  it('takes keys as a prefix character and hex digits (the store\'s revision keys): the bytes they spell, and a clear error for one that is not hex', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${String(i).padStart(6, '0')}_\xff`, 'latin1'));
    const values = keys.map((k, i) => Buffer.alloc(i % 300, i));
    const asHex = (k: Buffer) => `k${k.toString('hex')}`;
    const hexSource = async function* (): AsyncIterable<BucketSource> {
      yield { name: Buffer.from('key'), entries: (async function* () { yield keys.map((k, i) => [asHex(k), values[i]!] as const); })() };
    };
    const file = fresh();
    await writeBolt(file, hexSource());
    await boltCheck(file);
    await verify(file, [{ name: Buffer.from('key'), entries: keys.map((k, i) => [k, values[i]!]) }], 'hex keys');

    const bad = fresh();
    const badSource = async function* (): AsyncIterable<BucketSource> {
      yield { name: Buffer.from('key'), entries: (async function* () { yield [['k00zz', Buffer.from('v')] as const]; })() };
    };
    await expect(writeBolt(bad, badSource())).rejects.toThrow('bbolt: key "k00zz" is not a prefix and hex digits');
    expect(existsSync(bad)).toBe(false);
  });

  it('damaged copies: truncation and bad metas are refused by both; a random bit flip is refused or read exactly as bbolt reads it', async () => {
    const seed = Number(process.env.BBOLT_SEED ?? Date.now() % 1_000_000);
    const why = `seed ${seed} (rerun with BBOLT_SEED=${seed})`;
    const rand = seededRandom(seed);
    // small values: a flip lands on structure, not on value bytes both read alike, and
    // each of the 30 copies costs a fraction of a second to check, whatever the seed
    const data = randomData(seed, true).concat([{ name: Buffer.from('\xff\xffmany', 'latin1'), entries: Array.from({ length: 2000 }, (_, i): [Buffer, Buffer] => [Buffer.from(`k${String(i).padStart(5, '0')}`), Buffer.from(`v${i}`)]) }]);
    const good = fresh();
    await writeBolt(good, source(data));
    const original = readFileSync(good);
    const pages = original.length / 4096;

    const truncated = fresh();
    const cut = 4096 * (2 + Math.floor(rand() * (pages - 2)));
    writeFileSync(truncated, original.subarray(0, cut));
    await expect(ourDump(truncated), why).rejects.toThrow(/truncated/);
    expect((await boltCheck(truncated)).ok, why).toBe(false);

    const metas = fresh();
    const m = Buffer.from(original);
    m[16 + 8 + Math.floor(rand() * 48)] ^= 1 << Math.floor(rand() * 8);
    m[4096 + 16 + 8 + Math.floor(rand() * 48)] ^= 1 << Math.floor(rand() * 8);
    writeFileSync(metas, m);
    await expect(ourDump(metas), why).rejects.toThrow(/no valid meta page/);
    expect((await boltCheck(metas)).ok, why).toBe(false);

    // Random flips in page headers and element tables, where structure lives.
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      const b = Buffer.from(original);
      const page = 2 + Math.floor(rand() * (pages - 2));
      const at = page * 4096 + Math.floor(rand() * 64);
      const bit = Math.floor(rand() * 8);
      b[at] ^= 1 << bit;
      const file = fresh();
      writeFileSync(file, b);
      const what = `${why}: flip bit ${bit} of byte ${at} (page ${page})`;
      let ours: string | undefined;
      try {
        ours = await ourDump(file);
      } catch (err) {
        expect(err, what).toBeInstanceOf(BoltFormatError);
        expect((err as Error).message.startsWith(`${file}: `), what).toBe(true);
        refused++;
        continue;
      }
      // Read without complaint: then it must be exactly what real bbolt reads.
      expect((await boltCheck(file)).ok, what).toBe(true);
      expect((await boltDump(file)) === ours, what).toBe(true);
    }
    expect(refused, why).toBeGreaterThan(0);
  });
});
