// A store's open at scale, in-process (MvccStore.open, nothing else of a member): one
// store of --keys unique keys with --value-bytes values, opened again and again in
// fresh child processes, alternating between builds and ways in:
//
//   <build>:image     the key index image the previous close saved (index-image.ts)
//   <build>:records   that image removed first: every record read (a crash's restart)
//
// A build without images (before them) only reads records. Each open reports wall
// seconds, CPU seconds of the whole process (every thread: LevelDB reads on the pool),
// RSS and the JS heap after a GC.
//
//   npx tsc -p tsconfig.json && npx tsx bench/mvcc/open.ts [--keys 500000] [--value-bytes 1024]
//       [--rounds 3] [--builds new=.,base=/tmp/base]   (each a checkout built with tsc)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, repoRoot } from '../member.js';

const IMAGE_FILE = 'ETCDTS_KEY_INDEX';

interface MvccModule {
  MvccStore: {
    open(opts: { dir: string }): Promise<{
      put(req: { key: Buffer; value: Buffer; lease: bigint }, index: number): Promise<unknown>;
      commit(): Promise<void>;
      flushed(): Promise<void>;
      close(opts?: { saveIndex?: boolean }): Promise<void>;
      currentRevision: number;
    }>;
  };
}

async function load(build: string): Promise<MvccModule> {
  return (await import(pathToFileURL(path.join(build, 'dist/src/mvcc/index.js')).href)) as MvccModule;
}

/** Child: one open of `dir` with `build`, its figures on stdout as JSON. */
async function child(build: string, dir: string): Promise<void> {
  const { MvccStore } = await load(build);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const store = await MvccStore.open({ dir });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  (globalThis as { gc?: () => void }).gc?.();
  // what the member holds once the open's garbage is gone (a build may trim glibc's heap 1 s after)
  await new Promise((r) => setTimeout(r, 2000));
  const mem = process.memoryUsage();
  // saved for the next image open (a build before images ignores the option)
  await store.close({ saveIndex: true });
  console.log(JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, rssMb: mem.rss / 2 ** 20, heapMb: mem.heapUsed / 2 ** 20, rev: store.currentRevision }));
}

async function fill(build: string, dir: string, keys: number, valueBytes: number): Promise<void> {
  const { MvccStore } = await load(build);
  const store = await MvccStore.open({ dir });
  const value = Buffer.alloc(valueBytes, 0x61);
  for (let i = 0; i < keys; i++) {
    await store.put({ key: Buffer.from(`acked/${String(i).padStart(10, '0')}`), value, lease: 0n }, i + 1);
    // an apply batch as the member's: up to 10,000 entries per LevelDB batch
    if ((i + 1) % 10_000 === 0) await store.commit();
  }
  await store.commit();
  await store.flushed();
  await store.close({ saveIndex: true });
}

async function main(): Promise<void> {
  const keys = Number(arg('keys', '500000'));
  const valueBytes = Number(arg('value-bytes', '1024'));
  const rounds = Number(arg('rounds', '3'));
  const builds = arg('builds', `new=${repoRoot}`)
    .split(',')
    .map((b) => {
      const [name, dir] = b.split('=') as [string, string];
      return { name, dir: path.resolve(dir) };
    });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'open-bench-'));
  try {
    const f0 = performance.now();
    await fill(builds[0]!.dir, dir, keys, valueBytes);
    console.error(`filled ${keys} keys of ${valueBytes} B in ${((performance.now() - f0) / 1000).toFixed(0)} s`);
    const results: Array<{ variant: string; seconds: number; cpuSeconds: number; rssMb: number; heapMb: number; load: number }> = [];
    for (let round = 0; round < rounds; round++) {
      for (const b of round % 2 ? [...builds].reverse() : builds) {
        const hasImages = existsSync(path.join(b.dir, 'dist/src/mvcc/index-image.js'));
        // every open saves an image as it closes: "records" removes it first, and
        // "image" comes right after it, taking the image that open saved
        for (const way of hasImages ? ['records', 'image'] : ['records']) {
          if (way === 'records') rmSync(path.join(dir, IMAGE_FILE), { force: true });
          const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', b.dir, dir], { encoding: 'utf8' });
          if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
          const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; cpuSeconds: number; rssMb: number; heapMb: number };
          const row = { variant: `${b.name}:${way}`, ...out, load: os.loadavg()[0]! };
          results.push(row);
          console.error(JSON.stringify(row));
        }
      }
    }
    console.log(`\n${keys} keys of ${valueBytes} B, ${rounds} rounds, medians; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`${'variant'.padEnd(16)}${'wall s'.padStart(9)}${'CPU s'.padStart(9)}${'RSS MB'.padStart(9)}${'heap MB'.padStart(9)}`);
    for (const v of [...new Set(results.map((r) => r.variant))]) {
      const rs = results.filter((r) => r.variant === v);
      const med = (f: (r: (typeof rs)[0]) => number, d: number) => {
        const s = rs.map(f).sort((a, b) => a - b);
        return s[s.length >> 1]!.toFixed(d).padStart(9);
      };
      console.log(`${v.padEnd(16)}${med((r) => r.seconds, 2)}${med((r) => r.cpuSeconds, 2)}${med((r) => r.rssMb, 0)}${med((r) => r.heapMb, 0)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(process.argv[at + 1]!, process.argv[at + 2]!);
else await main();
