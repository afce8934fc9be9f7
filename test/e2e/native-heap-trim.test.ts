// etcd-ts gives the memory a physical compaction freed back to the system (glibc's
// malloc_trim, src/pkg/native-heap.ts): after the compaction of overwritten keys, the
// member logs a trim for it. etcd-ts only: etcd's Go runtime returns memory on its own.

import { afterAll, describe, expect, it, vi } from 'vitest';
import { EtcdClient } from './client.js';
import { cleanup, startMember, stopMember, waitFor } from './harness.js';

afterAll(cleanup);

interface LogLine {
  msg?: string;
  reasons?: string[];
  released?: boolean;
}

function logLines(output: string): LogLine[] {
  return output.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

describe('native heap trim', () => {
  it('trims after a physical compaction', async () => {
    const m = await startMember({ binary: 'etcd-ts' });
    const c = new EtcdClient(m.clientUrl);
    try {
      const value = 'v'.repeat(1024);
      let revision = 0;
      for (let round = 0; round < 2; round++) {
        const puts = await Promise.all(Array.from({ length: 500 }, (_, i) => c.put(`k/${i}`, value)));
        revision = Math.max(...puts.map((r) => Number((r.header as { revision: string }).revision)));
      }
      await c.call(c.kv, 'Compact', { revision, physical: true });
      await waitFor(m, 'finished scheduled compaction');
      const compacted = m.output().indexOf('finished scheduled compaction');
      // the trim that follows the compaction: it may have absorbed other requests as well
      const trim = await vi.waitFor(
        () => {
          const t = logLines(m.output().slice(compacted)).find((l) => l.msg === 'trimmed the native heap' && l.reasons?.includes('compaction'));
          if (t === undefined) throw new Error('no trim after the compaction yet');
          return t;
        },
        { timeout: 30_000, interval: 200 },
      );
      expect(trim.released).toBe(true);
    } finally {
      c.close();
      await stopMember(m);
    }
  }, 60_000);
});
