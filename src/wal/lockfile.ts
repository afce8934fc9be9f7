// The exclusive lock on a WAL directory for the production disk.
//
// etcd flock(2)s its segment files. Node 20 has no flock, so etcd-ts uses a lock
// file instead: `<dir>/.etcd-ts.lock` holds the owner's pid, host name and the
// kernel boot id. It is published atomically (written to a private temp file,
// then link(2)ed to the lock name, which fails with EEXIST if a lock exists), so a
// reader never sees a half-written lock. A lock whose owner is gone is stale and is
// taken over: same host and boot but the pid no longer exists, or a different boot
// of this host. A lock from another host is never taken over (its pid means
// nothing here): the error says which file to remove.
//
// Known limit: two processes that find the same stale lock at the same instant can
// race between re-checking it and removing it; the window is a few microseconds and
// only exists after an unclean stop.
//
// Real etcd's locks are honoured too: if /proc/locks shows a lock on one of the
// directory's segments, the directory is refused and the lock holder named.

import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DiskLock } from './disk.js';
import { WalLockedError } from './errors.js';
import { parseWalName } from './names.js';

export const LOCK_FILE = '.etcd-ts.lock';

interface LockOwner {
  pid: number;
  host: string;
  bootId: string;
  since: string;
}

/** Lock files held by this process, so a second WAL in the same process conflicts too. */
const heldHere = new Set<string>();

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string') {
      return { pid: o.pid, host: o.host, bootId: String(o.bootId ?? ''), since: String(o.since ?? '') };
    }
  } catch {
    // fall through: not a lock file we wrote
  }
  return undefined;
}

function describeOwner(o: LockOwner, path: string): string {
  return `pid ${o.pid} on host ${o.host}${o.since ? ` since ${o.since}` : ''} (lock file ${path})`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the recorded owner no longer holds the lock, or undefined if it may still. */
function staleReason(o: LockOwner, path: string, me: LockOwner): string | undefined {
  if (o.host !== me.host) return undefined;
  if (o.bootId && me.bootId && o.bootId !== me.bootId) return 'owner ran before the last reboot';
  if (o.pid === me.pid) return heldHere.has(path) ? undefined : 'owner pid is this process, which does not hold it';
  return pidAlive(o.pid) ? undefined : `owner pid ${o.pid} is not running`;
}

/** Takes `<dir>/.etcd-ts.lock` for this process or throws WalLockedError. */
export async function lockDir(dir: string): Promise<DiskLock> {
  const me: LockOwner = { pid: process.pid, host: hostname(), bootId: bootId(), since: new Date().toISOString() };
  let path = join(dir, LOCK_FILE);
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await fsp.writeFile(tmp, JSON.stringify(me) + '\n', { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.link(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const text = await fsp.readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) continue; // vanished between link and read: try again
      const owner = parseOwner(text);
      if (owner === undefined) {
        throw new WalLockedError(dir, `an unreadable lock file ${path} (remove it if no etcd runs on ${dir})`);
      }
      const reason = staleReason(owner, path, me);
      if (reason === undefined || attempt >= 3) {
        const hint = owner.host !== me.host ? `; remove it if that host no longer runs etcd on ${dir}` : '';
        throw new WalLockedError(dir, describeOwner(owner, path) + hint);
      }
      // stale: remove it only if it is still the same stale lock, then retry the link
      const again = await fsp.readFile(path, 'utf8').catch(() => undefined);
      if (again === text) await fsp.unlink(path).catch(() => undefined);
    }
  } finally {
    await fsp.unlink(tmp).catch(() => undefined);
  }
  heldHere.add(path);
  const holder = await etcdFlockHolder(dir);
  if (holder !== undefined) {
    heldHere.delete(path);
    await fsp.unlink(path).catch(() => undefined);
    throw new WalLockedError(dir, holder);
  }
  let released = false;
  const lock: DiskLock = {
    async release() {
      if (released) return;
      released = true;
      heldHere.delete(path);
      await fsp.unlink(path).catch(() => undefined);
    },
    moveTo(newDir: string) {
      heldHere.delete(path);
      path = join(newDir, LOCK_FILE);
      heldHere.add(path);
    },
  };
  return lock;
}

/**
 * A process (normally a real etcd) holding a file lock on a segment of `dir`, per
 * /proc/locks. etcd 3.4 on Linux takes open-file-description locks (OFDLCK, listed
 * with pid -1); their owner is found by looking for the file among /proc/<pid>/fd.
 */
async function etcdFlockHolder(dir: string): Promise<string | undefined> {
  let locks: string;
  try {
    locks = await fsp.readFile('/proc/locks', 'utf8');
  } catch {
    return undefined; // not Linux: lock files are all we have
  }
  const inodes = new Map<string, string>();
  for (const name of await fsp.readdir(dir)) {
    if (parseWalName(name) === undefined) continue;
    const st = await fsp.stat(join(dir, name)).catch(() => undefined);
    if (st) inodes.set(String(st.ino), join(dir, name));
  }
  if (inodes.size === 0) return undefined;
  for (const line of locks.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:123456 0 EOF", "2: OFDLCK ADVISORY  WRITE -1 fe:00:2148228 0 EOF"
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const path = inodes.get(f[5]!.split(':')[2] ?? '');
    if (path === undefined) continue;
    const pid = Number(f[4]) > 0 ? f[4] : await fdHolder(path);
    return `${pid === undefined ? 'another process' : `pid ${pid}`} (it holds a file lock on ${path}, as etcd does)`;
  }
  return undefined;
}

/** The pid of some process with `path` open, from /proc/<pid>/fd, if visible to us. */
async function fdHolder(path: string): Promise<string | undefined> {
  for (const pid of await fsp.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const fds = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === path) return pid;
    }
  }
  return undefined;
}
