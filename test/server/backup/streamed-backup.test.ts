// A leader's snapshot for a follower, sent as the export thread reads it
// (streamed-backup.ts): the bytes are the member's own export, byte for byte, and the
// thread is released however the iteration ends: at its end, part way, or before its
// first step.

import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { etcdStreamLayout, streamEtcdBackend } from '../../../src/server/backup/etcd-db.js';
import { ExportThread } from '../../../src/server/backup/export-thread.js';
import { StreamedBackup } from '../../../src/server/backup/streamed-backup.js';
import { b, Harness } from '../../mvcc/helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await Harness.open();
});
afterEach(async () => {
  await h.close();
});

const cluster = {
  members: [{ id: 0x9n, name: 'a', peerUrls: ['http://127.0.0.1:1'], clientUrls: ['http://127.0.0.1:3'], isLearner: false }],
  removed: [],
  version: '3.4.23',
};

async function fill(records: number, valueBytes: number): Promise<void> {
  for (let i = 0; i < records; i++) h.store.put({ key: b(`k${i}`), value: Buffer.alloc(valueBytes, i), lease: 0n }, i + 1);
  await h.commit();
}

/** A stream over a view taken with a new thread; the stream owns both. */
async function streamed(): Promise<{ stream: StreamedBackup; thread: ExportThread; size: number }> {
  const thread = await ExportThread.start(h.store);
  const view = h.store.bucketView(thread);
  const layout = etcdStreamLayout(view, cluster)!;
  return { stream: new StreamedBackup(thread, layout, { view, cluster }), thread, size: layout.size };
}

/** How many of this process's threads run at `nice` (Linux). */
function threadsAtNice(nice: number): number {
  return readdirSync('/proc/self/task').filter((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // nice is the 19th field, the 17th after the command's closing parenthesis
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) === nice;
  }).length;
}

function expectReleased(thread: ExportThread): void {
  expect(() => h.store.bucketView(thread)).toThrow(/stopped|closed/);
}

it("yields the member's own export byte for byte, and releases its thread at the end", async () => {
  await fill(3000, 300);
  const own: Buffer[] = [];
  const view = h.store.bucketView();
  try {
    await streamEtcdBackend(etcdStreamLayout(view, cluster)!, view, cluster, async (bufs) => void own.push(...bufs.map((x) => Buffer.from(x))));
  } finally {
    await view.close();
  }
  const { stream, thread, size } = await streamed();
  const got: Buffer[] = [];
  let niced = -1;
  for await (const chunk of stream) {
    got.push(chunk);
    if (niced < 0) niced = threadsAtNice(10);
  }
  // the export's worker alone: a follower gets no digest, so no hash thread is started for one
  expect(niced).toBe(1);
  const file = Buffer.concat(got);
  expect(file.length).toBe(size);
  expect(file.equals(Buffer.concat(own))).toBe(true);
  expectReleased(thread);
});

it('ended part way, it stops its thread, and the store serves on', async () => {
  // more than the thread reads ahead of its reader (CHUNKS_AHEAD MiB)
  await fill(16000, 800);
  const { stream, thread, size } = await streamed();
  let taken = 0;
  for await (const chunk of stream) {
    taken += chunk.length;
    if (taken >= 1 << 20) break;
  }
  expect(taken).toBeLessThan(size);
  expectReleased(thread);
  // time for a batch the thread had on its way to arrive: it is dropped, not handed out
  await new Promise((r) => setTimeout(r, 300));
  await expect(stream.next()).rejects.toThrow('the backup stream was closed');
  expect((await h.store.range({ key: b('k15999') })).kvs).toHaveLength(1);
});

it('ended before its first step (the send failed before it read a byte), it releases its thread', async () => {
  await fill(100, 10);
  const { stream, thread } = await streamed();
  await stream.return();
  expectReleased(thread);
});
