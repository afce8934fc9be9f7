// The whole store as a byte stream, and back: the store shipped with a raft snapshot to
// a lagging follower. (`etcdctl snapshot save` gets etcd's bbolt file instead: see
// src/server/backup/.)
//
// Format: MAGIC, then per LevelDB entry uvarint(key length) key uvarint(value length)
// value, in key order; then a zero key length and the CRC-32C (big-endian) of every
// byte before it. Entry keys are never empty (they carry a bucket prefix).

import { mkdir, readdir } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import type { View } from './backend.js';
import { Crc32c } from '../pkg/crc32c.js';

const MAGIC = Buffer.from('etcd-ts mvcc snapshot v1\n');
const CHUNK = 64 * 1024;

export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(`mvcc snapshot: ${message}`);
    this.name = 'SnapshotFormatError';
  }
}

export function exportSnapshot(view: View): { size: number; stream: AsyncIterable<Buffer> } {
  const size = MAGIC.length + view.bytes + 1 + 4;
  return { size, stream: serialize(view, size) };
}

async function* serialize(view: View, size: number): AsyncGenerator<Buffer> {
  const crc = new Crc32c();
  let parts: Buffer[] = [MAGIC];
  let pending = MAGIC.length;
  let total = 0;
  const flush = (): Buffer => {
    const out = Buffer.concat(parts, pending);
    crc.update(out);
    total += out.length;
    parts = [];
    pending = 0;
    return out;
  };
  for await (const [k, v] of view.entries()) {
    const hdr1 = uvarint(k.length);
    const hdr2 = uvarint(v.length);
    parts.push(hdr1, k, hdr2, v);
    pending += hdr1.length + k.length + hdr2.length + v.length;
    if (pending >= CHUNK) yield flush();
  }
  parts.push(Buffer.of(0));
  pending += 1;
  const last = flush();
  const trailer = Buffer.allocUnsafe(4);
  trailer.writeUInt32BE(crc.digest());
  total += 4;
  if (total !== size) throw new Error(`mvcc snapshot: wrote ${total} bytes, announced ${size}`);
  yield Buffer.concat([last, trailer]);
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Incremental parser over arbitrary chunk boundaries. */
class ChunkReader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  /** Ensures n unread bytes; false at end of input. */
  async fill(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n) {
      const r = await this.it.next();
      if (r.done) return false;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), r.value]);
      this.pos = 0;
    }
    return true;
  }

  async take(n: number): Promise<Buffer> {
    if (!(await this.fill(n))) throw new SnapshotFormatError('truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  async uvarint(): Promise<number> {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = (await this.take(1))[0]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
    throw new SnapshotFormatError('length varint too long');
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

/** Writes a snapshot stream into an empty or missing directory, checking its CRC; on disk when it resolves. */
export async function importSnapshot(dir: string, stream: AsyncIterable<Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new SnapshotFormatError(`${dir} is not empty`);
  const r = new ChunkReader(stream[Symbol.asyncIterator]());
  const crc = new Crc32c();
  const read = async (n: number): Promise<Buffer> => {
    const b = await r.take(n);
    crc.update(b);
    return Buffer.from(b);
  };
  const readLen = async (): Promise<number> => {
    const n = await r.uvarint();
    crc.update(uvarint(n));
    return n;
  };
  if (!(await read(MAGIC.length)).equals(MAGIC)) throw new SnapshotFormatError('not an etcd-ts mvcc snapshot');
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let ok = false;
  try {
    let batch = db.batch();
    for (;;) {
      const klen = await readLen();
      if (klen === 0) break;
      const key = await read(klen);
      const value = await read(await readLen());
      batch.put(key, value);
      if (batch.length >= 1000) {
        await batch.write();
        batch = db.batch();
      }
    }
    const want = crc.digest();
    const got = (await r.take(4)).readUInt32BE(0);
    if (got !== want) throw new SnapshotFormatError(`checksum mismatch (${got} != ${want})`);
    if (!(await r.atEnd())) throw new SnapshotFormatError('trailing bytes after the checksum');
    // synced: LevelDB syncs the tables it wrote, this syncs its log, so the whole store is on disk
    await batch.write({ sync: true });
    ok = true;
  } finally {
    await db.close();
    // a damaged snapshot leaves nothing that could be opened as a store
    if (!ok) await ClassicLevel.destroy(dir);
  }
}
