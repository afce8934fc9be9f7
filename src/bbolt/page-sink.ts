// Hands out page ids in order and lays the pages behind them out in chunks of about a
// MiB, which go to the output (a file, or a stream to a client) with one write each,
// while the next ones fill: encoding a page costs no promise, and the file sees big
// sequential writes.

import type { FileHandle } from 'node:fs/promises';

/** Where the pages go: `bufs` are the bytes from `position` on, handed over in increasing positions. */
export type PageOutput = (bufs: Buffer[], position: number) => Promise<void>;

/** Positioned writes to `fh`. */
export function fileOutput(fh: FileHandle): PageOutput {
  return (bufs, position) => writeAll(fh, bufs, position);
}

const CHUNK_BYTES = 1 << 20;

/** Where to lay out pages that were just handed their ids. */
export interface PageSpan {
  /** the first page's id (already in its header) */
  readonly id: bigint;
  /** bytes [at, at + pages × pageSize) of buf, the id's 8 bytes set and the rest not: the encoder writes or zeroes each one */
  readonly buf: Buffer;
  readonly at: number;
}

export class PageSink {
  /** the next page id to hand out; 0 and 1 are the meta pages, written last */
  private next = 2n;
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  /** filled chunks not yet handed to the file, in page order */
  private sealed: Buffer[] = [];
  /** where the first sealed byte goes in the file */
  private position: number;
  private writing: Promise<void> = Promise.resolve();
  /** a failed write, thrown by the next drain() or flush() */
  private failure: Error | undefined;

  constructor(
    private readonly output: PageOutput,
    readonly pageSize: number,
  ) {
    this.position = 2 * pageSize;
  }

  /** The high-water mark: ids below it are handed out. */
  get highWater(): bigint {
    return this.next;
  }

  /** Hands out the next `pages` ids (a node and its overflow) and the bytes to encode them into. */
  allocate(pages: number): PageSpan {
    const id = this.next;
    const bytes = pages * this.pageSize;
    this.next += BigInt(pages);
    if (this.used + bytes > this.chunk.length) {
      this.seal();
      if (bytes > CHUNK_BYTES) {
        // a node with big values: a buffer of its own, queued as it is
        const buf = Buffer.allocUnsafe(bytes);
        this.sealed.push(buf);
        return this.span(id, buf, 0);
      }
    }
    const at = this.used;
    this.used += bytes;
    return this.span(id, this.chunk, at);
  }

  /**
   * Hands the filled chunks to the file once the previous write is done, without waiting
   * for this one: at most one write is in flight, so memory stays bounded.
   */
  async drain(): Promise<void> {
    await this.writing;
    if (this.failure !== undefined) throw this.failure;
    if (this.sealed.length === 0) return;
    const bufs = this.sealed;
    const position = this.position;
    this.sealed = [];
    this.position += bufs.reduce((n, b) => n + b.length, 0);
    this.writing = this.output(bufs, position).catch((err: Error) => {
      this.failure = err;
    });
  }

  /** Writes every page handed out so far; on disk (not synced) when it resolves. */
  async flush(): Promise<void> {
    this.seal();
    await this.drain();
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for the write in flight, whatever its outcome (before closing the file). */
  settle(): Promise<void> {
    return this.writing;
  }

  private span(id: bigint, buf: Buffer, at: number): PageSpan {
    buf.writeBigUInt64LE(id, at);
    return { id, buf, at };
  }

  private seal(): void {
    if (this.used === 0) return;
    this.sealed.push(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.used = 0;
  }
}

/** writev may write less than asked; resumes from where it stopped. */
async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  let written = 0;
  let rest = bufs;
  while (written < total) {
    const { bytesWritten } = await fh.writev(rest, position + written);
    written += bytesWritten;
    rest = skip(rest, bytesWritten);
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
