// etcd's offline tools on etcd-ts data dirs, as etcd's guides and its e2e tests
// (testCtlV2Backup, TestCtlV3Migrate) run them: `ETCDCTL_API=2 etcdctl backup` then
// `--force-new-cluster` on the copy, and `etcdctl migrate` of v2 keys into the v3 store,
// with the same flow on real etcd 3.4.23 as the reference. And what etcd-ts does with a
// bbolt file at member/snap/db it cannot take: a damaged one, or one beside a store.

import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { boltCheck } from '../bbolt/real-bolt.js';
import { type Member, cleanup, ctl, etcdctl, etcdctlV2, startMember, stopMember, tempDir, killProcesses, waitFor } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

async function set2(m: Member, key: string, value: string): Promise<void> {
  const r = await etcdctlV2(['--endpoints', m.clientUrl, 'set', key, value]);
  expect(r.code, r.stderr).toBe(0);
}

async function get2(m: Member, key: string): Promise<string> {
  const r = await etcdctlV2(['--endpoints', m.clientUrl, 'get', key]);
  return r.code === 0 ? r.stdout.trim() : `exit ${r.code}: ${r.stderr.trim()}`;
}

/** The keys a member serves, with their revisions and versions. */
async function kvs(m: Member): Promise<Array<{ key: string; value: string; create_revision: number; mod_revision: number; version: number }>> {
  const out = JSON.parse(await ctl(m.clientUrl, ['get', '', '--prefix', '-w', 'json'])) as { kvs?: Array<Record<string, string | number>> };
  return (out.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv['key'] as string, 'base64').toString(),
    value: Buffer.from(kv['value'] as string, 'base64').toString(),
    create_revision: Number(kv['create_revision']),
    mod_revision: Number(kv['mod_revision']),
    version: Number(kv['version']),
  }));
}

describe('ETCDCTL_API=2 etcdctl backup of an etcd-ts data dir, then --force-new-cluster on the backup', () => {
  for (const snapshotCount of [0, 1]) {
    it(`serves the v2 keys and new writes${snapshotCount ? ' (a .snap after every entry)' : ''}; without --with-v3 the v3 keys are gone, as with etcd`, async () => {
      const src = await startMember({ args: ['--enable-v2', ...(snapshotCount ? ['--snapshot-count', String(snapshotCount)] : [])] });
      await ctl(src.clientUrl, ['put', 'v3key', '123']);
      await set2(src, 'foo1', 'bar1');
      const backupDir = path.join(tempDir(), 'backup.etcd');
      // as etcd's test does it: the source member still running
      const r = await etcdctlV2(['backup', '--data-dir', src.dataDir, '--backup-dir', backupDir]);
      expect(r.code, r.stderr).toBe(0);
      await stopMember(src);

      const m = await startMember({ dataDir: backupDir, args: ['--force-new-cluster', '--enable-v2'] });
      expect(await get2(m, 'foo1')).toBe('bar1');
      expect(await kvs(m)).toEqual([]);
      await set2(m, 'foo2', 'bar2');
      expect(await get2(m, 'foo2')).toBe('bar2');
      await ctl(m.clientUrl, ['put', 'v3new', 'x']);
      expect((await kvs(m)).map((kv) => kv.key)).toEqual(['v3new']);
      // one member, the one the backup's new WAL names
      const members = (await ctl(m.clientUrl, ['member', 'list'])).trim().split('\n');
      expect(members).toHaveLength(1);
      expect(members[0]).toContain(`, started, default, ${m.peerUrl}, ${m.clientUrl}, false`);
      await stopMember(m);
    }, 90_000);
  }
});

describe('etcdctl migrate on a stopped etcd-ts data dir', () => {
  /** etcd's TestCtlV3Migrate: three v2 keys, the member killed, migrate, restart, one v3 put. */
  async function migrated(binary: 'etcd' | 'etcd-ts'): Promise<Awaited<ReturnType<typeof kvs>>> {
    let m = await startMember({ binary, args: ['--enable-v2'] });
    for (let i = 0; i < 3; i++) await set2(m, `foo_${i}`, `bar_${i}`);
    await stopMember(m, 'SIGKILL');
    const r = await etcdctl('127.0.0.1:1', ['migrate', '--data-dir', m.dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('finished transforming keys');
    m = await startMember({ binary, dataDir: m.dataDir, args: ['--enable-v2'] });
    await ctl(m.clientUrl, ['put', 'test', 'value']);
    const served = await kvs(m);
    await stopMember(m);
    return served;
  }

  it("serves the migrated v2 keys as v3 keys at their v2 indexes, and the next revision follows them, as etcd does", async () => {
    const reference = await migrated('etcd');
    expect(reference.find((kv) => kv.key === 'test')?.create_revision).toBe(7);
    expect(await migrated('etcd-ts')).toEqual(reference);
  }, 120_000);
});

/** Page ids of branch pages in a bbolt file (page header: id u64, flags u16, count u16, overflow u32). */
function branchPages(file: Buffer, pageSize: number): number[] {
  const out: number[] = [];
  for (let id = 2; id * pageSize < file.length; id++) if (file.readUInt16LE(id * pageSize + 8) === 0x01) out.push(id);
  return out;
}

describe('a bbolt file at member/snap/db that etcd-ts cannot take', () => {
  it('is refused when damaged in a way only a full check sees (a branch that lost a child): the file and page named, the data dir left as it was', async () => {
    const etcd = await startMember({ binary: 'etcd' });
    // enough keys for the `key` bucket to need a branch page: four txns of 100 puts
    for (let t = 0; t < 4; t++) {
      const puts = Array.from({ length: 100 }, (_, i) => `put k/${String(t * 100 + i).padStart(4, '0')} ${'v'.repeat(100)}`);
      await ctl(etcd.clientUrl, ['txn'], `\n${puts.join('\n')}\n\n\n`);
    }
    await stopMember(etcd);
    // the disk-full guide's backup: its db keeps bbolt's freelist, so a lost page shows
    const dataDir = path.join(tempDir(), 'backup.etcd');
    const r = await etcdctlV2(['backup', '--data-dir', etcd.dataDir, '--backup-dir', dataDir, '--with-v3']);
    expect(r.code, r.stderr).toBe(0);

    const db = path.join(dataDir, 'member', 'snap', 'db');
    const original = readFileSync(db);
    // One child fewer: every page the walk still reaches is intact, the lost subtree is not
    // free. Only a branch page in use will do: bbolt leaves the pages of older transactions
    // behind as free, and one of those may come first in the file (a CI run damaged such a
    // page, etcd-ts rightly found nothing wrong and served). Real bbolt's check picks it.
    let bytes: Buffer | undefined;
    for (const branch of branchPages(original, 4096)) {
      const damaged = Buffer.from(original);
      const at = branch * 4096 + 10;
      damaged.writeUInt16LE(damaged.readUInt16LE(at) - 1, at);
      writeFileSync(db, damaged);
      if (!(await boltCheck(db)).ok) {
        bytes = damaged;
        break;
      }
    }
    if (bytes === undefined) throw new Error(`no branch page of ${db} whose lost child real bbolt's check notices`);

    const m = await startMember({ dataDir, args: ['--force-new-cluster'], waitReady: false });
    // it must exit; serving, or neither within a minute, fails here with its output (the
    // exit resolves the race before waitFor, which polls, notices it)
    const outcome = await Promise.race([
      m.exited,
      waitFor(m, 'ready to serve client requests', 60_000).then(() => 'served', (err: Error) => err.message),
    ]);
    expect(typeof outcome === 'number' && outcome !== 0, `${String(outcome)}: ${m.output()}`).toBe(true);
    expect(m.output()).toMatch(new RegExp(`${db}: page \\d+: is neither reachable nor free`));
    expect(readFileSync(db).equals(bytes)).toBe(true);
    expect(readdirSync(path.join(dataDir, 'member')).sort()).toEqual(['snap', 'wal']);
  }, 90_000);

  it('is refused beside a store it is behind and etcd-ts did not write, naming both; the store serves again once the file is gone', async () => {
    const etcd = await startMember({ binary: 'etcd' });
    await ctl(etcd.clientUrl, ['put', 'theirs', '2']);
    await stopMember(etcd);
    let m = await startMember();
    // more entries than etcd applied: its file is behind this store
    for (let i = 0; i < 10; i++) await ctl(m.clientUrl, ['put', 'mine', String(i)]);
    await stopMember(m);
    const db = path.join(m.dataDir, 'member', 'snap', 'db');
    copyFileSync(path.join(etcd.dataDir, 'member', 'snap', 'db'), db);

    const refused = await startMember({ dataDir: m.dataDir, waitReady: false });
    expect(await refused.exited).not.toBe(0);
    expect(refused.output()).toMatch(new RegExp(`${db} \\(consistent index \\d+\\) is a bbolt db that etcd-ts did not write and is behind the store in ${path.join(m.dataDir, 'member', 'leveldb')}`));
    expect(existsSync(db)).toBe(true);

    rmSync(db); // the operator keeps the store
    m = await startMember({ dataDir: m.dataDir });
    expect((await kvs(m)).map((kv) => kv.key)).toEqual(['mine']);
    await stopMember(m);
  }, 90_000);
});
