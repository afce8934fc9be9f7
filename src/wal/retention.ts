// Which WAL segments an open WAL still needs, and purging old files.
//
// etcd keeps segments flock'd while they are needed (from the segment holding the
// last snapshot onwards) and its purge loop skips any file it cannot lock. Here an
// open WAL registers the segments it holds with the disk it uses, and purgeFiles
// stops at the first registered one: the same rule, without flock.

import { join, resolve } from 'node:path';
import type { Disk } from './disk.js';
import { nodeDisk } from './nodedisk.js';
import type { WalLogger } from './logger.js';

const held = new WeakMap<Disk, Map<string, number>>();

function key(path: string): string {
  return resolve(path);
}

/** Marks a segment as needed by an open WAL (counted, in case two handles name it). */
export function holdSegment(disk: Disk, path: string): void {
  let m = held.get(disk);
  if (m === undefined) held.set(disk, (m = new Map()));
  m.set(key(path), (m.get(key(path)) ?? 0) + 1);
}

export function releaseSegment(disk: Disk, path: string): void {
  const m = held.get(disk);
  const n = m?.get(key(path));
  if (m === undefined || n === undefined) return;
  if (n <= 1) m.delete(key(path));
  else m.set(key(path), n - 1);
}

export function isSegmentHeld(disk: Disk, path: string): boolean {
  return held.get(disk)?.has(key(path)) ?? false;
}

export interface PurgeOptions {
  readonly disk?: Disk;
  readonly logger?: WalLogger;
}

/**
 * Removes the oldest files of `dir` ending in `suffix` until at most `max` remain
 * (etcd's --max-wals / --max-snapshots, default 5), oldest first by name. Stops at
 * the first WAL segment an open WAL still holds, so a segment needed to replay past
 * the newest snapshot is never removed, whatever `max` says. `max` of 0 means keep
 * everything (as etcd, which then runs no purge). Returns the names removed.
 */
export async function purgeFiles(
  dir: string,
  suffix: '.wal' | '.snap',
  max = 5,
  opts: PurgeOptions = {},
): Promise<string[]> {
  const disk = opts.disk ?? nodeDisk;
  if (max <= 0) return [];
  const names = (await disk.readdir(dir)).filter((n) => n.endsWith(suffix)).sort();
  const purged: string[] = [];
  while (names.length - purged.length > max) {
    const name = names[purged.length]!;
    const path = join(dir, name);
    if (isSegmentHeld(disk, path)) break;
    await disk.unlink(path);
    opts.logger?.info({ path }, 'purged');
    purged.push(name);
  }
  return purged;
}
