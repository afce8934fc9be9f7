// etcd-ts gives the memory a physical compaction or an export of etcd's bbolt file freed
// back to the system (glibc's malloc_trim, src/pkg/native-heap.ts): after the compaction
// of overwritten keys, and after exporting a store over 1 MiB, the member logs a trim for
// it; not after the export of the almost empty store every first start writes; and once
// the member has gone idle after a load (after the idle GC, src/pkg/idle-gc.ts). etcd-ts
// only: etcd's Go runtime returns memory on its own.

import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EtcdClient } from './client.js';
import { cleanup, startMember, stopMember, waitFor } from './harness.js';

afterAll(cleanup);

interface LogLine {
  msg?: string;
  reasons?: string[];
  released?: boolean;
  reason?: string;
  size?: number;
}

const port = (url: string) => Number(new URL(url).port);

function logLines(output: string): LogLine[] {
  return output.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

/** The trim lines in `output`, in order. */
const trims = (output: string) => logLines(output).filter((l) => l.msg === 'trimmed the native heap');

describe('native heap trim', () => {
  it("trims after a physical compaction and after the export of a store over 1 MiB, not after a first start's almost empty one", async () => {
    const m = await startMember({ binary: 'etcd-ts' });
    const c = new EtcdClient(m.clientUrl);
    const value = 'v'.repeat(1024);
    try {
      // 1100 keys of 1 KiB (the store stays over 1 MiB after the compaction), 500 of them overwritten
      let revision = 0;
      for (const count of [1100, 500]) {
        for (let from = 0; from < count; from += 500) {
          const puts = await Promise.all(Array.from({ length: Math.min(500, count - from) }, (_, i) => c.put(`k/${from + i}`, value)));
          revision = Math.max(revision, ...puts.map((r) => Number((r.header as { revision: string }).revision)));
        }
      }
      await c.call(c.kv, 'Compact', { revision, physical: true });
      await waitFor(m, 'finished scheduled compaction');
      const compacted = m.output().indexOf('finished scheduled compaction');
      // the trim that follows the compaction: it may have absorbed other requests as well
      const trim = await vi.waitFor(
        () => {
          const t = trims(m.output().slice(compacted)).find((l) => l.reasons?.includes('compaction'));
          if (t === undefined) throw new Error('no trim after the compaction yet');
          return t;
        },
        { timeout: 30_000, interval: 200 },
      );
      expect(trim.released).toBe(true);
      // the first start's export was asked for long before: had it asked for a trim, a trim
      // up to this one would name it
      const lines = trims(m.output());
      const upToIt = lines.slice(0, lines.findIndex((l) => l.reasons?.includes('compaction')) + 1);
      expect(upToIt.flatMap((l) => l.reasons ?? [])).not.toContain('etcd-db-export');
    } finally {
      c.close();
      await stopMember(m);
    }

    // started again without member/snap/db, the member exports the whole store (over 1 MiB) and trims after it
    rmSync(path.join(m.dataDir, 'member/snap/db'));
    const again = await startMember({ binary: 'etcd-ts', name: m.name, dataDir: m.dataDir, clientPort: port(m.clientUrl), peerPort: port(m.peerUrl) });
    try {
      await waitFor(again, '"reason":"start"');
      const exported = logLines(again.output()).find((l) => l.msg === "wrote etcd's bbolt db" && l.reason === 'start');
      expect(exported?.size).toBeGreaterThan(1 << 20);
      const trim = await vi.waitFor(
        () => {
          const t = trims(again.output()).find((l) => l.reasons?.includes('etcd-db-export'));
          if (t === undefined) throw new Error('no trim after the export yet');
          return t;
        },
        { timeout: 30_000, interval: 200 },
      );
      expect(trim.released).toBe(true);
    } finally {
      await stopMember(again);
    }
  }, 90_000);

  it('trims once the member has gone idle after a load', async () => {
    const m = await startMember({ binary: 'etcd-ts' });
    const c = new EtcdClient(m.clientUrl);
    try {
      // enough requests that the member's young generation grows to its bound (8 MB)
      const value = 'v'.repeat(1024);
      for (let from = 0; from < 6000; from += 500) await Promise.all(Array.from({ length: 500 }, (_, i) => c.put(`k/${(from + i) % 1000}`, value)));
      const loaded = m.output().length;
      // idle from here: the idle GC comes 6-9 s in (later at a high load average), the trim 1 s after it
      const trim = await vi.waitFor(
        () => {
          const t = trims(m.output().slice(loaded)).find((l) => l.reasons?.includes('idle'));
          if (t === undefined) throw new Error('no trim after going idle yet');
          return t;
        },
        { timeout: 90_000, interval: 200 },
      );
      expect(trim.released).toBe(true);
    } finally {
      c.close();
      await stopMember(m);
    }
  }, 180_000);
});
