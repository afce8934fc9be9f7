// The key index written out at a clean close and read back at the next open, so a
// restart of a big store does not read every record of LevelDB again (restore.ts: at
// 1.6 M keys of 1 KiB, most of a 33 s restart; bench/scale). etcd needs no such thing:
// its treeIndex is rebuilt from bbolt's mmapped key bucket.
//
// Crash safety comes first: an image is only ever a shortcut to what restoreFromStore
// would build, taken only when it provably describes the store as it is.
//   - The close writes the image to a temporary file, syncs it, renames it into place
//     and syncs the directory; only then does it write a token (random bytes, also in
//     the image) into LevelDB, synced. LevelDB's sync makes every earlier write durable
//     too, so a durable token means the data and the image it names are both on disk.
//   - The open removes the token (synced) before the store can change, whether or not it
//     takes the image, and removes the image: an image outlives no write to its store.
//   - The image is read only if its token is LevelDB's and its consistent index and
//     compaction marks are the store's (a build that does not know images, having written
//     since, moves the consistent index), and every frame's CRC holds and the end frame
//     is there (a torn or truncated file). Anything else is a rebuild from the records.
//   - addToStore (build.ts), the only other writer of a closed store, removes the token.

import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { type KeyBucketSize, MetaKey, bucketKey, type Db } from './backend.js';
import type { KeyIndex, KeyIndexState } from './key-index.js';
import { RestoredState } from './restore.js';

/** In the store's directory, beside LevelDB's files (LevelDB leaves names it does not know alone). */
export const IMAGE_FILE = 'ETCDTS_KEY_INDEX';
const TEMP_FILE = `${IMAGE_FILE}.tmp`;

/**
 * Where LevelDB holds the token: a prefix byte of no etcd bucket, so no export or bucket
 * view ever carries it (it exists only while the store is closed anyway).
 */
export const TOKEN_KEY = Buffer.from('\x00etcd-ts key index image', 'latin1');
const TOKEN_BYTES = 16;

const MAGIC = Buffer.from('etcd-ts key index image v1\n', 'latin1');
const FRAME_HEADER = 8;
/** A frame is written once its payload passes this; a reader holds one frame at a time. */
const FRAME_BYTES = 1 << 20;
const FRAME_MAX = 64 << 20;

const enum Frame {
  header = 1,
  keys = 2,
  others = 3,
  end = 4,
}

const FLAG_LEASE = 1;
const FLAG_GENERATIONS = 2;

/** What the image must agree with in the store: its meta records, as stored. */
export interface StoreMarks {
  consistentIndex: Buffer | undefined;
  scheduledCompactRev: Buffer | undefined;
  finishedCompactRev: Buffer | undefined;
}

export function readStoreMarks(db: Db): StoreMarks {
  const meta = (name: string) => db.getSync(bucketKey('meta', Buffer.from(name)));
  return {
    consistentIndex: meta(MetaKey.consistentIndex),
    scheduledCompactRev: meta(MetaKey.scheduledCompactRev),
    finishedCompactRev: meta(MetaKey.finishedCompactRev),
  };
}

/** The in-memory state of a store as its close leaves it (every write landed). */
export interface ImageSource {
  index: { entries(): Iterable<KeyIndex> };
  currentRev: number;
  storedBytes: number;
  otherSizes: ReadonlyMap<string, number>;
  keyBucket: Readonly<KeyBucketSize>;
}

/** Appends records to frames and frames to the file. */
class FrameWriter {
  private buf = Buffer.allocUnsafe(FRAME_BYTES + (64 << 10));
  private pos = FRAME_HEADER;

  constructor(private readonly fh: FileHandle) {}

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  begin(type: Frame): void {
    this.ensure(1);
    this.buf[this.pos++] = type;
  }

  get payloadBytes(): number {
    return this.pos - FRAME_HEADER;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.ensure(8);
    const buf = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      buf[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** A latin1 string (the index's keys: one char per byte), length first. */
  latin1(s: string): void {
    this.varint(s.length);
    this.ensure(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  bytes(b: Buffer | undefined): void {
    // absent and empty are told apart: 0 = absent, n + 1 = n bytes
    if (b === undefined) return this.varint(0);
    this.varint(b.length + 1);
    this.ensure(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  int64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64LE(v, this.pos);
    this.pos += 8;
  }

  async end(): Promise<void> {
    const payload = this.buf.subarray(FRAME_HEADER, this.pos);
    this.buf.writeUInt32LE(payload.length, 0);
    this.buf.writeUInt32LE(crc32(payload), 4);
    await this.fh.write(this.buf, 0, this.pos);
    this.pos = FRAME_HEADER;
  }
}

/**
 * Writes the image of `source` into the closed-to-writes store `db` at `dir`: the file,
 * then the token (see the top of this file). The caller writes nothing to `db` after it.
 */
export async function saveIndexImage(db: Db, dir: string, source: ImageSource): Promise<void> {
  const token = randomBytes(TOKEN_BYTES);
  const marks = readStoreMarks(db);
  const temp = path.join(dir, TEMP_FILE);
  const fh = await open(temp, 'w');
  try {
    const w = new FrameWriter(fh);
    w.begin(Frame.header);
    w.bytes(MAGIC);
    w.bytes(token);
    w.bytes(marks.consistentIndex);
    w.bytes(marks.scheduledCompactRev);
    w.bytes(marks.finishedCompactRev);
    w.varint(source.currentRev);
    w.varint(source.storedBytes);
    const k = source.keyBucket;
    for (const n of [k.records, k.bytes, k.maxEntry, k.maxKey]) w.varint(n);
    await w.end();

    // the store takes no writes any more: the index cannot change while frames are written
    const s = emptyState();
    let keys = 0;
    w.begin(Frame.keys);
    for (const ki of source.index.entries()) {
      keys++;
      ki.imageState(s);
      writeKey(w, ki.key, s);
      if (w.payloadBytes >= FRAME_BYTES) {
        await w.end();
        w.begin(Frame.keys);
      }
    }
    await w.end();

    w.begin(Frame.others);
    for (const [k, size] of source.otherSizes) {
      w.latin1(k);
      w.varint(size);
      if (w.payloadBytes >= FRAME_BYTES) {
        await w.end();
        w.begin(Frame.others);
      }
    }
    await w.end();

    w.begin(Frame.end);
    w.varint(keys);
    w.varint(source.otherSizes.size);
    await w.end();
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(temp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(temp, path.join(dir, IMAGE_FILE));
  await syncDir(dir);
  await db.put(TOKEN_KEY, token, { sync: true });
}

function emptyState(): KeyIndexState {
  return { closed: undefined, ver: 0, created: 0, revs: undefined, lastMain: 0, lastSub: 0, lease: 0n };
}

function writeRevs(w: FrameWriter, revs: readonly number[]): void {
  w.varint(revs.length >> 1);
  for (const r of revs) w.varint(r);
}

/**
 * One key: its bytes, flags, the lease if any, then either the common single revision
 * (last main, sub, created, version) or every generation.
 */
function writeKey(w: FrameWriter, key: string, s: KeyIndexState): void {
  w.latin1(key);
  const generations = s.closed !== undefined || s.revs !== undefined;
  w.byte((s.lease !== 0n ? FLAG_LEASE : 0) | (generations ? FLAG_GENERATIONS : 0));
  if (s.lease !== 0n) w.int64(s.lease);
  if (generations) {
    w.varint(s.closed?.length ?? 0);
    for (const g of s.closed ?? []) {
      w.varint(g.ver);
      w.varint(g.created);
      writeRevs(w, g.revs);
    }
    writeRevs(w, s.revs ?? []);
  }
  w.varint(s.lastMain);
  w.varint(s.lastSub);
  w.varint(s.created);
  w.varint(s.ver);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

class ImageError extends Error {}

/** Reads the fields of one frame's payload. */
class FrameReader {
  pos = 1;
  constructor(readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new ImageError('a frame ends inside a record');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    const buf = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = buf[this.pos++];
      if (b === undefined) throw new ImageError('a frame ends inside a number');
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new ImageError('a number above 2^53');
  }

  private span(n: number): number {
    const start = this.pos;
    if (start + n > this.buf.length) throw new ImageError('a frame ends inside a field');
    this.pos += n;
    return start;
  }

  latin1(): string {
    const n = this.varint();
    const start = this.span(n);
    return this.buf.toString('latin1', start, start + n);
  }

  bytes(): Buffer | undefined {
    const n = this.varint();
    if (n === 0) return undefined;
    const start = this.span(n - 1);
    return this.buf.subarray(start, start + n - 1);
  }

  int64(): bigint {
    return this.buf.readBigInt64LE(this.span(8));
  }

  revs(): number[] {
    const n = this.varint() * 2;
    if (n > this.buf.length) throw new ImageError('a revision count past the frame');
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.varint();
    return out;
  }
}

/** Yields each frame's payload after checking its length and CRC; a short read is a torn file. */
async function* frames(fh: FileHandle): AsyncGenerator<FrameReader> {
  const header = Buffer.alloc(FRAME_HEADER);
  let offset = 0;
  for (;;) {
    const { bytesRead } = await fh.read(header, 0, FRAME_HEADER, offset);
    if (bytesRead === 0) return;
    if (bytesRead < FRAME_HEADER) throw new ImageError('the file ends inside a frame header');
    const length = header.readUInt32LE(0);
    if (length === 0 || length > FRAME_MAX) throw new ImageError(`a frame of ${length} bytes`);
    const payload = Buffer.allocUnsafe(length);
    const got = (await fh.read(payload, 0, length, offset + FRAME_HEADER)).bytesRead;
    if (got < length) throw new ImageError('the file ends inside a frame');
    if (crc32(payload) !== header.readUInt32LE(4)) throw new ImageError('a frame fails its CRC');
    offset += FRAME_HEADER + length;
    yield new FrameReader(payload);
  }
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/** Reads the image at `file` if it is whole and names the store as `token` and `marks` describe it. */
async function readImage(file: string, token: Buffer, marks: StoreMarks): Promise<RestoredState> {
  const fh = await open(file, 'r');
  try {
    const state = new RestoredState();
    const s = emptyState();
    let keys = 0;
    let last: string | undefined;
    let ended = false;
    let headed = false;
    for await (const r of frames(fh)) {
      if (ended) throw new ImageError('frames after the end frame');
      const type = r.buf[0];
      if (!headed) {
        if (type !== Frame.header) throw new ImageError('no header frame');
        headed = true;
        if (!sameBytes(r.bytes(), MAGIC)) throw new ImageError('not an image of this version');
        if (!sameBytes(r.bytes(), token)) throw new ImageError('the image is not the one the store names');
        if (!sameBytes(r.bytes(), marks.consistentIndex)) throw new ImageError('the consistent index moved since the image');
        if (!sameBytes(r.bytes(), marks.scheduledCompactRev) || !sameBytes(r.bytes(), marks.finishedCompactRev)) {
          throw new ImageError('a compaction ran since the image');
        }
        state.currentRev = r.varint();
        state.storedBytes = r.varint();
        const k = state.keyBucket;
        k.records = r.varint();
        k.bytes = r.varint();
        k.maxEntry = r.varint();
        k.maxKey = r.varint();
      } else if (type === Frame.keys) {
        while (!r.done) {
          const key = r.latin1();
          // in key order, each once: the index appends it without a search
          if (last !== undefined && key <= last) throw new ImageError('keys out of order');
          last = key;
          readKey(r, s);
          state.index.insert(key).loadImageState(s);
          keys++;
        }
      } else if (type === Frame.others) {
        while (!r.done) state.otherSizes.set(r.latin1(), r.varint());
      } else if (type === Frame.end) {
        if (r.varint() !== keys || r.varint() !== state.otherSizes.size) throw new ImageError('the counts in the end frame differ');
        ended = true;
      } else {
        throw new ImageError(`a frame of type ${type}`);
      }
    }
    if (!ended) throw new ImageError('no end frame (a torn write)');
    return state;
  } finally {
    await fh.close();
  }
}

function readKey(r: FrameReader, s: KeyIndexState): void {
  const flags = r.byte();
  s.lease = flags & FLAG_LEASE ? r.int64() : 0n;
  s.closed = undefined;
  s.revs = undefined;
  if (flags & FLAG_GENERATIONS) {
    const closed = r.varint();
    if (closed > 0) {
      s.closed = [];
      for (let g = 0; g < closed; g++) {
        const ver = r.varint();
        const created = r.varint();
        s.closed.push({ ver, created, revs: r.revs() });
      }
    }
    const revs = r.revs();
    if (revs.length > 0) s.revs = revs;
  }
  s.lastMain = r.varint();
  s.lastSub = r.varint();
  s.created = r.varint();
  s.ver = r.varint();
}

/** Why an open did or did not take an image (logged). */
export type ImageOutcome = { state: RestoredState } | { state: undefined; reason: string };

/**
 * At an open, before anything writes to `db`: the store's state from the image its last
 * clean close left, if that image is whole and still the store's; the token and the
 * image are removed either way, so the next open after any write rebuilds.
 */
export async function takeIndexImage(db: Db, dir: string): Promise<ImageOutcome> {
  const token = db.getSync(TOKEN_KEY);
  if (token !== undefined) await db.del(TOKEN_KEY, { sync: true });
  const file = path.join(dir, IMAGE_FILE);
  try {
    if (token === undefined) return { state: undefined, reason: 'no image token (the store was not closed cleanly, or was written since)' };
    return { state: await readImage(file, token, readStoreMarks(db)) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: undefined, reason: 'no image file' };
    if (err instanceof ImageError) return { state: undefined, reason: err.message };
    throw err;
  } finally {
    await rm(file, { force: true });
    await rm(path.join(dir, TEMP_FILE), { force: true });
  }
}

/** For a writer of a closed store other than MvccStore (addToStore): the image no longer describes it. */
export async function dropIndexImage(db: Db): Promise<void> {
  await db.del(TOKEN_KEY, { sync: true });
}
