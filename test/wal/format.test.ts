// The small format pieces: CRC-32C, names, length words, walpb records.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeEntry, Writer } from '../../src/raftpb/index.js';
import { crc32c, crc32cUpdate } from '../../src/pkg/crc32c.js';
import { FRAME_HEADER_BYTES, FrameEncoder, lengthWordPadBytes, lengthWordRecBytes, writeLengthWord } from '../../src/wal/frame.js';
import { MemDisk, WAL, parseSnapName, parseWalName, snapName, walName } from '../../src/wal/index.js';
import { RecordType, decodeRecord, decodeWalSnapshot, encodeWalSnapshot } from '../../src/wal/walpb.js';
import { META, entry, hs } from './helpers.js';

describe('crc32c', () => {
  it('matches the standard check value and chains like Go crc32.Update', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    const data = new Uint8Array(1000).map((_, i) => (i * 37) & 0xff);
    for (const cut of [0, 1, 7, 15, 16, 17, 500, 999, 1000]) {
      expect(crc32cUpdate(crc32cUpdate(0, data, 0, cut), data, cut)).toBe(crc32c(data));
    }
  });
});

describe('names', () => {
  it('formats and parses %016x-%016x.wal and .snap', () => {
    expect(walName(1, 0x21)).toBe('0000000000000001-0000000000000021.wal');
    expect(parseWalName('0000000000000001-0000000000000021.wal')).toEqual({ seq: 1, index: 0x21 });
    expect(snapName(2, 0x16)).toBe('0000000000000002-0000000000000016.snap');
    expect(parseSnapName('0000000000000002-0000000000000016.snap')).toEqual({ term: 2, index: 0x16 });
    for (const bad of ['0.tmp', '0000000000000001-0000000000000021.wal.broken', '1-2.wal', '.etcd-ts.lock', 'ffffffffffffffff-0000000000000000.wal']) {
      expect(parseWalName(bad), bad).toBeUndefined();
    }
  });
});

describe('length word', () => {
  it('holds the record length and, when padded, 0x80|pad in the top byte', () => {
    for (let len = 1; len <= 24; len++) {
      const b = new Uint8Array(8);
      writeLengthWord(b, 0, len);
      const pad = (8 - (len % 8)) % 8;
      expect(lengthWordRecBytes(b, 0)).toBe(len);
      expect(lengthWordPadBytes(b, 0)).toBe(pad);
      expect(b[7]).toBe(pad === 0 ? 0 : 0x80 | pad);
    }
  });

  it('frames are 8-byte aligned and carry the rolling CRC', () => {
    const enc = new FrameEncoder(0);
    enc.appendCrc();
    enc.append(RecordType.Metadata, META);
    enc.appendEntries([entry(1), entry(2, 1, 3)]);
    expect(enc.length % 8).toBe(0);
    const bytes = enc.bytes();
    let pos = 0;
    let crc = 0;
    while (pos < bytes.length) {
      const len = lengthWordRecBytes(bytes, pos);
      const rec = decodeRecord(bytes, pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + len);
      if (rec.data) crc = crc32cUpdate(crc, rec.data);
      expect(rec.crc).toBe(crc);
      pos += FRAME_HEADER_BYTES + len + lengthWordPadBytes(bytes, pos);
    }
    expect(pos).toBe(bytes.length);
  });
});

describe('walpb', () => {
  it('encodes walpb.Snapshot with both fields always present, as gogoproto does', () => {
    expect([...encodeWalSnapshot({ index: 0, term: 0 })]).toEqual([0x08, 0x00, 0x10, 0x00]);
    expect(decodeWalSnapshot(encodeWalSnapshot({ index: 2 ** 40, term: 7 }))).toEqual({ index: 2 ** 40, term: 7 });
  });

  it('rejects unknown record types and reads records with fields in another order or unknown fields', () => {
    const w = new Writer();
    w.tag(3, 2).bytes(new Uint8Array([1, 2]));
    w.tag(9, 0).uint32(5); // unknown field
    w.tag(2, 0).uint32(77);
    w.tag(1, 0).uint32(RecordType.Entry);
    const rec = decodeRecord(w.finish(), 0, w.finish().length);
    expect(rec).toEqual({ type: RecordType.Entry, crc: 77, data: new Uint8Array([1, 2]) });
    const bad = new Writer().tag(1, 0).uint32(9).finish();
    expect(() => decodeRecord(bad, 0, bad.length)).toThrow(/unknown WAL record type 9/);
  });

  it('replays a record written in a non-canonical layout (the general decoder path)', async () => {
    const disk = new MemDisk();
    const dir = '/w';
    const w = await WAL.create(dir, META, { disk, segmentSizeBytes: 4096 });
    await w.save(hs(1, 1), [entry(1)], true);
    await w.close();
    // append by hand a record with its fields reversed and an unknown field, chained on the CRC
    const path = join(dir, walName(0, 0));
    const bytes = disk.fileBytes(path);
    const r = await WAL.open(dir, { index: 0, term: 0 }, { disk, segmentSizeBytes: 4096 });
    await r.readAll();
    const { offset } = (r as unknown as { mode: { tail: { offset: number } } }).mode.tail;
    const crc = (r as unknown as { crc: number }).crc;
    await r.close();
    const data = encodeEntry(entry(2));
    const rw = new Writer();
    rw.tag(3, 2).bytes(data);
    rw.tag(2, 0).uint32(crc32cUpdate(crc, data));
    rw.tag(15, 2).bytes(new Uint8Array([9, 9]));
    rw.tag(1, 0).uint32(RecordType.Entry);
    const rec = rw.finish();
    const frame = new Uint8Array(FRAME_HEADER_BYTES + rec.length + ((8 - (rec.length % 8)) % 8));
    writeLengthWord(frame, 0, rec.length);
    frame.set(rec, FRAME_HEADER_BYTES);
    bytes.set(frame, offset);
    disk.setFileBytes(path, bytes);
    const again = await WAL.open(dir, { index: 0, term: 0 }, { disk, segmentSizeBytes: 4096 });
    expect((await again.readAll()).entries).toEqual([entry(1), entry(2)]);
    await again.close();
  });
});
