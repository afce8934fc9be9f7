// The snapshot stream's messages, laid out by hand in gRPC's framing with the backup read
// straight into them (src/server/api/snapshot-frames.ts): byte for byte the messages the
// member's protobuf serializer makes of the same fields, framed as the gRPC server frames
// one message, and what etcdctl gets from them is the file.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSnapshotFrames } from '../../src/server/api/snapshot-frames.js';
import { frameMessage } from '../../src/server/grpc/framing.js';
import { serviceDefinition } from '../../src/server/pb.js';

const snapshot = serviceDefinition('etcdserverpb.Maintenance')['Snapshot']!;
const CHUNK = 32 * 1024;

/** The message as etcd's gogoproto code marshals it: protobufjs writes a field that is set, even to 0. */
function gogoproto(r: { remaining_bytes: number; blob: Buffer }): Buffer {
  return snapshot.responseSerialize(r.remaining_bytes === 0 ? { blob: r.blob } : r);
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function backupOf(bytes: Buffer): Promise<{ file: Awaited<ReturnType<typeof open>>; size: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snapshot-frames-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'db'), bytes);
  return { file: await open(path.join(dir, 'db'), 'r'), size: bytes.length };
}

describe('snapshot frames', () => {
  it('are the serializer’s SnapshotResponse messages, framed; their blobs are the file, 32 KiB at a time, with the bytes still to come', async () => {
    // reads of 100 KiB: whole chunks, then a short one, and reads that end mid-chunk
    const data = randomBytes(5 * CHUNK + 1234);
    const { file, size } = await backupOf(data);
    try {
      const blobs: Buffer[] = [];
      for (let from = 0; from < size; from += 100 * 1024) {
        const length = Math.min(100 * 1024, size - from);
        const got = await readSnapshotFrames(file, size, from, length);
        expect(got.bytes).toBe(length);
        const expected = got.responses.map(gogoproto);
        expect(got.messageSizes).toEqual(expected.map((m) => m.length));
        expect(got.frames.equals(Buffer.concat(expected.map(frameMessage)))).toBe(true);
        let at = from;
        for (const r of got.responses) {
          expect(r.blob.length).toBe(Math.min(CHUNK, from + length - at));
          at += r.blob.length;
          expect(r.remaining_bytes).toBe(size - at);
          blobs.push(r.blob);
        }
      }
      expect(Buffer.concat(blobs).equals(data)).toBe(true);
      // the last data message has remaining_bytes 0, which etcd's gogoproto leaves out
      const last = await readSnapshotFrames(file, size, size - 10, 10);
      expect(last.responses[0]!.remaining_bytes).toBe(0);
      expect(last.frames.subarray(5).equals(Buffer.concat([Buffer.from([(3 << 3) | 2, 10]), data.subarray(size - 10)]))).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('refuse a file shorter than the size the stream announced', async () => {
    const { file } = await backupOf(randomBytes(CHUNK));
    try {
      await expect(readSnapshotFrames(file, 2 * CHUNK, 0, 2 * CHUNK)).rejects.toThrow(/the backup ended at byte 32768/);
    } finally {
      await file.close();
    }
  });
});
