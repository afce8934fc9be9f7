// An in-memory Disk that knows what a crash leaves behind, for crash tests and the
// deterministic simulator. It keeps, besides the current state, what is durable:
// file contents as of their last fsync/fdatasync and directory entries as of their
// directory's last fsync. Faults are injected through a hook (errors, short writes,
// a crash after N more bytes), and afterCrash() builds the disk a restarted process
// would find:
//  - 'process': the process died, the kernel did not; everything written is there.
//  - 'power': only what was synced, plus a seeded random subset of the 512-byte
//    sectors written since (sectors land whole, in any order, each as it was at
//    some moment); directory changes
//    that were not fsynced are lost, and with them any file only they reached.

import { posix } from 'node:path';
import type { Disk, DiskFile, DiskLock, OpenMode } from './disk.js';
import { WalLockedError } from './errors.js';
import { seededRandom } from '../pkg/rng.js';

export type DiskOp =
  | { readonly op: 'write'; readonly path: string; readonly position: number; readonly length: number }
  | {
      readonly op: 'fdatasync' | 'fsync' | 'truncate' | 'open' | 'rename' | 'unlink' | 'fsyncDir' | 'mkdir' | 'remove';
      readonly path: string;
    };

export type FaultAction =
  /** fail the operation with this errno code (ENOSPC, EIO, ...) and leave the state alone */
  | { readonly error: string }
  /** write only the first n bytes and report n */
  | { readonly shortWrite: number }
  /** the process dies now; a write first lands its first `afterBytes` bytes */
  | { readonly crash: true; readonly afterBytes?: number };

export type FaultHook = (op: DiskOp) => FaultAction | undefined;

/** Thrown by every operation of a MemDisk whose process has "died". */
export class SimulatedCrash extends Error {
  constructor() {
    super('simulated crash');
    this.name = 'SimulatedCrash';
  }
}

const SECTOR = 512;

/** What a write or truncation changed, so an unsynced change can be undone at a power cut. */
type Change =
  | { readonly kind: 'write'; readonly pos: number; readonly after: Uint8Array; readonly before: Uint8Array; readonly oldSize: number }
  | { readonly kind: 'truncate'; readonly newSize: number; readonly oldSize: number; readonly removed: Uint8Array };

/**
 * A file. Only bytes up to the highest one ever written are held in memory; the
 * rest of `size` (a preallocated tail) reads as zeros. Changes since the last
 * sync are kept with what they replaced, so syncing costs nothing and a power
 * cut can roll them back and replay a random part of them.
 */
class MemInode {
  kind = 'file' as const;
  private data = new Uint8Array(0);
  /** bytes of `data` in use: everything past it (up to size) is zero */
  private len = 0;
  size = 0;
  /** changes since the last sync, oldest first */
  private pending: Change[] = [];

  write(pos: number, bytes: Uint8Array): void {
    const end = pos + bytes.length;
    const before = this.slice(pos, Math.min(end, this.size));
    this.pending.push({ kind: 'write', pos, after: bytes.slice(), before, oldSize: this.size });
    this.put(pos, bytes);
    this.size = Math.max(this.size, end);
  }

  truncate(size: number): void {
    const removed = size < this.size ? this.slice(size, this.size) : new Uint8Array(0);
    this.pending.push({ kind: 'truncate', newSize: size, oldSize: this.size, removed });
    this.setSize(size);
  }

  sync(): void {
    this.pending = [];
  }

  /**
   * What a write of [from, to) through an O_DSYNC descriptor makes durable: those bytes and
   * nothing else. Unsynced changes elsewhere stay unsynced (a change straddling the range
   * keeps its parts outside it), so a caller that counts on more loses data in a power cut.
   */
  syncRange(from: number, to: number): void {
    const left: Change[] = [];
    for (const c of this.pending) {
      if (c.kind === 'truncate' || c.pos + c.after.length <= from || c.pos >= to) {
        left.push(c);
        continue;
      }
      // The new size would have to be durable too; the WAL only writes inside preallocated segments.
      if (c.oldSize < Math.min(to, c.pos + c.after.length)) throw new Error('memdisk: a durable write that grows the file is not modelled');
      const keep = (a: number, b: number): void => {
        if (a < b) left.push({ kind: 'write', pos: a, after: c.after.subarray(a - c.pos, b - c.pos), before: c.before.subarray(a - c.pos, b - c.pos), oldSize: c.oldSize });
      };
      keep(c.pos, Math.min(from, c.pos + c.after.length));
      keep(Math.max(to, c.pos), c.pos + c.after.length);
    }
    this.pending = left;
  }

  /** Copies file bytes [position, position+length) into buf[offset...]; returns the count (0 at end of file). */
  readAt(buf: Uint8Array, offset: number, length: number, position: number): number {
    if (position >= this.size) return 0;
    const n = Math.min(length, this.size - position);
    const held = Math.max(0, Math.min(n, this.len - position));
    if (held > 0) buf.set(this.data.subarray(position, position + held), offset);
    if (held < n) buf.fill(0, offset + held, offset + n);
    return n;
  }

  contents(): Uint8Array {
    return this.slice(0, this.size);
  }

  /** The file as it would be after a crash: all of it ('process'), or only synced state plus a random part of the rest ('power'). */
  afterCrash(mode: 'process' | 'power', rand: () => number): MemInode {
    const g = new MemInode();
    g.put(0, this.data.subarray(0, this.len));
    g.size = this.size;
    if (mode === 'process') return g;
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const c = this.pending[i]!;
      if (c.kind === 'write') {
        g.put(c.pos, c.before);
        g.setSize(c.oldSize);
      } else {
        g.setSize(c.oldSize);
        g.put(c.newSize, c.removed);
      }
    }
    // A sector holds what it held at some moment: once one write's piece of it is lost,
    // later writes' pieces of it are too (writing a sector writes all of it, earlier
    // bytes included).
    const stale = new Set<number>();
    for (const c of this.pending) {
      if (c.kind === 'truncate') {
        if (rand() < 0.5) g.setSize(c.newSize);
        continue;
      }
      // the 512-byte sector pieces of a write land independently
      for (let i = 0; i < c.after.length; ) {
        const n = Math.min(SECTOR - ((c.pos + i) % SECTOR), c.after.length - i);
        const sector = Math.floor((c.pos + i) / SECTOR);
        if (!stale.has(sector) && rand() < 0.5) {
          g.put(c.pos + i, c.after.subarray(i, i + n));
          g.size = Math.max(g.size, c.pos + i + n);
        } else {
          stale.add(sector);
        }
        i += n;
      }
    }
    return g;
  }

  static from(bytes: Uint8Array): MemInode {
    const f = new MemInode();
    f.put(0, bytes);
    f.size = bytes.length;
    return f;
  }

  private slice(from: number, to: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, to - from));
    this.readAt(out, 0, out.length, from);
    return out;
  }

  /** Stores bytes at pos in the held region (growing it), without touching size. */
  private put(pos: number, bytes: Uint8Array): void {
    const end = pos + bytes.length;
    if (end > this.data.length) {
      const next = new Uint8Array(Math.max(end, this.data.length * 2, 4096));
      next.set(this.data.subarray(0, this.len));
      this.data = next;
    }
    if (pos > this.len) this.data.fill(0, this.len, pos);
    this.data.set(bytes, pos);
    this.len = Math.max(this.len, end);
  }

  private setSize(size: number): void {
    if (size < this.len) this.len = size;
    this.size = size;
  }
}

class MemDir {
  kind = 'dir' as const;
  entries = new Map<string, MemNode>();
  durable = new Map<string, MemNode>();
}

type MemNode = MemInode | MemDir;

function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure, ${syscall} '${path}'`), { code, syscall, path });
}

export class MemDisk implements Disk {
  /** Consulted before every mutating operation; see FaultAction. */
  fault: FaultHook | undefined;
  /** When set, the process dies once this many more bytes have been written. */
  crashAfterBytes: number | undefined;
  /** Bytes written through this disk so far (for picking crash points). */
  bytesWritten = 0;
  private dead = false;
  private readonly root: MemDir;
  private readonly locks = new Map<string, string>();

  constructor(root?: MemDir) {
    this.root = root ?? new MemDir();
  }

  get crashed(): boolean {
    return this.dead;
  }

  /** The disk a restarted process finds; see the top of this file. `seed` drives the 'power' tearing. */
  afterCrash(mode: 'process' | 'power', seed = 1): MemDisk {
    const rand = seededRandom(seed);
    const copy = (d: MemDir): MemDir => {
      const out = new MemDir();
      const source = mode === 'process' ? d.entries : d.durable;
      for (const [name, node] of source) {
        const n = node.kind === 'dir' ? copy(node) : copyFile(node);
        out.entries.set(name, n);
        out.durable.set(name, n);
      }
      return out;
    };
    const copyFile = (f: MemInode): MemInode => f.afterCrash(mode, rand);
    return new MemDisk(copy(this.root));
  }

  /** Current contents of a file (test helper). */
  fileBytes(path: string): Uint8Array {
    const n = this.lookup(path);
    if (n?.kind !== 'file') throw errno('ENOENT', 'open', path);
    return n.contents().slice();
  }

  /** Overwrites a file's contents, durably (test helper for injecting damage). */
  setFileBytes(path: string, bytes: Uint8Array): void {
    const n = this.lookup(path);
    if (n?.kind !== 'file') throw errno('ENOENT', 'open', path);
    n.truncate(0);
    n.write(0, bytes);
    n.sync();
  }

  // ---- Disk ----

  async open(path: string, mode: OpenMode): Promise<DiskFile> {
    this.check({ op: 'open', path });
    const { dir, name } = this.parent(path, 'open');
    let node = dir.entries.get(name);
    if (node?.kind === 'dir') throw errno('EISDIR', 'open', path);
    if (node === undefined) {
      if (mode !== 'create') throw errno('ENOENT', 'open', path);
      node = new MemInode();
      dir.entries.set(name, node);
    } else if (mode === 'create') {
      node.truncate(0);
    }
    return new MemFile(this, path, node);
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.alive();
    const n = this.lookup(path);
    if (n === undefined) throw errno('ENOENT', 'open', path);
    if (n.kind === 'dir') throw errno('EISDIR', 'read', path);
    return n.contents().slice();
  }

  async readdir(dir: string): Promise<string[]> {
    this.alive();
    const n = this.lookup(dir);
    if (n === undefined) throw errno('ENOENT', 'scandir', dir);
    if (n.kind !== 'dir') throw errno('ENOTDIR', 'scandir', dir);
    return [...n.entries.keys()];
  }

  readdirSync(dir: string): string[] | undefined {
    const n = this.lookup(dir);
    return n?.kind === 'dir' ? [...n.entries.keys()] : undefined;
  }

  async exists(path: string): Promise<boolean> {
    this.alive();
    return this.lookup(path) !== undefined;
  }

  async mkdirAll(dir: string): Promise<void> {
    this.check({ op: 'mkdir', path: dir });
    let cur = this.root;
    for (const part of parts(dir)) {
      let next = cur.entries.get(part);
      if (next === undefined) {
        next = new MemDir();
        cur.entries.set(part, next);
      } else if (next.kind !== 'dir') {
        throw errno('ENOTDIR', 'mkdir', dir);
      }
      cur = next;
    }
  }

  async removeAll(path: string): Promise<void> {
    this.check({ op: 'remove', path });
    const ps = parts(path);
    if (ps.length === 0) throw errno('EPERM', 'rm', path);
    const dir = this.lookup(posix.dirname(norm(path)));
    if (dir?.kind === 'dir') dir.entries.delete(ps[ps.length - 1]!);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check({ op: 'rename', path: from });
    const a = this.parent(from, 'rename');
    const node = a.dir.entries.get(a.name);
    if (node === undefined) throw errno('ENOENT', 'rename', from);
    const b = this.parent(to, 'rename');
    const existing = b.dir.entries.get(b.name);
    if (existing?.kind === 'dir' && (node.kind !== 'dir' || existing.entries.size > 0)) {
      throw errno(node.kind === 'dir' ? 'ENOTEMPTY' : 'EISDIR', 'rename', to);
    }
    a.dir.entries.delete(a.name);
    b.dir.entries.set(b.name, node);
  }

  async unlink(path: string): Promise<void> {
    this.check({ op: 'unlink', path });
    const { dir, name } = this.parent(path, 'unlink');
    const n = dir.entries.get(name);
    if (n === undefined) throw errno('ENOENT', 'unlink', path);
    if (n.kind === 'dir') throw errno('EISDIR', 'unlink', path);
    dir.entries.delete(name);
  }

  async fsyncDir(dir: string): Promise<void> {
    this.check({ op: 'fsyncDir', path: dir });
    const n = this.lookup(dir);
    if (n?.kind !== 'dir') throw errno('ENOENT', 'fsync', dir);
    n.durable = new Map(n.entries);
  }

  async preallocate(file: DiskFile, size: number): Promise<void> {
    if ((await file.size()) < size) await file.truncate(size);
  }

  async lock(dir: string): Promise<DiskLock> {
    this.alive();
    let key = norm(dir);
    const holder = this.locks.get(key);
    if (holder !== undefined) throw new WalLockedError(dir, holder);
    this.locks.set(key, 'another WAL in this simulated process');
    return {
      release: async () => {
        this.locks.delete(key);
      },
      moveTo: (newDir: string) => {
        this.locks.delete(key);
        key = norm(newDir);
        this.locks.set(key, 'another WAL in this simulated process');
      },
    };
  }

  // ---- internals used by MemFile ----

  /** Runs the fault hook for a mutating op; returns the action that applies to it. */
  check(op: DiskOp): FaultAction | undefined {
    this.alive();
    const action = this.fault?.(op);
    if (action === undefined) return undefined;
    if ('error' in action) throw errno(action.error, op.op, op.path);
    if ('crash' in action && op.op !== 'write') this.die();
    return action;
  }

  /** Applies the byte budget and crash actions to a write; returns how many bytes to write. */
  writeBudget(action: FaultAction | undefined, length: number): { n: number; crash: boolean } {
    let n = length;
    let crash = false;
    if (action && 'shortWrite' in action) n = Math.min(n, action.shortWrite);
    if (action && 'crash' in action) {
      n = Math.min(n, action.afterBytes ?? 0);
      crash = true;
    }
    if (this.crashAfterBytes !== undefined) {
      const left = this.crashAfterBytes - this.bytesWritten;
      if (n >= left) {
        n = Math.max(0, left);
        crash = true;
      }
    }
    return { n, crash };
  }

  die(): never {
    this.dead = true;
    throw new SimulatedCrash();
  }

  alive(): void {
    if (this.dead) throw new SimulatedCrash();
  }

  private lookup(path: string): MemNode | undefined {
    let cur: MemNode = this.root;
    for (const part of parts(path)) {
      if (cur.kind !== 'dir') return undefined;
      const next: MemNode | undefined = cur.entries.get(part);
      if (next === undefined) return undefined;
      cur = next;
    }
    return cur;
  }

  private parent(path: string, syscall: string): { dir: MemDir; name: string } {
    const ps = parts(path);
    const dir = this.lookup(posix.dirname(norm(path)));
    if (dir?.kind !== 'dir' || ps.length === 0) throw errno('ENOENT', syscall, path);
    return { dir, name: ps[ps.length - 1]! };
  }
}

class MemFile implements DiskFile {
  private closed = false;

  constructor(
    private readonly disk: MemDisk,
    readonly path: string,
    private readonly node: MemInode,
  ) {}

  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    this.usable();
    return this.node.readAt(buf, offset, length, position);
  }

  async write(buf: Uint8Array, position: number): Promise<number> {
    this.usable();
    const action = this.disk.check({ op: 'write', path: this.path, position, length: buf.length });
    const { n, crash } = this.disk.writeBudget(action, buf.length);
    if (n > 0) this.node.write(position, buf.subarray(0, n));
    this.disk.bytesWritten += n;
    if (crash) this.disk.die();
    return n;
  }

  /** A write (faults as write's), then a sync of what it wrote (faults as fdatasync's). */
  async writeDurable(buf: Uint8Array, position: number): Promise<number> {
    const n = await this.write(buf, position);
    this.usable();
    this.disk.check({ op: 'fdatasync', path: this.path });
    this.node.syncRange(position, position + n);
    return n;
  }

  async fdatasync(): Promise<void> {
    this.usable();
    this.disk.check({ op: 'fdatasync', path: this.path });
    this.node.sync();
  }

  async fsync(): Promise<void> {
    this.usable();
    this.disk.check({ op: 'fsync', path: this.path });
    this.node.sync();
  }

  async truncate(size: number): Promise<void> {
    this.usable();
    this.disk.check({ op: 'truncate', path: this.path });
    this.node.truncate(size);
  }

  async size(): Promise<number> {
    this.usable();
    return this.node.size;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private usable(): void {
    this.disk.alive();
    if (this.closed) throw errno('EBADF', 'use', this.path);
  }
}

function norm(p: string): string {
  return posix.resolve('/', p);
}

function parts(p: string): string[] {
  return norm(p).split('/').filter((s) => s.length > 0);
}
