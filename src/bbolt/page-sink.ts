// Hands out page ids in order and writes the pages behind them with positioned writes,
// gathering consecutive pages into one writev of about a MiB.

import type { FileHandle } from 'node:fs/promises';

const FLUSH_BYTES = 1 << 20;

export class PageSink {
  /** the next page id to hand out; 0 and 1 are the meta pages, written last */
  private next = 2n;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingStart = 2n;

  constructor(
    private readonly fh: FileHandle,
    readonly pageSize: number,
  ) {}

  /** The high-water mark: ids below it are handed out. */
  get highWater(): bigint {
    return this.next;
  }

  /**
   * Assigns the next ids to `page` (a whole number of pages, header first), writes the
   * id into its header and queues it for writing.
   */
  async append(page: Buffer): Promise<bigint> {
    const id = this.next;
    page.writeBigUInt64LE(id, 0);
    this.next += BigInt(page.length / this.pageSize);
    this.pending.push(page);
    this.pendingBytes += page.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
    return id;
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const bufs = this.pending;
    const position = Number(this.pendingStart) * this.pageSize;
    this.pending = [];
    this.pendingStart += BigInt(this.pendingBytes / this.pageSize);
    this.pendingBytes = 0;
    let written = 0;
    const total = bufs.reduce((n, b) => n + b.length, 0);
    // writev may write less than asked; resume from where it stopped.
    let rest = bufs;
    while (written < total) {
      const { bytesWritten } = await this.fh.writev(rest, position + written);
      written += bytesWritten;
      rest = skip(rest, bytesWritten);
    }
  }
}

function skip(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) n -= b.length;
    else {
      out.push(n > 0 ? b.subarray(n) : b);
      n = 0;
    }
  }
  return out;
}
