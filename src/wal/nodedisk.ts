// The production Disk: plain `fs` on raw file descriptors. The callback API is
// used directly (one libuv request per call, no FileHandle bookkeeping) because
// the WAL's hot path is one write and one fdatasync per raft Ready.

import fs from 'node:fs';
import type { Disk, DiskFile, DiskLock, OpenMode } from './disk.js';
import { lockDir } from './lockfile.js';

const ZERO_CHUNK = new Uint8Array(1 << 20);

function call<T>(fn: (cb: (err: NodeJS.ErrnoException | null, v: T) => void) => void, failure?: Failure): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(failure ? failure(err) : err) : resolve(v))));
}

function callVoid(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void, failure?: Failure): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(failure ? failure(err) : err) : resolve())));
}

type Failure = (err: NodeJS.ErrnoException) => Error;

/**
 * A failed write names its file, as etcd's fatal lines do ("failed to write …: no space
 * left on device"): Node's own message for an fd says only "ENOSPC: …, write". The
 * errno code stays on the error for callers that test it.
 */
function failed(op: string, path: string): Failure {
  return (err) =>
    Object.assign(new Error(`failed to ${op} ${path}: ${err.message}`, { cause: err }), { code: err.code, errno: err.errno, syscall: err.syscall, path });
}

class NodeFile implements DiskFile {
  /** A second descriptor of the same file opened O_DSYNC, for writeDurable; opened on first use. */
  private dsyncFd: Promise<number> | undefined;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly mayBlock: () => boolean,
  ) {}

  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return call((cb) => fs.read(this.fd, buf, offset, length, position, cb));
  }

  write(buf: Uint8Array, position: number): Promise<number> {
    return call((cb) => fs.write(this.fd, buf, 0, buf.length, position, cb), failed('write', this.path));
  }

  async writeDurable(buf: Uint8Array, position: number): Promise<number> {
    // Reopened through /proc, not by path: the file may have been renamed since it was opened
    // (a WAL segment is prepared as a .tmp file). Where that fails, write then fdatasync.
    this.dsyncFd ??= call<number>((cb) => fs.open(`/proc/self/fd/${this.fd}`, fs.constants.O_WRONLY | fs.constants.O_DSYNC, cb)).catch(() => -1);
    const dsync = await this.dsyncFd;
    if (dsync < 0) {
      const n = await this.write(buf, position);
      await this.fdatasync();
      return n;
    }
    if (!this.mayBlock()) return call((cb) => fs.write(dsync, buf, 0, buf.length, position, cb), failed('write', this.path));
    try {
      return fs.writeSync(dsync, buf, 0, buf.length, position);
    } catch (err) {
      throw failed('write', this.path)(err as NodeJS.ErrnoException);
    }
  }

  fdatasync(): Promise<void> {
    return callVoid((cb) => fs.fdatasync(this.fd, cb), failed('fdatasync', this.path));
  }

  fsync(): Promise<void> {
    return callVoid((cb) => fs.fsync(this.fd, cb), failed('fsync', this.path));
  }

  truncate(size: number): Promise<void> {
    return callVoid((cb) => fs.ftruncate(this.fd, size, cb), failed('truncate', this.path));
  }

  async size(): Promise<number> {
    return (await call<fs.Stats>((cb) => fs.fstat(this.fd, cb))).size;
  }

  async close(): Promise<void> {
    const dsync = await this.dsyncFd;
    if (dsync !== undefined && dsync >= 0) await callVoid((cb) => fs.close(dsync, cb));
    return callVoid((cb) => fs.close(this.fd, cb));
  }
}

const FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  write: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
};

export interface NodeDiskOptions {
  /**
   * How preallocate() reserves a segment. Node has no fallocate(2). 'sparse'
   * (the default) sets the size with ftruncate: appends then never change the
   * file size, so fdatasync has no size to flush, and blocks are allocated as
   * they are first written. 'zero-fill' writes the zeros, reserving the space up
   * front (no ENOSPC half way through a segment) at the price of writing every
   * segment twice. Measured by bench/wal on this project's test VM (ext4 on
   * virtio): equal fdatasync latency for small batches, and 'zero-fill' about
   * 40% slower for large ones, so 'sparse' is the default.
   */
  readonly preallocate?: 'zero-fill' | 'sparse';
  /**
   * Asked before each durable write (writeDurable): true makes it on the main thread,
   * which then waits for the disk, instead of through libuv's thread pool. The pool's
   * round trip (wake a pool thread, then wake the loop when it is done) costs ~50 µs and
   * ~40 µs of CPU a write on this project's VM, a third of a fast disk's own time; a
   * blocked loop costs whatever else it would have done meanwhile. Default: never.
   */
  readonly durableWriteMayBlock?: () => boolean;
}

export function createNodeDisk(opts: NodeDiskOptions = {}): Disk {
  const mode = opts.preallocate ?? 'sparse';
  const mayBlock = opts.durableWriteMayBlock ?? (() => false);
  return {
    async open(path: string, m: OpenMode): Promise<DiskFile> {
      const fd = await call<number>((cb) => fs.open(path, FLAGS[m], 0o600, cb));
      return new NodeFile(path, fd, mayBlock);
    },
    async readFile(path: string): Promise<Uint8Array> {
      return fs.promises.readFile(path);
    },
    readdir(dir: string): Promise<string[]> {
      return fs.promises.readdir(dir);
    },
    readdirSync(dir: string): string[] | undefined {
      try {
        return fs.readdirSync(dir);
      } catch {
        return undefined;
      }
    },
    async exists(path: string): Promise<boolean> {
      return fs.promises.stat(path).then(
        () => true,
        () => false,
      );
    },
    async mkdirAll(dir: string): Promise<void> {
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    },
    removeAll(path: string): Promise<void> {
      return fs.promises.rm(path, { recursive: true, force: true });
    },
    rename(from: string, to: string): Promise<void> {
      return fs.promises.rename(from, to);
    },
    unlink(path: string): Promise<void> {
      return fs.promises.unlink(path);
    },
    async fsyncDir(dir: string): Promise<void> {
      const fd = await call<number>((cb) => fs.open(dir, fs.constants.O_RDONLY, cb));
      try {
        await callVoid((cb) => fs.fsync(fd, cb));
      } finally {
        await callVoid((cb) => fs.close(fd, cb));
      }
    },
    async preallocate(file: DiskFile, size: number): Promise<void> {
      const cur = await file.size();
      if (cur >= size) return;
      if (mode === 'sparse') return file.truncate(size);
      for (let pos = cur; pos < size; ) {
        const n = await file.write(ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, size - pos)), pos);
        pos += n;
      }
    },
    lock(dir: string): Promise<DiskLock> {
      return lockDir(dir);
    },
  };
}

export const nodeDisk: Disk = createNodeDisk();
