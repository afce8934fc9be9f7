// Prepares the next WAL segment in the background (etcd's filePipeline): a file
// `0.tmp` or `1.tmp` in the WAL directory, preallocated to the segment size and
// synced, so a segment cut only writes a small header instead of waiting for
// 64 MB of allocation. The two names alternate, so the file being handed out is
// never the one being prepared. Left-over .tmp files are ignored when reading.

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
  ) {
    this.pending = this.allocate();
  }

  /** The next preallocated file; the caller renames it into place. */
  async take(): Promise<DiskFile> {
    const a = await this.pending!;
    if ('error' in a) {
      // try again once on the spot: the failure may have been transient (ENOSPC freed since)
      this.pending = this.allocate();
      const b = await this.pending;
      if ('error' in b) throw b.error;
      this.pending = this.allocate();
      return b.file;
    }
    this.pending = this.allocate();
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
