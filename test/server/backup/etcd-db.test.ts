// writeEtcdBackend on a real store: the buckets etcd 3.4 has, checked by real bbolt, the
// records etcd keeps outside etcd-ts's store in place, and an aborted export leaving nothing.

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BoltFile } from '../../../src/bbolt/index.js';
import type { BucketName, BucketView } from '../../../src/mvcc/index.js';
import { ETCD_BUCKETS } from '../../../src/server/backup/etcd-buckets.js';
import { etcdStreamLayout, ExportAbortedError, streamEtcdBackend, writeEtcdBackend } from '../../../src/server/backup/etcd-db.js';
import { boltCheck } from '../../bbolt/real-bolt.js';
import { Harness, removeDir, scratchDir } from '../../mvcc/helpers.js';

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
  // in numeric order, as Membership.list() gives them
  members: [
    { id: 0x9n, name: 'a', peerUrls: ['http://127.0.0.1:1'], clientUrls: ['http://127.0.0.1:3'], isLearner: false },
    { id: 0x10n, name: 'b', peerUrls: ['http://127.0.0.1:2'], clientUrls: [], isLearner: false },
  ],
  removed: [0x2an],
  version: '3.4.23',
};

async function records(f: BoltFile, bucket: string): Promise<string[]> {
  const outRecords: string[] = [];
  for await (const [k, v] of f.entries(bucket)) outRecords.push(`${k.toString()}=${v.toString('hex')}`);
  return outRecords;
}

it("writes every bucket etcd 3.4 has, in bbolt's order, that real bbolt accepts", async () => {
  for (let i = 0; i < 300; i++) await h.put(`k${i}`, `v${i}`);
  h.store.putAuthRecord('auth', Buffer.from('authEnabled'), Buffer.of(0));
  await h.commit();
  const file = path.join(out, 'db');
  const view = h.store.bucketView();
  try {
    const r = await writeEtcdBackend(file, view, cluster);
    expect(r.keys).toBe(300 + 1 + 2 + 1 + 1 + 2); // revisions, consistent_index, members, removed, cluster, auth
  } finally {
    await view.close();
  }
  expect(await boltCheck(file)).toEqual({ ok: true, output: '' });
  const f = await BoltFile.open(file);
  try {
    expect(f.bucketNames().map(String)).toEqual([...ETCD_BUCKETS]);
    // member IDs are unpadded hex: "10" sorts before "9"
    expect((await records(f, 'members')).map((r) => r.split('=')[0])).toEqual(['10', '9']);
    expect(await records(f, 'members_removed')).toEqual([`2a=${Buffer.from('removed').toString('hex')}`]);
    expect(await records(f, 'cluster')).toEqual([`clusterVersion=${Buffer.from('3.4.0').toString('hex')}`]);
    // a store that never changed auth gets the revision etcd's auth store writes on its first open
    expect(await records(f, 'auth')).toEqual(['authEnabled=00', 'authRevision=0000000000000001']);
  } finally {
    await f.close();
  }
});

it('an aborted export stops with ExportAbortedError and removes its file', async () => {
  for (let i = 0; i < 300; i++) await h.put(`k${i}`, `v${i}`);
  await h.commit();
  const file = path.join(out, 'db');
  const abort = new AbortController();
  const view = h.store.bucketView();
  try {
    // aborted once the export is under way, when it comes to its second bucket
    const aborting: BucketView = {
      size: (name) => view.size(name),
      bucket: (name) => {
        if (name === 'auth') abort.abort();
        return view.bucket(name);
      },
      revisionRecords: () => view.revisionRecords(),
      point: view.point,
      close: () => view.close(),
    };
    await expect(writeEtcdBackend(file, aborting, cluster, abort.signal)).rejects.toBeInstanceOf(ExportAbortedError);
  } finally {
    await view.close();
  }
  expect(existsSync(file)).toBe(false);
});

/** What the view's buckets hold, counted by reading them. */
async function counted(view: BucketView, name: BucketName): Promise<{ records: number; dataBytes: number; maxPairBytes: number; maxKeyBytes: number }> {
  const c = { records: 0, dataBytes: 0, maxPairBytes: 0, maxKeyBytes: 0 };
  for await (const batch of view.bucket(name)) {
    for (const [k, v] of batch) {
      c.records++;
      c.dataBytes += k.length + v.length;
      c.maxPairBytes = Math.max(c.maxPairBytes, k.length + v.length);
      c.maxKeyBytes = Math.max(c.maxKeyBytes, k.length);
    }
  }
  return c;
}

async function expectSizesBound(why: string): Promise<void> {
  const view = h.store.bucketView();
  try {
    for (const name of ['key', 'meta', 'auth'] as const) {
      const real = await counted(view, name);
      const size = view.size(name);
      expect(size.records, `${why}: ${name} records`).toBeGreaterThanOrEqual(real.records);
      expect(size.dataBytes, `${why}: ${name} bytes`).toBeGreaterThanOrEqual(real.dataBytes);
      expect(size.maxPairBytes, `${why}: ${name} largest`).toBeGreaterThanOrEqual(real.maxPairBytes);
      expect(size.maxKeyBytes, `${why}: ${name} longest key`).toBeGreaterThanOrEqual(real.maxKeyBytes);
      // the revision records are counted exactly, their bytes within the varint lengths' slack
      if (name === 'key') expect(size.records, `${why}: key records`).toBe(real.records);
    }
  } finally {
    await view.close();
  }
}

it("the view's bucket sizes bound what it holds, after puts, deletes, a compaction and a reopen; the database streamed in their layout holds what the written one holds", async () => {
  for (let i = 0; i < 400; i++) await h.put(`k${i % 150}`, 'v'.repeat(i % 300));
  await h.del('k1', 'k3');
  h.store.putAuthRecord('auth', Buffer.from('authEnabled'), Buffer.of(0));
  await h.commit();
  await expectSizesBound('after puts and deletes');
  await h.compact(300);
  await expectSizesBound('after a compaction');
  await h.reopen();
  await expectSizesBound('after a reopen');

  const written = path.join(out, 'written.db');
  const streamed = path.join(out, 'streamed.db');
  const view = h.store.bucketView();
  try {
    await writeEtcdBackend(written, view, cluster);
    const layout = etcdStreamLayout(view, cluster);
    if (layout === undefined) throw new Error('no stream layout for small records');
    const got: Buffer[] = [];
    await streamEtcdBackend(layout, view, cluster, async (bufs) => {
      for (const b of bufs) got.push(Buffer.from(b));
    });
    writeFileSync(streamed, Buffer.concat(got));
    expect(Buffer.concat(got).length).toBe(layout.size);
  } finally {
    await view.close();
  }
  expect(await boltCheck(streamed)).toEqual({ ok: true, output: '' });
  const [a, b] = [await BoltFile.open(written), await BoltFile.open(streamed)];
  try {
    for (const name of ETCD_BUCKETS) expect(await records(b, name), name).toEqual(await records(a, name));
  } finally {
    await a.close();
    await b.close();
  }
});
