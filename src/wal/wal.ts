// The write-ahead log: etcd's segmented WAL (wal/wal.go at v3.4), same files, same
// records, same recovery rules, on top of the Disk interface.
//
// Life cycle: create() gives a WAL ready to append. open() gives one ready to read;
// readAll() replays it (repairing a torn tail) and then it is ready to append.
// save() is the hot path: every record of one raft Ready is framed into one buffer,
// written with one pwrite and made durable with one fdatasync. A segment that
// reaches the segment size is cut: the next, already preallocated file gets a crc,
// metadata and state header and is renamed into place.
//
// Once a write or fdatasync fails the WAL refuses everything but close(): after a
// failed fsync Linux may have dropped the dirty pages, so what is on disk is
// unknown until the log is reopened and replayed.

import { basename, dirname, join, resolve } from 'node:path';
import {
  type Entry,
  type HardState,
  decodeHardState,
  emptyHardState,
  encodeHardState,
  isEmptyHardState,
} from '../raftpb/index.js';
import { nonZeroBytesFrom, readSegment } from './decoder.js';
import { type Disk, type DiskFile, type DiskLock, mkdirDurable, writeFully } from './disk.js';
import { WalCorruptError, WalError, WalFailedError, describe } from './errors.js';
import { FrameEncoder } from './frame.js';
import { type WalLogger, formatDuration, silentLogger } from './logger.js';
import { isValidSeq, parseWalName, searchIndex, walName, walNames } from './names.js';
import { nodeDisk } from './nodedisk.js';
import { SegmentPipeline } from './pipeline.js';
import { holdSegment, releaseSegment } from './retention.js';
import { Replay } from './replay.js';
import { RecordType, type WalSnapshot, decodeWalSnapshot, encodeWalSnapshot } from './walpb.js';

/** etcd's SegmentSizeBytes: 64 MB (decimal, as etcd). */
export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1000 * 1000;

/** fdatasync calls slower than this are logged (etcd's warnSyncDuration). */
const WARN_SYNC_SECONDS = 1;

export interface WalOptions {
  /** Preallocated size of each segment; a segment is cut once it is this full. */
  readonly segmentSizeBytes?: number;
  readonly disk?: Disk;
  readonly logger?: WalLogger;
  /** Called with the duration of every fdatasync/fsync (etcd_disk_wal_fsync_duration_seconds). */
  readonly onFsync?: (seconds: number) => void;
  /** Called with the bytes of every write (etcd_disk_wal_write_bytes_total). */
  readonly onWrite?: (bytes: number) => void;
  /**
   * --unsafe-no-fsync: records are written but never synced, as etcd's SetUnsafeNoFsync
   * (the segment's directory still is). A process crash loses nothing the kernel has; a
   * power cut or a kernel crash may lose what was acknowledged.
   */
  readonly unsafeNoFsync?: boolean;
}

export interface WalContents {
  /** the metadata given to create(): etcd's Metadata{NodeID, ClusterID} */
  readonly metadata: Uint8Array;
  /** the last HardState saved (empty if none) */
  readonly hardState: HardState;
  /** the entries after the snapshot given to open(), later ones overwriting conflicting earlier ones */
  readonly entries: Entry[];
}

interface Segment {
  readonly path: string;
  readonly index: number;
}

interface Tail {
  file: DiskFile;
  seq: number;
  /** where the next record goes */
  offset: number;
  /**
   * The bytes written since the tail was last synced whole (they end at `offset`), which a
   * durable write rewrites along with its own; undefined until the next fdatasync when the
   * file may hold bytes no sync of ours covered (a segment opened after a restart), or when
   * more than MAX_UNSYNCED_BYTES were written unsynced.
   */
  unsynced: { parts: Uint8Array[]; bytes: number } | undefined;
  /**
   * Records encoded but not written yet, which go at `offset` ahead of the next write:
   * HardStates saved alone without a sync (a commit index moving), as etcd's encoder
   * keeps them in its buffer until the next sync. Writing each would be a job for the
   * thread pool per raft Ready, on the path of the next durable write that queues behind it.
   */
  held: { parts: Uint8Array[]; bytes: number };
}

/** Unsynced bytes a durable write would rewrite, past which the next sync is an fdatasync. */
const MAX_UNSYNCED_BYTES = 1 << 20;

/** Held records past which they are written (etcd's encoder buffer, 128 KiB). */
const MAX_HELD_BYTES = 128 * 1024;

type Mode =
  | { readonly kind: 'reading'; readonly start: WalSnapshot }
  | { readonly kind: 'appending'; readonly tail: Tail; readonly pipeline: SegmentPipeline }
  | { readonly kind: 'failed'; readonly cause: unknown; readonly tail: Tail; readonly pipeline: SegmentPipeline }
  | { readonly kind: 'closed' };

export class WAL {
  private mode: Mode;
  private metadata: Uint8Array = new Uint8Array(0);
  /** the last HardState written: repeated at the head of every new segment */
  private state: HardState = emptyHardState;
  /** index of the last entry written */
  private enti = 0;
  /** rolling CRC after the last record written */
  private crc = 0;
  private readonly encoder = new FrameEncoder(0);
  private readonly logger: WalLogger;

  private constructor(
    readonly dir: string,
    private readonly disk: Disk,
    private readonly lock: DiskLock,
    private readonly opts: WalOptions,
    /** the segments this WAL holds, oldest first; the last is the tail */
    private segments: Segment[],
    mode: Mode,
  ) {
    this.mode = mode;
    this.logger = opts.logger ?? silentLogger;
    for (const s of segments) holdSegment(disk, s.path);
  }

  private get segmentSize(): number {
    return this.opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
  }

  /** True when `dir` holds at least one WAL segment (etcd's wal.Exist). */
  static exists(dir: string, disk: Disk = nodeDisk): boolean {
    const names = disk.readdirSync(dir);
    return names !== undefined && walNames(names).length > 0;
  }

  /**
   * Creates a WAL in `dir` (which must not hold one) whose every segment starts with
   * `metadata`. Built in `dir.tmp` and renamed into place, so a crash leaves either
   * no WAL or a complete one. Takes the directory lock.
   */
  static async create(dir: string, metadata: Uint8Array, opts: WalOptions = {}): Promise<WAL> {
    const disk = opts.disk ?? nodeDisk;
    dir = resolve(dir);
    const names = await disk.readdir(dir).catch(() => [] as string[]);
    if (walNames(names).length > 0) throw new WalError(`wal: ${dir} already holds a WAL (file already exists)`);
    const tmp = `${dir}.tmp`;
    await mkdirDurable(disk, dirname(dir));
    if (await disk.exists(tmp)) {
      // left by a create that crashed; make sure no live process is still building it
      await (await disk.lock(tmp)).release();
      await disk.removeAll(tmp);
    }
    await disk.mkdirAll(tmp);
    const lock = await disk.lock(tmp);
    let file: DiskFile | undefined;
    try {
      const first = walName(0, 0);
      file = await disk.open(join(tmp, first), 'create');
      await disk.preallocate(file, opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES);
      const enc = new FrameEncoder(0);
      enc.appendCrc();
      enc.append(RecordType.Metadata, metadata);
      enc.append(RecordType.Snapshot, encodeWalSnapshot({ index: 0, term: 0 }));
      await writeFully(file, enc.bytes(), 0);
      opts.onWrite?.(enc.length);
      await timedSync(() => file!.fdatasync(), opts);
      await file.close();
      file = undefined;
      // the segment's directory entry must be durable before the directory is published
      await disk.fsyncDir(tmp);
      if (await disk.exists(dir)) await disk.removeAll(dir);
      await disk.rename(tmp, dir);
      lock.moveTo(dir);
      await disk.fsyncDir(dirname(dir));

      const path = join(dir, first);
      const tailFile = await disk.open(path, 'write');
      const tail: Tail = { file: tailFile, seq: 0, offset: enc.length, unsynced: { parts: [], bytes: 0 }, held: { parts: [], bytes: 0 } };
      const w = new WAL(dir, disk, lock, opts, [{ path, index: 0 }], {
        kind: 'appending',
        tail,
        pipeline: new SegmentPipeline(disk, dir, opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES),
      });
      w.metadata = metadata.slice();
      w.crc = enc.crc;
      return w;
    } catch (err) {
      await file?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  /**
   * Opens the WAL in `dir` for replay from `snap` (a snapshot previously recorded
   * with saveSnapshot, or {index: 0, term: 0}). Takes the directory lock at once and
   * fails, naming the holder, if another process has it. Call readAll() next.
   */
  static async open(dir: string, snap: WalSnapshot, opts: WalOptions = {}): Promise<WAL> {
    const disk = opts.disk ?? nodeDisk;
    dir = resolve(dir);
    const lock = await disk.lock(dir);
    try {
      const names = walNames(await disk.readdir(dir));
      if (names.length === 0) throw new WalError(`wal: file not found (no WAL segments in ${dir})`);
      const i = searchIndex(names, snap.index);
      if (i < 0) {
        throw new WalError(`wal: file not found (no segment in ${dir} covers snapshot index ${snap.index}; oldest is ${names[0]})`);
      }
      if (!isValidSeq(names.slice(i))) {
        throw new WalError(`wal: file not found (segment sequence in ${dir} has a gap: ${names.slice(i).join(', ')})`);
      }
      const segments = names.slice(i).map((n) => ({ path: join(dir, n), index: parseWalName(n)!.index }));
      return new WAL(dir, disk, lock, opts, segments, { kind: 'reading', start: snap });
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /**
   * Replays the WAL from the snapshot given to open(): returns the metadata, the
   * last HardState and the entries after the snapshot, and leaves the WAL ready to
   * append. A torn write at the end of the last segment is cut off (and logged);
   * damage anywhere else raises WalCorruptError naming the file and offset.
   */
  async readAll(): Promise<WalContents> {
    const mode = this.mode;
    if (mode.kind !== 'reading') throw new WalError('wal: readAll can only be called once, right after open');
    const replay = new Replay(mode.start);
    let crc = 0;
    for (let k = 0; k < this.segments.length; k++) {
      const seg = this.segments[k]!;
      const isLast = k === this.segments.length - 1;
      const file = await this.disk.open(seg.path, isLast ? 'write' : 'read');
      let keep = false;
      try {
        const size = await file.size();
        const res = await readSegment(file, size, isLast, crc, (type, buf, start, end, offset) =>
          replay.apply(type, buf, start, end, seg.path, offset),
        );
        if (res.end.kind === 'corrupt' || (!isLast && res.end.kind !== 'clean')) {
          throw new WalCorruptError(seg.path, res.validEnd, res.end.reason);
        }
        crc = res.crc;
        if (isLast) {
          if (!replay.matched) {
            throw new WalError(
              `wal: snapshot not found (no record of snapshot index ${mode.start.index} term ${mode.start.term} in ${this.dir})`,
            );
          }
          await this.scrubTail(file, seg.path, size, res.validEnd, res.end.kind === 'torn' ? res.end.reason : undefined);
          keep = true;
          const tail: Tail = { file, seq: parseWalName(basename(seg.path))!.seq, offset: res.validEnd, unsynced: undefined, held: { parts: [], bytes: 0 } };
          this.metadata = replay.metadata ?? new Uint8Array(0);
          this.state = replay.hardState;
          this.enti = replay.lastIndex;
          this.crc = crc;
          this.mode = { kind: 'appending', tail, pipeline: new SegmentPipeline(this.disk, this.dir, this.segmentSize) };
        }
      } finally {
        if (!keep) await file.close().catch(() => undefined);
      }
    }
    return { metadata: this.metadata, hardState: replay.hardState, entries: replay.entries };
  }

  /**
   * Appends `entries` and then `hardState` (skipped when undefined or empty). With
   * mustSync, resolves only once they are durable: written and synced in one durable
   * write (with whatever was written unsynced before them), or written and then
   * fdatasynced (a save that fills the segment also pays for the cut: a header sync on
   * the new segment and a directory fsync). A HardState saved alone without mustSync is
   * held in memory and written ahead of the next write (or at close): like etcd's, a
   * process crash may lose it, which costs a restart nothing but a lower commit index.
   */
  async save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void> {
    const tail = this.appendable();
    const hs = hardState !== undefined && !isEmptyHardState(hardState) ? hardState : undefined;
    if (hs === undefined && entries.length === 0) return;
    const enc = this.encoder;
    enc.reset();
    enc.crc = this.crc;
    enc.appendEntries(entries);
    if (hs !== undefined) enc.append(RecordType.State, encodeHardState(hs));
    if (!mustSync && entries.length === 0 && this.hold(tail, enc.bytes())) {
      this.crc = enc.crc;
      this.state = hs!;
      return;
    }
    const bytes = withHeld(tail, enc.bytes());
    await this.guard(async () => {
      const durable = mustSync && !this.opts.unsafeNoFsync && tail.unsynced !== undefined && tail.offset + bytes.length < this.segmentSize;
      if (durable) await this.writeDurable(tail, bytes);
      else await this.write(tail, bytes);
      this.crc = enc.crc;
      if (entries.length > 0) this.enti = entries[entries.length - 1]!.index;
      if (hs !== undefined) this.state = hs;
      if (tail.offset >= this.segmentSize) await this.cut(tail);
      else {
        if (tail.offset >= this.segmentSize / 2) this.prepareNext();
        if (mustSync && !durable) await this.syncTail(tail);
      }
    });
  }

  /** Records that a snapshot at `snap` was saved (after its snap file is durable); synced. */
  async saveSnapshot(snap: WalSnapshot): Promise<void> {
    const tail = this.appendable();
    const enc = this.encoder;
    enc.reset();
    enc.crc = this.crc;
    enc.append(RecordType.Snapshot, encodeWalSnapshot(snap));
    const bytes = withHeld(tail, enc.bytes());
    await this.guard(async () => {
      await this.write(tail, bytes);
      this.crc = enc.crc;
      if (this.enti < snap.index) this.enti = snap.index;
      await this.syncTail(tail);
    });
  }

  /**
   * Lets go of the segments wholly before the one holding `index`, so purgeFiles may
   * remove them (etcd's ReleaseLockTo: of the segments starting at or below
   * `index`, the newest is kept, since it may hold entries up to `index`).
   */
  async releaseLockTo(index: number): Promise<void> {
    if (this.segments.length === 0) return;
    const firstAtOrAbove = this.segments.findIndex((s) => s.index >= index);
    // segments [0, smaller) go; when none starts at or above index, all but the tail
    const smaller = firstAtOrAbove === -1 ? this.segments.length - 1 : firstAtOrAbove - 1;
    if (smaller <= 0) return;
    for (const s of this.segments.slice(0, smaller)) releaseSegment(this.disk, s.path);
    this.segments = this.segments.slice(smaller);
  }

  /** Syncs (unless a write failed), closes the files and releases the lock. */
  async close(): Promise<void> {
    const mode = this.mode;
    if (mode.kind === 'closed') return;
    this.mode = { kind: 'closed' };
    let error: unknown;
    try {
      if (mode.kind === 'appending' || mode.kind === 'failed') {
        await mode.pipeline.close();
        if (mode.kind === 'appending') await this.writeHeld(mode.tail).then(() => this.sync(mode.tail.file)).catch((err) => (error = err));
        await mode.tail.file.close().catch(() => undefined);
      }
    } finally {
      for (const s of this.segments) releaseSegment(this.disk, s.path);
      this.segments = [];
      await this.lock.release();
    }
    if (error !== undefined) throw error;
  }

  // ---- internals ----

  private appendable(): Tail {
    const mode = this.mode;
    switch (mode.kind) {
      case 'appending':
        return mode.tail;
      case 'failed':
        throw new WalFailedError(mode.cause);
      case 'reading':
        throw new WalError('wal: readAll must be called before appending');
      case 'closed':
        throw new WalError('wal: closed');
    }
  }

  /** Runs a write step; any failure moves the WAL to the failed state for good. */
  private async guard(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      const mode = this.mode;
      if (mode.kind === 'appending') {
        this.mode = { kind: 'failed', cause: err, tail: mode.tail, pipeline: mode.pipeline };
        this.logger.warn({ dir: this.dir, error: describe(err) }, 'WAL write failed; refusing further writes');
      }
      throw err;
    }
  }

  /** Holds `bytes` (the encoder's, copied) for the next write; false when they would fill the buffer or the segment. */
  private hold(tail: Tail, bytes: Uint8Array): boolean {
    const held = tail.held;
    if (held.bytes + bytes.length > MAX_HELD_BYTES || tail.offset + held.bytes + bytes.length >= this.segmentSize) return false;
    held.parts.push(bytes.slice());
    held.bytes += bytes.length;
    return true;
  }

  /** Writes the held records, unsynced (close syncs after). */
  private async writeHeld(tail: Tail): Promise<void> {
    if (tail.held.bytes > 0) await this.write(tail, withHeld(tail, new Uint8Array(0)));
  }

  private prepareNext(): void {
    if (this.mode.kind === 'appending') this.mode.pipeline.prepare();
  }

  private async write(tail: Tail, bytes: Uint8Array): Promise<void> {
    await writeFully(tail.file, bytes, tail.offset);
    tail.offset += bytes.length;
    if (tail.unsynced !== undefined) {
      // a copy: the encoder's buffer is reused by the next save
      tail.unsynced.parts.push(bytes.slice());
      tail.unsynced.bytes += bytes.length;
      if (tail.unsynced.bytes > MAX_UNSYNCED_BYTES) tail.unsynced = undefined;
    }
    this.opts.onWrite?.(bytes.length);
  }

  /**
   * Appends `bytes` and makes them durable in one write through the file's O_DSYNC
   * descriptor, rewriting the tail's unsynced bytes before them: such a write makes only
   * its own bytes durable, where fdatasync would have made all of them so.
   */
  private async writeDurable(tail: Tail, bytes: Uint8Array): Promise<void> {
    const { parts, bytes: before } = tail.unsynced!;
    const all = parts.length === 0 ? bytes : Buffer.concat([...parts, bytes]);
    await this.timed(() => writeFully(tail.file, all, tail.offset - before, true));
    tail.offset += bytes.length;
    tail.unsynced = { parts: [], bytes: 0 };
    this.opts.onWrite?.(bytes.length);
  }

  /** fdatasync of the tail: every byte written to it so far is durable. */
  private async syncTail(tail: Tail): Promise<void> {
    await this.sync(tail.file);
    tail.unsynced = { parts: [], bytes: 0 };
  }

  private async sync(file: DiskFile): Promise<void> {
    // as etcd's: neither synced nor counted in etcd_disk_wal_fsync_duration_seconds
    if (this.opts.unsafeNoFsync) return;
    await this.timed(() => file.fdatasync());
  }

  /** Runs a sync (or a durable write), counts its duration and warns when it was slow. */
  private async timed(sync: () => Promise<void>): Promise<void> {
    const took = await timedSync(sync, this.opts);
    if (took > WARN_SYNC_SECONDS) {
      this.logger.warn(
        { took: formatDuration(took), 'expected-duration': formatDuration(WARN_SYNC_SECONDS) },
        'slow fdatasync',
      );
    }
  }

  /**
   * Closes the full tail and continues in a fresh segment named after the next
   * entry index. Order matters for crash safety: the old tail is trimmed and synced
   * first; the new segment gets its header and is synced before it is renamed to a
   * `.wal` name; the directory is synced so the rename survives a power cut.
   */
  private async cut(tail: Tail): Promise<void> {
    const mode = this.mode;
    if (mode.kind !== 'appending') throw new WalError('wal: cut outside append mode');
    await tail.file.truncate(tail.offset);
    await this.sync(tail.file);

    const prepared = await mode.pipeline.take();
    const seq = tail.seq + 1;
    const path = join(this.dir, walName(seq, this.enti + 1));
    const enc = new FrameEncoder(this.crc);
    enc.appendCrc();
    enc.append(RecordType.Metadata, this.metadata);
    if (!isEmptyHardState(this.state)) enc.append(RecordType.State, encodeHardState(this.state));
    try {
      await writeFully(prepared, enc.bytes(), 0);
      this.opts.onWrite?.(enc.length);
      await this.sync(prepared);
      await this.disk.rename(prepared.path, path);
      await this.disk.fsyncDir(this.dir);
    } finally {
      await prepared.close().catch(() => undefined);
    }
    const file = await this.disk.open(path, 'write');
    await tail.file.close().catch(() => undefined);
    tail.file = file;
    tail.seq = seq;
    tail.offset = enc.length;
    tail.unsynced = { parts: [], bytes: 0 };
    this.crc = enc.crc;
    this.segments.push({ path, index: this.enti + 1 });
    holdSegment(this.disk, path);
    this.logger.info({ path }, 'created a new WAL segment');
  }

  /**
   * After replay, the bytes past the last good record must be zeros: a later append
   * that is itself torn would otherwise leave old garbage behind it and make a
   * torn write look like corruption. Non-zero bytes there (a torn write) are wiped
   * and the wipe synced.
   */
  private async scrubTail(
    file: DiskFile,
    path: string,
    size: number,
    validEnd: number,
    tornReason: string | undefined,
  ): Promise<void> {
    const dirty = await nonZeroBytesFrom(file, validEnd, size);
    if (dirty === 0 && tornReason === undefined) return;
    this.logger.warn(
      { path, offset: validEnd, 'discarded-non-zero-bytes': dirty, reason: tornReason ?? 'unwritten data after the last record' },
      'repairing torn WAL tail',
    );
    await file.truncate(validEnd);
    await this.disk.preallocate(file, size);
    await this.sync(file);
    this.logger.info({ path, offset: validEnd }, 'repaired');
  }
}

/** The held records followed by `bytes`, taking them out of the tail's hold. */
function withHeld(tail: Tail, bytes: Uint8Array): Uint8Array {
  const held = tail.held;
  if (held.bytes === 0) return bytes;
  const all = Buffer.concat([...held.parts, bytes]);
  tail.held = { parts: [], bytes: 0 };
  return all;
}

async function timedSync(sync: () => Promise<void>, opts: WalOptions): Promise<number> {
  const t0 = performance.now();
  await sync();
  const took = (performance.now() - t0) / 1000;
  opts.onFsync?.(took);
  return took;
}

/**
 * The snapshot markers recorded in the WAL in `walDir` whose index is committed by
 * the last HardState (etcd 3.4.23's ValidSnapshotEntries): the snapshots a restart
 * may start from. Reads without taking the lock; a torn tail is tolerated.
 */
export async function validSnapshotEntries(walDir: string, opts: { disk?: Disk } = {}): Promise<WalSnapshot[]> {
  const disk = opts.disk ?? nodeDisk;
  const names = walNames(await disk.readdir(walDir));
  const snaps: WalSnapshot[] = [];
  let state: HardState = emptyHardState;
  let crc = 0;
  for (let k = 0; k < names.length; k++) {
    const path = join(walDir, names[k]!);
    const file = await disk.open(path, 'read');
    try {
      const res = await readSegment(file, await file.size(), k === names.length - 1, crc, (type, buf, start, end, offset) => {
        try {
          if (type === RecordType.Snapshot) snaps.push(decodeWalSnapshot(buf.subarray(start, end)));
          else if (type === RecordType.State) state = decodeHardState(buf.subarray(start, end));
        } catch (err) {
          throw new WalCorruptError(path, offset, `undecodable record (${describe(err)})`);
        }
      });
      if (res.end.kind === 'corrupt') throw new WalCorruptError(path, res.validEnd, res.end.reason);
      crc = res.crc;
    } finally {
      await file.close().catch(() => undefined);
    }
  }
  return snaps.filter((s) => s.index <= state.commit);
}
