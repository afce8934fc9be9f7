// Prepares the next WAL segment in the background (etcd's filePipeline): a file
// `0.tmp` or `1.tmp` in the WAL directory, preallocated to the segment size and
// synced, so a segment cut only writes a small header instead of waiting for
// 64 MB of allocation. The two names alternate, so the file being handed out is
// never the one being prepared. Left-over .tmp files are ignored when reading.
//
// Unlike etcd, preparation starts only when asked (the WAL asks once its tail is
// half full): without fallocate(2), preallocating may mean writing the zeros
// (nodedisk.ts 'zero-fill'), and doing that at start-up would compete with
// replay and the first fsyncs.

import { join } from 'node:path';
import type { Disk, DiskFile } from './disk.js';

type Allocation = { readonly file: DiskFile } | { readonly error: unknown };

export class SegmentPipeline {
  private count = 0;
  private pending: Promise<Allocation> | undefined;
  private closed = false;

  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    private readonly size: number,
  ) {}

  /** Starts preparing the next file, unless that is already under way. */
  prepare(): void {
    if (this.pending === undefined && !this.closed) this.pending = this.allocate();
  }

  /** The next preallocated file (prepared now if it was not yet); the caller renames it into place. */
  async take(): Promise<DiskFile> {
    this.prepare();
    const a = await this.pending!;
    this.pending = undefined;
    if ('error' in a) {
      // try again once on the spot: the failure may have been transient (ENOSPC freed since)
      this.prepare();
      const b = await this.pending!;
      this.pending = undefined;
      if ('error' in b) throw b.error;
      return b.file;
    }
    return a.file;
  }

  /** Stops preparing and removes the prepared file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const a = await this.pending;
    this.pending = undefined;
    if (a !== undefined && 'file' in a) {
      await a.file.close().catch(() => undefined);
      await this.disk.unlink(a.file.path).catch(() => undefined);
    }
  }

  private allocate(): Promise<Allocation> {
    const path = join(this.dir, `${this.count++ % 2}.tmp`);
    const run = async (): Promise<DiskFile> => {
      const file = await this.disk.open(path, 'create');
      try {
        await this.disk.preallocate(file, this.size);
        await file.fdatasync();
        return file;
      } catch (err) {
        await file.close().catch(() => undefined);
        throw err;
      }
    };
    return run().then(
      (file) => ({ file }),
      (error: unknown) => ({ error }),
    );
  }
}
