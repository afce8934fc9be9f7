// A store built from streamed records (an import of etcd's bbolt db) opens on the state
// its builder restored while writing, instead of reading every record back, and that
// open serves exactly what an open that reads the records back serves.

import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type BucketRecords, MvccStore, buildStore } from '../../src/mvcc/index.js';
import { Harness, b, recordsOf, removeDir, scratchDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

/** The store's `restored mvcc store` log line. */
async function openLogged(dir: string, restored?: Awaited<ReturnType<typeof buildStore>>): Promise<{ store: MvccStore; line: Record<string, unknown> }> {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) });
  const store = await MvccStore.open({ dir, logger: pino({ level: 'info' }, sink), restored });
  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'restored mvcc store');
  return { store, line: line! };
}

/** What a client can see of a store: every key at every revision, the hashes, the revisions, the size. */
async function seen(store: MvccStore): Promise<Record<string, unknown>> {
  const revisions = [];
  for (let rev = store.compactRevision; rev <= store.currentRevision; rev++) {
    if (rev < 1) continue;
    revisions.push(await store.range({ key: b('\0'), rangeEnd: b('\0'), revision: rev }));
  }
  return {
    revisions,
    hash: await store.hash(),
    hashKV: await store.hashKV(0),
    currentRevision: store.currentRevision,
    compactRevision: store.compactRevision,
    consistentIndex: store.consistentIndex,
    dbSizeInUse: store.dbSizeInUse(),
  };
}

describe('buildStore', () => {
  it('hands the open the state it restored while writing: the open reads no record back and serves the same store', async () => {
    const h = await Harness.open();
    try {
      // several generations, tombstones, a lease, a compaction that dropped some puts
      await h.put('a', '1');
      await h.put('b', '1', { lease: 7n });
      await h.put('a', '2');
      await h.del('a');
      await h.put('a', '3');
      await h.put('c', 'x'.repeat(300));
      await h.compact(3);
      await h.put('b', '2', { lease: 7n });
      await h.del('c');
      await h.put('d', '1');
      h.store.putLeaseRecord(7n, Buffer.from('lease-7'));
      await h.commit();

      const built = scratchDir();
      dirs.push(built);
      const restored = await buildStore(built, recordsOf(h.store));
      const handedOver = await openLogged(built, restored);
      const fromBuild = await seen(handedOver.store);
      await handedOver.store.close();
      const readBack = await openLogged(built);
      const fromRecords = await seen(readBack.store);
      await readBack.store.close();

      expect(handedOver.line['restored-from']).toBe('build');
      expect(readBack.line['restored-from']).toBe('records');
      expect(handedOver.line['keys']).toBe(readBack.line['keys']);
      expect(fromBuild).toEqual(fromRecords);
      // the source's size counts the records its compaction deleted and LevelDB still holds
      const { dbSizeInUse: _, ...source } = await seen(h.store);
      expect(fromRecords).toMatchObject(source);
    } finally {
      await h.close();
    }
  });
});
