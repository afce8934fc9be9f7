// The native heap trimmer with glibc's real malloc_trim: that a trim gives back the free
// pages glibc keeps resident between live chunks (in a child process, where the test
// controls what is live), and the policy: a burst of requests is one trim, and none runs
// again before the minimum interval.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { NativeHeapTrimmer } from '../../src/pkg/native-heap.js';
import { repoRoot } from '../e2e/harness.js';

interface TrimLine {
  msg: string;
  reasons: string[];
  released: boolean;
  'rss-before': number;
  'rss-after': number;
}

function capturingLogger(): { log: pino.Logger; lines: TrimLine[] } {
  const lines: TrimLine[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as TrimLine) });
  return { log, lines };
}

const MB = 1024 * 1024;

/**
 * In a child: 120 MB of 2 KB native buffers (ArrayBuffers are malloc'd chunks), all live
 * at once, then every 64th kept and the rest collected. glibc keeps the freed chunks
 * between the live ones resident (they are not at the top of the heap); a trim returns
 * their pages.
 */
const FRAGMENT_AND_TRIM = `
import { pino } from 'pino';
import { NativeHeapTrimmer } from ${JSON.stringify(path.join(repoRoot, 'dist/src/pkg/native-heap.js'))};
const all = [];
for (let i = 0; i < 60_000; i++) all.push(Buffer.allocUnsafeSlow(2048).fill(i & 0xff));
const kept = all.filter((_, i) => i % 64 === 0);
all.length = 0;
for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 100)); }
const log = pino({ level: 'info' }, { write: (line) => { process.stdout.write(line); process.exit(0); } });
new NativeHeapTrimmer({ delayMs: 0, minIntervalMs: 0 }).request('compaction', log);
setInterval(() => kept.length, 1000);
`;

describe('native heap trimmer', () => {
  it('gives back the free memory glibc keeps between live chunks', () => {
    const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', FRAGMENT_AND_TRIM], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(child.status, child.stderr).toBe(0);
    const line = JSON.parse(child.stdout) as TrimLine;
    expect(line.msg).toBe('trimmed the native heap');
    expect(line.released).toBe(true);
    // ~118 MB was freed; before the trim it is still resident, after it mostly not
    expect(line['rss-before'] - line['rss-after']).toBeGreaterThan(80 * MB);
  });

  it('makes a burst of requests one trim naming every reason, and trims no more often than the interval', async () => {
    const { log, lines } = capturingLogger();
    const trimmer = new NativeHeapTrimmer({ delayMs: 0, minIntervalMs: 3_600_000 });
    trimmer.request('compaction', log);
    trimmer.request('etcd-db-export', log);
    trimmer.request('compaction', log);
    await vi.waitFor(() => expect(lines).toHaveLength(1), { timeout: 10_000 });
    expect(lines[0]).toMatchObject({ msg: 'trimmed the native heap', reasons: ['compaction', 'etcd-db-export'] });

    // within the interval: held until it has passed (an hour), not run now
    trimmer.request('snapshot-install', log);
    await new Promise((r) => setTimeout(r, 500));
    expect(lines).toHaveLength(1);
  });
});
