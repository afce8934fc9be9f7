// The debug-only memory report (src/pkg/memory-report.ts) in this very process: SIGUSR2
// appends where the RSS is, before and after a GC; a process that never started it has
// nothing listening.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memorySnapshot, rssByMapping, startMemoryReport } from '../../src/pkg/memory-report.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'memory-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('memory report', () => {
  it('sums smaps by kind of mapping', () => {
    const smaps = [
      `00400000-00600000 r-xp 00000000 08:01 123 ${process.execPath}`,
      'Rss:                1000 kB',
      '01000000-02000000 rw-p 00000000 00:00 0                          [heap]',
      'Rss:                 300 kB',
      '7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ',
      'Rss:                 200 kB',
      '7f0000100000-7f0000200000 r--s 00000000 08:01 9 /data/member/leveldb/000012.ldb',
      'Rss:                  50 kB',
      '7f0000200000-7f0000300000 r-xp 00000000 08:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6',
      'Rss:                  20 kB',
      '7f0000300000-7f0000400000 r-xp 00000000 08:01 9 /x/node_modules/classic-level/prebuilds/linux-x64/classic-level.node',
      'Rss:                   5 kB',
      '7ffd00000000-7ffd00100000 rw-p 00000000 00:00 0                          [stack]',
      'Rss:                   8 kB',
    ].join('\n');
    expect(rssByMapping(smaps)).toEqual({ nodeBinary: 1000, libraries: 25, levelDbFiles: 50, otherFiles: 0, brkHeap: 300, stack: 8, anonymous: 200 });
  });

  it('accounts for the whole RSS of this process', () => {
    const s = memorySnapshot() as { rss: number; mappings: Record<string, number>; v8: Record<string, number[]>; malloc: { inUse: number } | null };
    const mapped = Object.values(s.mappings).reduce((a, b) => a + b, 0);
    // read a moment apart: within a few MB of each other
    expect(Math.abs(mapped - s.rss)).toBeLessThan(16);
    expect(s.v8.old_space).toHaveLength(3);
    expect(s.malloc?.inUse).toBeGreaterThan(0); // glibc
  });

  it('appends a report on SIGUSR2 once started, and stops', async () => {
    const file = path.join(dir, 'report.jsonl');
    const stop = startMemoryReport(file);
    try {
      process.kill(process.pid, 'SIGUSR2');
      const deadline = Date.now() + 30_000;
      let text = '';
      while (Date.now() < deadline) {
        text = (() => {
          try {
            return readFileSync(file, 'utf8');
          } catch {
            return '';
          }
        })();
        if (text.endsWith('\n')) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const report = JSON.parse(text) as { pid: number; found: { rss: number }; afterGc: { v8: Record<string, number[]> } };
      expect(report.pid).toBe(process.pid);
      expect(report.found.rss).toBeGreaterThan(0);
      expect(report.afterGc.v8.new_space).toHaveLength(3);
    } finally {
      stop();
    }
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  }, 60_000);
});
