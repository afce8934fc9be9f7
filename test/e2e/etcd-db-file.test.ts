// etcd's bbolt file in an etcd-ts data dir (src/server/backup/db-file.ts): what etcd's
// tools and real etcd 3.4.23 get from member/snap/db after a clean stop, after a crash,
// and without it; real etcd started in place on a stopped etcd-ts member (one, and a
// three-member cluster) and etcd-ts back on the dir real etcd ran on.

import { cpSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { served } from './backup-harness.js';
import { clientUrl, planCluster, startSlot } from './cluster-harness.js';
import { cleanup, ctl, etcdctlV2, startMember, stopMember, tempDir, killProcesses, waitFor } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/** Writes of every kind the store keeps: puts, a delete, a txn, a lease with a key, a compaction. */
async function write(ep: string, prefix: string): Promise<void> {
  for (let i = 0; i < 12; i++) await ctl(ep, ['put', `${prefix}${i}`, `v${i}`]);
  await ctl(ep, ['del', `${prefix}3`]);
  await ctl(ep, ['txn'], `\nput ${prefix}t1 a\nput ${prefix}t2 b\n\n\n`);
  const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep, ['lease', 'grant', '600']))![1]!;
  await ctl(ep, ['put', `${prefix}leased`, 'x', '--lease', lease]);
  const rev = (JSON.parse(await ctl(ep, ['get', `${prefix}0`, '-w', 'json'])) as { header: { revision: number } }).header.revision;
  await ctl(ep, ['compaction', String(rev - 2)]);
}

/** `ETCDCTL_API=2 etcdctl backup --with-v3` of a stopped member's dir into a new one. */
async function backupV3(dataDir: string): Promise<{ code: number; stderr: string; dir: string }> {
  const dir = path.join(tempDir(), 'backup.etcd');
  const r = await etcdctlV2(['backup', '--data-dir', dataDir, '--backup-dir', dir, '--with-v3']);
  return { code: r.code, stderr: r.stderr, dir };
}

/** The backup started with --force-new-cluster by each server (on its own copy): what each serves. */
async function servedFromBackup(dir: string): Promise<Record<'etcd' | 'etcd-ts', Awaited<ReturnType<typeof served>>>> {
  const out: Partial<Record<'etcd' | 'etcd-ts', Awaited<ReturnType<typeof served>>>> = {};
  for (const binary of ['etcd', 'etcd-ts'] as const) {
    const copy = path.join(tempDir(), `${binary}.etcd`);
    cpSync(dir, copy, { recursive: true });
    const m = await startMember({ binary, dataDir: copy, args: ['--force-new-cluster'] });
    out[binary] = await served(m.clientUrl);
    await stopMember(m);
  }
  return out as Record<'etcd' | 'etcd-ts', Awaited<ReturnType<typeof served>>>;
}

/** `etcdctl backup --with-v3` of a stopped member's dir succeeds, and both servers serve from it what the member served. */
async function expectBackupServes(dataDir: string, before: Awaited<ReturnType<typeof served>>): Promise<void> {
  const b = await backupV3(dataDir);
  expect(b.code, b.stderr).toBe(0);
  const got = await servedFromBackup(b.dir);
  for (const binary of ['etcd-ts', 'etcd'] as const) {
    expect(got[binary].kvs).toEqual(before.kvs);
    expect(got[binary].hashkv).toEqual(before.hashkv);
  }
}

const snapCount = ['--snapshot-count', '5'];

describe("etcdctl backup --with-v3 of an etcd-ts data dir (etcd's disk-full recovery guide)", () => {
  it('after a clean stop: the file holds the store at the applied index, and both etcd-ts and real etcd serve the backup as the member served it', async () => {
    const m = await startMember({ args: snapCount });
    await write(m.clientUrl, 'k');
    const before = await served(m.clientUrl);
    expect(await stopMember(m)).toBe(0);
    const stop = /"reason":"stop","consistent-index":(\d+)/.exec(m.output());
    expect(stop, m.output()).not.toBeNull();

    const b = await backupV3(m.dataDir);
    expect(b.code, b.stderr).toBe(0);
    const got = await servedFromBackup(b.dir);
    expect(got['etcd-ts'].kvs).toEqual(before.kvs);
    expect(got['etcd-ts'].hashkv).toEqual(before.hashkv);
    expect(got.etcd.kvs).toEqual(before.kvs);
    expect(got.etcd.hashkv).toEqual(before.hashkv);
    expect(got.etcd.leases).toEqual(before.leases);
  }, 120_000);

  it('after a SIGKILL (a .snap after every entry, as etcd\'s TestCtlV2BackupV3Snapshot): the file left is no older than the newest .snap, so the backup loses no acknowledged write', async () => {
    const m = await startMember({ args: ['--snapshot-count', '1'] });
    await write(m.clientUrl, 'k');
    const before = await served(m.clientUrl);
    await stopMember(m, 'SIGKILL');
    expect(m.output()).not.toContain('"reason":"stop"');

    await expectBackupServes(m.dataDir, before);
  }, 120_000);

  // `etcdctl backup` drops conf changes and publish entries from the WAL it copies and
  // numbers the rest anew: entries after a file whose consistent index lay past such
  // entries would move down to it and be skipped. A file at a .snap's index (or at the
  // last entry) hides none.
  it("after a SIGKILL soon after a first start (etcd's TestCtlV2BackupV3): the file the start wrote is at index 0, so the backup loses no acknowledged write", async () => {
    const m = await startMember();
    await waitFor(m, '"reason":"start"');
    await write(m.clientUrl, 'k');
    const before = await served(m.clientUrl);
    await stopMember(m, 'SIGKILL');

    await expectBackupServes(m.dataDir, before);
  }, 120_000);

  it('after a SIGKILL of a member restarted without the file: the file written once it serves is at a .snap\'s index, so its writes since the restart are in the backup too', async () => {
    let m = await startMember();
    await write(m.clientUrl, 'a');
    await stopMember(m, 'SIGKILL');
    rmSync(path.join(m.dataDir, 'member', 'snap', 'db'));
    m = await startMember({ dataDir: m.dataDir });
    await waitFor(m, '"reason":"start"');
    expect(m.output().indexOf('ready to serve client requests')).toBeLessThan(m.output().indexOf('"reason":"start"'));
    await write(m.clientUrl, 'b');
    const before = await served(m.clientUrl);
    await stopMember(m, 'SIGKILL');

    await expectBackupServes(m.dataDir, before);
  }, 120_000);

  it("without the file (a crash while a leader's snapshot was being installed): the backup fails, and the member's next start removes the empty file etcdctl leaves, and the member writes the file again", async () => {
    let m = await startMember({ args: snapCount });
    await write(m.clientUrl, 'k');
    const before = await served(m.clientUrl);
    await stopMember(m, 'SIGKILL');
    const db = path.join(m.dataDir, 'member', 'snap', 'db');
    rmSync(db);

    const b = await backupV3(m.dataDir);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toContain(db);
    expect(existsSync(path.join(b.dir, 'member', 'wal'))).toBe(false);

    m = await startMember({ dataDir: m.dataDir, args: snapCount });
    expect(m.output()).toContain("removed an empty file at etcd's bbolt path");
    // once it serves, or before the .snap its replay triggers, whichever comes first
    await waitFor(m, "wrote etcd's bbolt db");
    expect((await served(m.clientUrl)).kvs).toEqual(before.kvs);
    await stopMember(m);
    const again = await backupV3(m.dataDir);
    expect(again.code, again.stderr).toBe(0);
    expect((await servedFromBackup(again.dir))['etcd-ts'].kvs).toEqual(before.kvs);
  }, 120_000);
});

describe('real etcd 3.4.23 in place on a stopped etcd-ts data dir, with the same flags', () => {
  it('one member: real etcd serves the same data and membership from the WAL, the .snap and the file; etcd-ts back on the dir takes what etcd wrote', async () => {
    const flags = ['--enable-v2', ...snapCount];
    let m = await startMember({ args: flags });
    await write(m.clientUrl, 'k');
    const v2 = await etcdctlV2(['--endpoints', m.clientUrl, 'set', 'v2key', 'v2value']);
    expect(v2.code, v2.stderr).toBe(0);
    const before = await served(m.clientUrl);
    const members = await ctl(m.clientUrl, ['member', 'list']);
    expect(await stopMember(m)).toBe(0);

    const etcd = await startMember({ binary: 'etcd', dataDir: m.dataDir, clientPort: port(m.clientUrl), peerPort: port(m.peerUrl), args: flags });
    expect(etcd.output()).not.toContain('panic');
    const atEtcd = await served(etcd.clientUrl);
    expect(atEtcd.kvs).toEqual(before.kvs);
    expect(atEtcd.hashkv).toEqual(before.hashkv);
    expect(atEtcd.leases).toEqual(before.leases);
    expect(await ctl(etcd.clientUrl, ['member', 'list'])).toBe(members);
    expect((await etcdctlV2(['--endpoints', etcd.clientUrl, 'get', 'v2key'])).stdout.trim()).toBe('v2value');
    for (let i = 0; i < 8; i++) await ctl(etcd.clientUrl, ['put', `etcd${i}`, 'e']);
    const atEtcdAfter = await served(etcd.clientUrl);
    await stopMember(etcd); // etcd 3.4 ends by the signal itself

    m = await startMember({ dataDir: m.dataDir, clientPort: port(m.clientUrl), peerPort: port(m.peerUrl), args: flags });
    expect(m.output()).toContain('it replaces the store');
    const back = await served(m.clientUrl);
    expect(back.kvs).toEqual(atEtcdAfter.kvs);
    expect(back.hashkv).toEqual(atEtcdAfter.hashkv);
    expect(await ctl(m.clientUrl, ['member', 'list'])).toBe(members);
    await stopMember(m);
  }, 120_000);

  it('three members: all stopped, all restarted as real etcd, the cluster serves the same data and carries on', async () => {
    const plan = await planCluster(3);
    const flags = { args: snapCount };
    let members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, flags)));
    const ep = clientUrl(plan.slots[0]!);
    await write(ep, 'k');
    const before = await served(ep);
    const list = await ctl(ep, ['member', 'list']);
    for (const m of members) expect(await stopMember(m)).toBe(0);

    members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { ...flags, binary: 'etcd' })));
    for (const s of plan.slots) {
      const got = await served(clientUrl(s));
      expect(got.kvs).toEqual(before.kvs);
      expect(got.hashkv).toEqual(before.hashkv);
    }
    expect(await ctl(ep, ['member', 'list'])).toBe(list);
    await ctl(clientUrl(plan.slots[2]!), ['put', 'after', 'etcd']);
    expect(await ctl(ep, ['get', 'after', '--print-value-only'])).toBe('etcd\n');
    for (const m of members) await stopMember(m);
  }, 180_000);
});

function port(url: string): number {
  return Number(new URL(url).port);
}
