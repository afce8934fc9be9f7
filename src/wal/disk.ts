// The small file-system interface every byte of the WAL and snap layers goes
// through. Production uses `nodeDisk` (plain `fs`); tests and the simulator use
// MemDisk (memdisk.ts), which models what survives a crash and injects faults.

import { dirname, resolve } from 'node:path';

export interface DiskFile {
  readonly path: string;
  /** Reads up to `length` bytes at file `position` into buf[offset...]; 0 at end of file. */
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /**
   * Writes buf at file `position` and returns how many bytes went out: like pwrite(2)
   * it may write fewer than asked, and callers loop.
   */
  write(buf: Uint8Array, position: number): Promise<number>;
  /**
   * Writes buf at `position` as write() does, and resolves once the bytes written are
   * durable, as fdatasync would make them, in one system call (pwrite on a descriptor
   * opened O_DSYNC: one job for the thread pool instead of two, or none where the node
   * disk may block; see NodeDiskOptions.durableWriteMayBlock). Only those bytes: whatever
   * else was written since the last sync is not made durable by it, so a caller rewrites
   * it along.
   */
  writeDurable(buf: Uint8Array, position: number): Promise<number>;
  fdatasync(): Promise<void>;
  fsync(): Promise<void>;
  truncate(size: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

/** An exclusive hold on a directory; see lockfile.ts for how nodeDisk does it. */
export interface DiskLock {
  release(): Promise<void>;
  /** The locked directory was renamed to `dir` (WAL.create builds `dir.tmp`, then renames it). */
  moveTo(dir: string): void;
}

export type OpenMode =
  /** read only; the file must exist */
  | 'read'
  /** read and write; the file must exist */
  | 'write'
  /** read and write; created empty, or emptied if it exists */
  | 'create';

export interface Disk {
  open(path: string, mode: OpenMode): Promise<DiskFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** Entry names of a directory, unsorted. Throws (ENOENT) when it does not exist. */
  readdir(dir: string): Promise<string[]>;
  /** Synchronous readdir for the few callers that cannot await; undefined when absent. */
  readdirSync(dir: string): string[] | undefined;
  exists(path: string): Promise<boolean>;
  mkdirAll(dir: string): Promise<void>;
  removeAll(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of a directory, which makes creations, renames and removals in it durable. */
  fsyncDir(dir: string): Promise<void>;
  /**
   * Makes `file` at least `size` bytes long with the blocks really allocated, so later
   * overwrites followed by fdatasync need no file-system metadata update.
   */
  preallocate(file: DiskFile, size: number): Promise<void>;
  /** Takes the exclusive lock of `dir` or throws WalLockedError naming the holder. */
  lock(dir: string): Promise<DiskLock>;
}

/**
 * Writes all of buf at `position`, looping over short writes; a write of 0 bytes is an error.
 * `durable`: each write is a writeDurable, so all of buf is durable once this resolves.
 */
export async function writeFully(file: DiskFile, buf: Uint8Array, position: number, durable = false): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const rest = done === 0 ? buf : buf.subarray(done);
    const n = await (durable ? file.writeDurable(rest, position + done) : file.write(rest, position + done));
    if (n <= 0) throw Object.assign(new Error(`write of ${file.path} made no progress at offset ${position + done}`), { code: 'EIO' });
    done += n;
  }
}

/** Reads exactly `length` bytes at `position` unless the file ends first; returns how many were read. */
export async function readFully(
  file: DiskFile,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await file.read(buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** mkdir -p, then fsync the parent of every directory it created, top down. */
export async function mkdirDurable(disk: Disk, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); !(await disk.exists(d)); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  await disk.mkdirAll(dir);
  for (const d of missing) await disk.fsyncDir(dirname(d));
}

