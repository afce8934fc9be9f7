// The snapshot stream built in a worker thread (export-thread.ts) on a real store: the
// worker's file is the one the member's own view gives, byte for byte, whatever is
// written around the moment the view freezes; the worker yields the CPU to the member's
// thread; the store does not close under it; the stream's frames carry the file and its
// checksum as the client reassembles them; a file it writes is the member's own.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BoltFile } from '../../../src/bbolt/index.js';
import { MvccStore } from '../../../src/mvcc/index.js';
import type { SnapshotFrames } from '../../../src/server/api/snapshot-frames.js';
import { etcdStreamLayout, streamEtcdBackend, writeEtcdBackend } from '../../../src/server/backup/etcd-db.js';
import { ExportThread } from '../../../src/server/backup/export-thread.js';
import { boltCheck } from '../../bbolt/real-bolt.js';
import { b, Harness, removeDir, scratchDir } from '../../mvcc/helpers.js';

let h: Harness;
let out: string;
beforeEach(async () => {
  h = await Harness.open();
  out = scratchDir();
});
afterEach(async () => {
  await h.close();
  removeDir(out);
});

const cluster = {
  members: [{ id: 0x9n, name: 'a', peerUrls: ['http://127.0.0.1:1'], clientUrls: ['http://127.0.0.1:3'], isLearner: false }],
  removed: [],
  version: '3.4.23',
};

/** A thread's nice value, from its /proc directory (Linux). */
function niceOf(dir: string): number {
  const stat = readFileSync(`${dir}/stat`, 'utf8');
  // the fields after the command's closing parenthesis; nice is the 19th field
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The nice values of this process's threads. */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => niceOf(`/proc/self/task/${tid}`));
}

/** What a client reassembles from the frames: the blobs in order, each message's remaining_bytes checked. */
function receiver(size: number): { out: (f: SnapshotFrames) => Promise<void>; bytes(): Buffer } {
  const blobs: Buffer[] = [];
  let got = 0;
  return {
    out: async (f) => {
      for (const r of f.responses) {
        got += r.blob.length;
        expect(r.remaining_bytes).toBe(size - got);
        blobs.push(Buffer.from(r.blob));
      }
    },
    bytes: () => Buffer.concat(blobs),
  };
}

/** A new export thread on the harness's store streams the whole file. */
async function expectWholeStream(): Promise<void> {
  const thread = await ExportThread.start(h.store);
  try {
    const view = h.store.bucketView(thread);
    try {
      const layout = etcdStreamLayout(view, cluster)!;
      const client = receiver(layout.size);
      await thread.stream(layout, view.point, cluster, client.out);
      expect(client.bytes().length).toBe(layout.size);
    } finally {
      await view.close();
    }
  } finally {
    await thread.close();
  }
}

it("streams the file the member's view gives, byte for byte: writes in flight as the view froze are in it, writes issued just after are not", async () => {
  for (let i = 0; i < 2000; i++) h.store.put({ key: b(`k${i}`), value: Buffer.alloc(300, i), lease: 0n }, i + 1);
  await h.commit();
  const thread = await ExportThread.start(h.store);
  try {
    // committed without waiting: its batch is in flight when the view freezes
    h.store.put({ key: b('inflight'), value: b('x'), lease: 0n }, 2001);
    const inflight = h.store.commit();
    // the batch is issued a few microtasks into commit(); LevelDB's thread takes longer
    const batchesInFlight = () => (h.store as unknown as { backend: { inflight: Set<unknown> } }).backend.inflight.size;
    for (let i = 0; i < 10 && batchesInFlight() === 0; i++) await Promise.resolve();
    expect(batchesInFlight()).toBe(1);
    const view = h.store.bucketView(thread);
    // issued once the view is taken: neither file may hold it
    h.store.put({ key: b('after'), value: b('y'), lease: 0n }, 2002);
    await Promise.all([inflight, h.store.commit()]);
    try {
      const layout = etcdStreamLayout(view, cluster)!;
      const own: Buffer[] = [];
      await streamEtcdBackend(layout, view, cluster, async (bufs) => void own.push(...bufs.map((x) => Buffer.from(x))));
      const client = receiver(layout.size);
      let nices: number[] = [];
      const result = await thread.stream(layout, view.point, cluster, async (f) => {
        if (nices.length === 0) nices = threadNices();
        await client.out(f);
      });
      const file = client.bytes();
      expect(file.length).toBe(layout.size);
      expect(file.equals(Buffer.concat(own))).toBe(true);
      expect(result.checksum.equals(createHash('sha256').update(file).digest())).toBe(true);
      // the export's threads (the worker, the hash thread it starts, and under tsx their module loaders) yield the CPU; this thread does not
      expect(nices.filter((n) => n === 10).length).toBeGreaterThanOrEqual(2);
      expect(niceOf('/proc/thread-self')).toBe(0);

      writeFileSync(path.join(out, 'db'), file);
      const f = await BoltFile.open(path.join(out, 'db'));
      try {
        let revisions = 0;
        for await (const _ of f.entries('key')) revisions++;
        expect(revisions).toBe(2001);
      } finally {
        await f.close();
      }
    } finally {
      await view.close();
    }
  } finally {
    await thread.close();
  }
});

it("writes the file the member's own export writes, byte for byte; aborted, it stops and leaves no file", async () => {
  for (let i = 0; i < 3000; i++) h.store.put({ key: b(`k${i}`), value: Buffer.alloc(300, i), lease: 0n }, i + 1);
  await h.commit();
  const thread = await ExportThread.start(h.store);
  try {
    const view = h.store.bucketView(thread);
    try {
      await writeEtcdBackend(path.join(out, 'own.db'), view, cluster);
      // a signal that outlives the write, as the member's own does
      const member = new AbortController();
      const r = await thread.write(path.join(out, 'thread.db'), view.point, cluster, member.signal);
      expect(getEventListeners(member.signal, 'abort')).toHaveLength(0);
      expect(r.keys).toBe(3000 + 1 + 1 + 1 + 1); // revisions, consistent_index, member, cluster, authRevision
      expect(readFileSync(path.join(out, 'thread.db')).equals(readFileSync(path.join(out, 'own.db')))).toBe(true);
      expect(await boltCheck(path.join(out, 'thread.db'))).toEqual({ ok: true, output: '' });
    } finally {
      await view.close();
    }
  } finally {
    await thread.close();
  }

  const aborted = await ExportThread.start(h.store);
  const view = h.store.bucketView(aborted);
  try {
    const abort = new AbortController();
    const writing = aborted.write(path.join(out, 'aborted.db'), view.point, cluster, abort.signal);
    abort.abort();
    await expect(writing).rejects.toThrow(/aborted|stopped/);
    expect(existsSync(path.join(out, 'aborted.db'))).toBe(false);
  } finally {
    await view.close();
    await aborted.close();
  }
});

it('closed part way through a stream, the stream fails, the worker ends and the store serves on', async () => {
  // more than the worker sends ahead of the client (CHUNKS_AHEAD MiB): it cannot finish before the close
  for (let i = 0; i < 16000; i++) h.store.put({ key: b(`k${i}`), value: Buffer.alloc(800, i), lease: 0n }, i + 1);
  await h.commit();
  const thread = await ExportThread.start(h.store);
  const view = h.store.bucketView(thread);
  try {
    const layout = etcdStreamLayout(view, cluster)!;
    let batches = 0;
    const streaming = thread.stream(layout, view.point, cluster, async () => {
      // the client takes the first batch, then the member stops the export
      if (++batches === 1) void thread.close();
    });
    await expect(streaming).rejects.toThrow(/aborted|stopped/);
    expect(batches).toBeLessThan(layout.size / (1 << 20));
  } finally {
    await view.close();
    await thread.close();
  }
  expect((await h.store.range({ key: b('k15999') })).kvs).toHaveLength(1);
  // and the next export of the same store is whole
  await expectWholeStream();
});

it('a store that closes stops its export thread first: LevelDB is released for another process, and the store opens again with a new thread', async () => {
  for (let i = 0; i < 100; i++) await h.put(`k${i}`, 'v');
  const thread = await ExportThread.start(h.store);
  const view = h.store.bucketView(thread);
  await view.close();
  await h.store.close();
  // LevelDB's lock is held until the last handle in this process closes, the worker's included
  const opened = spawnSync(process.execPath, ['-e', `new (require('classic-level').ClassicLevel)(${JSON.stringify(h.dir)}).open().then(() => console.log('opened'), (e) => console.log(e.code))`], {
    encoding: 'utf8',
  });
  expect(opened.stdout.trim()).toBe('opened');
  h.store = await MvccStore.open({ dir: h.dir });
  // the old thread is gone with its store, and cannot freeze the new one
  expect(() => h.store.bucketView(thread)).toThrow(/closed/);
  await expectWholeStream();
  expect((await h.store.range({ key: b('k99') })).kvs).toHaveLength(1);
});

it('refuses to open a store that is open already in this process', async () => {
  await expect(MvccStore.open({ dir: h.dir })).rejects.toThrow(`the store at ${h.dir} is open already in this process`);
});
