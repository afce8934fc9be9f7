// etcd-ts's LevelDB store lives at member/leveldb; a data dir from before, with the store
// at etcd's bbolt path member/snap/db, is moved at start (once, by one atomic rename) and
// keeps every key. Both paths holding a store is refused without touching either.

import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanup, ctl, startMember, stopMember, tempDir, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

const MOVED = "moved the LevelDB store out of etcd's bbolt path";

describe('the LevelDB store at member/leveldb', () => {
  it('is moved there from member/snap/db, where etcd-ts kept it before, once; every key stays', async () => {
    const dataDir = path.join(tempDir(), 'legacy.etcd');
    const member = path.join(dataDir, 'member');
    let m = await startMember({ name: 'legacy', dataDir });
    for (let i = 0; i < 20; i++) await ctl(m.clientUrl, ['put', `k${i}`, `v${i}`]);
    await stopMember(m);
    expect(statSync(path.join(member, 'leveldb')).isDirectory()).toBe(true);
    expect(statSync(path.join(member, 'snap', 'db')).isFile()).toBe(true);

    // the layout etcd-ts wrote before: the store where etcd keeps its bbolt file
    rmSync(path.join(member, 'snap', 'db'));
    renameSync(path.join(member, 'leveldb'), path.join(member, 'snap', 'db'));
    m = await startMember({ name: 'legacy', dataDir, peerPort: Number(new URL(m.peerUrl).port) });
    expect(await ctl(m.clientUrl, ['get', 'k', '--prefix', '--print-value-only'])).toBe(
      Array.from({ length: 20 }, (_, i) => `v${i}\n`).sort().join(''),
    );
    await ctl(m.clientUrl, ['put', 'after-move', 'ok']);
    expect(m.output().split(MOVED).length - 1).toBe(1);
    await stopMember(m);
    expect(statSync(path.join(member, 'leveldb')).isDirectory()).toBe(true);
    // etcd's bbolt file, written at the stop
    expect(statSync(path.join(member, 'snap', 'db')).isFile()).toBe(true);

    // moved already: the next start says nothing of it
    m = await startMember({ name: 'legacy', dataDir, peerPort: Number(new URL(m.peerUrl).port) });
    expect(await ctl(m.clientUrl, ['get', 'after-move', '--print-value-only'])).toBe('ok\n');
    expect(m.output()).not.toContain(MOVED);
    await stopMember(m);
  }, 60_000);

  it('a swap of a leader\'s store cut short at the old path is undone first, then the store moves', async () => {
    const dataDir = path.join(tempDir(), 'swap.etcd');
    const member = path.join(dataDir, 'member');
    let m = await startMember({ name: 'swap', dataDir });
    await ctl(m.clientUrl, ['put', 'kept', 'yes']);
    await stopMember(m);
    // before the move: the live store set aside, its replacement not yet in place
    renameSync(path.join(member, 'leveldb'), path.join(member, 'snap', 'db.replaced'));
    m = await startMember({ name: 'swap', dataDir, peerPort: Number(new URL(m.peerUrl).port) });
    expect(await ctl(m.clientUrl, ['get', 'kept', '--print-value-only'])).toBe('yes\n');
    await stopMember(m);
    expect(existsSync(path.join(member, 'snap', 'db.replaced'))).toBe(false);
    expect(statSync(path.join(member, 'snap', 'db')).isFile()).toBe(true);
  }, 60_000);

  it('with a store at both paths, refuses to start, names both, and leaves both as they were', async () => {
    const dataDir = path.join(tempDir(), 'both.etcd');
    const member = path.join(dataDir, 'member');
    const m = await startMember({ name: 'both', dataDir });
    await ctl(m.clientUrl, ['put', 'kept', 'yes']);
    await stopMember(m);
    rmSync(path.join(member, 'snap', 'db'));
    mkdirSync(path.join(member, 'snap', 'db'));
    const again = await startMember({ name: 'both', dataDir, waitReady: false });
    expect(await again.exited).toBe(1);
    expect(again.output()).toContain(`both ${path.join(member, 'snap', 'db')}`);
    expect(again.output()).toContain(`and ${path.join(member, 'leveldb')} hold a store`);
    expect(statSync(path.join(member, 'snap', 'db')).isDirectory()).toBe(true);
    expect(existsSync(path.join(member, 'leveldb', 'CURRENT'))).toBe(true);
  }, 60_000);
});
