// How often a member rewrites etcd's bbolt file (src/server/backup/db-file.ts): before a
// .snap only when the puts since the last export add up to the store it was written
// from (or the store is small), otherwise the file is removed before the .snap; at
// start when it is missing and at a clean stop, always. Exporting a large store before
// every .snap made puts stall at each --snapshot-count entries (bench/scale).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { eventually } from './cluster-harness.js';
import { binary, cleanup, etcdctlV2, killProcesses, startMember, stopMember, tempDir, waitFor } from './harness.js';

afterAll(cleanup);
afterEach(killProcesses);

const SNAPSHOT_COUNT = 20;
/**
 * 64 KiB values: the store passes db-file.ts's ALWAYS_EXPORT_BYTES (8 MiB) in 128 puts,
 * and the size from which an export thread writes the file (the applier's
 * THREAD_EXPORT_BYTES, 32 MiB) in 512
 */
const BIG = Buffer.alloc(64 << 10, 0x61);
const BIG_PUTS = 576;

const count = (text: string, what: string): number => text.split(what).length - 1;
const EXPORTED_AT_SNAPSHOT = '"reason":"snapshot"';

async function putBig(c: EtcdClient, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.call(c.kv, 'Put', { key: Buffer.from(`big/${i}`), value: BIG });
}

it.skipIf(binary === 'etcd')(
  `a store of ${(BIG_PUTS * BIG.length) >> 20} MiB is not exported at each of 10 .snaps of small puts; after a crash without the file the restarted member writes it once it serves; puts adding up to the store export it again`,
  async () => {
    const flags = ['--snapshot-count', String(SNAPSHOT_COUNT)];
    let m = await startMember({ args: flags });
    const db = path.join(m.dataDir, 'member', 'snap', 'db');
    let c = new EtcdClient(m.clientUrl);
    try {
      await putBig(c, BIG_PUTS);
      const mark = m.output().length;
      for (let i = 0; i < SNAPSHOT_COUNT * 10; i++) await c.put(`small/${i % 10}`, 'x', 60_000);
      // one snapshot at a time: each triggered after the first found the one before it saved, its export included
      await eventually(async () => expect(count(m.output().slice(mark), 'triggering snapshot')).toBeGreaterThanOrEqual(9), 60_000);
      expect(count(m.output().slice(mark), EXPORTED_AT_SNAPSHOT), m.output().slice(mark)).toBe(0);
      expect(m.output()).toContain("removed etcd's bbolt db: the ");
      expect(existsSync(db)).toBe(false);

      // a crash now leaves no file: etcd's offline backup cannot run until etcd-ts has started on the dir again
      c.close();
      await stopMember(m, 'SIGKILL');
      const backupDir = path.join(tempDir(), 'backup.etcd');
      const failed = await etcdctlV2(['backup', '--data-dir', m.dataDir, '--backup-dir', backupDir, '--with-v3']);
      expect(failed.code).not.toBe(0);
      m = await startMember({ dataDir: m.dataDir, args: flags });
      // written in the background once the member serves: the start did not wait for it
      await waitFor(m, '"reason":"start"');
      const out = m.output();
      expect(out.indexOf('ready to serve client requests')).toBeLessThan(out.search(/"reason":"start","consistent-index":\d+/));
      // a store this large is exported off the member's thread
      expect(out).toMatch(/"reason":"start",.*"written-by":"export thread"/);
      expect(existsSync(db)).toBe(true);

      // as many bytes put again as the store had at that export: the next .snap exports it
      c = new EtcdClient(m.clientUrl);
      const restarted = m.output().length;
      await putBig(c, BIG_PUTS + 64);
      await eventually(async () => expect(count(m.output().slice(restarted), EXPORTED_AT_SNAPSHOT)).toBeGreaterThanOrEqual(1), 60_000);
      expect(m.output().slice(restarted)).toMatch(/"reason":"snapshot",.*"written-by":"export thread"/);
      c.close();
      expect(await stopMember(m)).toBe(0);
      expect(m.output()).toContain('"reason":"stop"');
      const backup = await etcdctlV2(['backup', '--data-dir', m.dataDir, '--backup-dir', path.join(tempDir(), 'again.etcd'), '--with-v3']);
      expect(backup.code, backup.stderr).toBe(0);
    } finally {
      c.close();
    }
  },
  300_000,
);
