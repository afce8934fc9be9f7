// Reads whole pages (header plus overflow) of a bbolt file through a FileHandle, with a
// read-ahead window that grows while the reads are sequential (a defragmented file is
// read front to back). A tree walk reads runs of leaves in file order with a jump to a
// branch page between runs: a jump reads into a second window, so the run's window
// survives it and the run carries on with reads as big as before.

import type { FileHandle } from 'node:fs/promises';
import { BoltFormatError } from './errors.js';
import { flagName, PAGE_HEADER_SIZE, PageFlag, readPageHeader } from './format.js';

const MAX_READ_AHEAD = 1 << 20;

interface Window {
  start: number;
  buf: Buffer;
}

export class PageReader {
  /** the most recently used window first */
  private windows: [Window, Window] = [
    { start: 0, buf: Buffer.alloc(0) },
    { start: 0, buf: Buffer.alloc(0) },
  ];

  constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    readonly fileSize: number,
    readonly pageSize: number,
    /** meta.pgid: pages at or above it are not part of the database */
    readonly highWater: bigint,
  ) {}

  /**
   * Page `id` with its overflow pages, after checking that it lies below the high-water
   * mark, that its header carries its own id and that its flags are `flags`.
   */
  async page(id: bigint, flags: number, what: string): Promise<Buffer> {
    if (id < 2n || id >= this.highWater) {
      throw new BoltFormatError(this.file, id, `${what} points outside the database's pages [2, ${this.highWater})`);
    }
    const start = Number(id) * this.pageSize;
    const first = await this.bytes(id, start, this.pageSize);
    const h = readPageHeader(first);
    if (h.id !== id) throw new BoltFormatError(this.file, id, `header says page ${h.id}: not a ${what}`);
    if (h.flags !== flags) throw new BoltFormatError(this.file, id, `${what} expected ${flagName(flags)}, found ${flagName(h.flags)}`);
    if (h.overflow === 0) return first;
    if (id + BigInt(h.overflow) >= this.highWater) {
      throw new BoltFormatError(this.file, id, `${h.overflow} overflow pages run past the high-water mark ${this.highWater}`);
    }
    return this.bytes(id, start, (h.overflow + 1) * this.pageSize);
  }

  /** Page `id` as a branch or a leaf, whichever it is (a tree's nodes). */
  async node(id: bigint, what: string): Promise<Buffer> {
    if (id < 2n || id >= this.highWater) {
      throw new BoltFormatError(this.file, id, `${what} points outside the database's pages [2, ${this.highWater})`);
    }
    const head = await this.bytes(id, Number(id) * this.pageSize, PAGE_HEADER_SIZE);
    // Anything but a branch is checked as a leaf, so a wrong flag is reported as such.
    return this.page(id, readPageHeader(head).flags === PageFlag.branch ? PageFlag.branch : PageFlag.leaf, what);
  }

  private async bytes(id: bigint, start: number, length: number): Promise<Buffer> {
    if (start + length > this.fileSize) {
      throw new BoltFormatError(this.file, id, `needs bytes [${start}, ${start + length}) but the file is ${this.fileSize} bytes (truncated?)`);
    }
    for (const [i, w] of this.windows.entries()) {
      const at = start - w.start;
      if (at >= 0 && at + length <= w.buf.length) {
        if (i === 1) this.windows.reverse();
        return w.buf.subarray(at, at + length);
      }
    }
    // Reading on from the end of a window doubles its read; a jump reads a page or so
    // and replaces the window used least recently.
    const extended = this.windows.findIndex((w) => w.buf.length > 0 && start === w.start + w.buf.length);
    const readAhead = extended < 0 ? this.pageSize : Math.min(this.windows[extended]!.buf.length * 2, MAX_READ_AHEAD);
    const want = Math.min(Math.max(length, readAhead), this.fileSize - start);
    // A fresh buffer each time: slices handed out of the old window stay valid.
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.fh.read(buf, got, want - got, start + got);
      if (bytesRead === 0) throw new BoltFormatError(this.file, id, `file ended at byte ${start + got} while reading the page`);
      got += bytesRead;
    }
    const replaced = extended < 0 ? 1 : extended;
    const kept = this.windows[1 - replaced]!;
    this.windows = [{ start, buf }, kept];
    return buf.subarray(0, length);
  }
}
