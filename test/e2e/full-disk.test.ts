// A full disk, for real: the member's data dir on an 8 MiB tmpfs, written to until the
// disk is full. The member must stop with a fatal log line naming the file it could
// not write and why, exit 1, and lose nothing it acknowledged: a copy of its data dir,
// started on a roomy disk, holds every put that got an OK. And a leader whose disk has
// no room for a copy of its store still sends a new member the snapshot it needs.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, mkdirSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { cleanup, ctl, freePort, type Member, startMember, stopMember, tempDir, waitFor } from './harness.js';

const mounts: string[] = [];
const members: Member[] = [];

afterAll(async () => {
  // members first (a tmpfs in use cannot be unmounted), then the mounts, then the dirs
  for (const m of members) await stopMember(m, 'SIGKILL');
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  await cleanup();
});

/** A tmpfs of `size` at a fresh directory (the test runs as root). */
function smallDisk(size: string): string {
  const dir = path.join(tempDir('etcd-ts-full-'), 'disk');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

const valueOf = (key: string): string => key.padEnd(16 * 1024, '.');

it('stops with a fatal line naming the full disk, and keeps every acknowledged put', async () => {
  const disk = smallDisk('8m');
  const dataDir = path.join(disk, 'full.etcd');
  const m = await startMember({ name: 'full', dataDir });
  members.push(m);
  const client = new EtcdClient(m.clientUrl);
  const acked: string[] = [];
  // eight writers at once, so that the WAL and the store both fill up under load
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const key = `k/${w}/${i}`;
      try {
        await client.put(key, valueOf(key));
      } catch {
        return; // the member stopped (or refused): no OK for this one
      }
      acked.push(key);
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  client.close();

  expect(await m.exited).toBe(1);
  const fatal = m
    .output()
    .split('\n')
    .filter((l) => l.includes('"level":"fatal"'));
  expect(fatal).toHaveLength(1);
  // the file it could not write, inside the data dir, and the reason
  expect(fatal[0]).toMatch(new RegExp(`${dataDir}/member/\\S+`));
  expect(fatal[0]).toMatch(/no space left on device/i);
  expect(m.output()).not.toMatch(/Unhandled|UnhandledPromiseRejection|triggerUncaughtException/);
  expect(acked.length).toBeGreaterThan(0);

  // the same data on a disk with room
  const copy = path.join(tempDir(), 'copy.etcd');
  cpSync(dataDir, copy, { recursive: true });
  const again = await startMember({ name: 'full', dataDir: copy });
  members.push(again);
  const reader = new EtcdClient(again.clientUrl);
  const stored = new Map<string, string>();
  for (let w = 0; w < 8; w++) {
    // one writer's keys at a time: all of them at once would pass gRPC's 4 MiB reply limit
    const r = await reader.call<{ kvs: Array<{ key: Buffer; value: Buffer }> }>(reader.kv, 'Range', {
      key: Buffer.from(`k/${w}/`),
      range_end: Buffer.from(`k/${w}0`),
    });
    for (const kv of r.kvs) stored.set(kv.key.toString(), kv.value.toString());
  }
  reader.close();
  const missing = acked.filter((k) => stored.get(k) !== valueOf(k));
  expect(missing).toEqual([]);
  await stopMember(again);
});

it("a leader without room for a copy of its store still catches a new member up: it sends the store as it reads it", async () => {
  const disk = smallDisk('256m');
  const catchUp = ['--snapshot-count', '100', '--experimental-snapshot-catchup-entries', '100'];
  const aPeer = await freePort();
  const a = await startMember({ name: 'a', dataDir: path.join(disk, 'a.etcd'), peerPort: aPeer, args: catchUp });
  members.push(a);
  // some 14 MB of values LevelDB cannot compress, each small enough to be sent as it is read
  // (a record above a quarter page is written out first): etcd's bbolt copy needs as much room
  const client = new EtcdClient(a.clientUrl);
  for (let t = 0; t < 200; t++) {
    const success = Array.from({ length: 100 }, (_, i) => ({ request_put: { key: Buffer.from(`big/${String(t * 100 + i).padStart(5, '0')}`), value: randomBytes(700) } }));
    await client.call(client.kv, 'Txn', { compare: [], success, failure: [] });
  }
  client.close();
  // the disk all but full: filled, then 4 MiB given back; room for the WAL's next entries, not for the copy
  const filler = path.join(disk, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const mib = Buffer.alloc(1 << 20); ; ) writeSync(fd, mib);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  truncateSync(filler, Math.max(0, statSync(filler).size - 4 * (1 << 20)));

  const bPeer = await freePort();
  await ctl(a.clientUrl, ['member', 'add', 'b', `--peer-urls=http://127.0.0.1:${bPeer}`]);
  const b = await startMember({
    name: 'b',
    peerPort: bPeer,
    args: [...catchUp, '--initial-cluster', `a=http://127.0.0.1:${aPeer},b=http://127.0.0.1:${bPeer}`, '--initial-cluster-state', 'existing'],
  });
  members.push(b);
  await waitFor(b, 'installed the store from a leader snapshot');
  expect(a.output()).toContain('streaming the database snapshot while it is read');
  // two voters now: this put is committed by both
  await ctl(a.clientUrl, ['put', 'after/join', 'ok']);
  expect(await ctl(b.clientUrl, ['get', 'big/19999', '--consistency=s', '--keys-only'])).toBe('big/19999\n\n');
  expect(await ctl(b.clientUrl, ['get', 'after/join', '--consistency=s', '--print-value-only'])).toBe('ok\n');
  expect(a.proc.exitCode).toBeNull();
}, 180_000);
