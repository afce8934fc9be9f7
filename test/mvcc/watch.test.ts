import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Event, WatchResponseOut, WatchStream } from '../../src/mvcc/index.js';
import { MvccStore } from '../../src/mvcc/index.js';
import { liveArrayBuffers } from '../live-array-buffers.js';
import { Harness, b, copyStore, removeDir } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await Harness.open();
});
afterEach(async () => {
  await h.close();
});

/** A sink recording responses; `room` responses accepted before it reports full (Infinity = never). */
class Receiver {
  readonly got: WatchResponseOut[] = [];
  room = Infinity;
  readonly ws: WatchStream;
  constructor() {
    this.ws = h.store.newWatchStream((r) => {
      this.got.push(r);
      this.room--;
      return this.room > 0;
    });
  }
  events(watchId = 0): Event[] {
    return this.got.filter((r) => r.watchId === watchId).flatMap((r) => r.events);
  }
  summary(watchId = 0): string[] {
    return this.events(watchId).map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}${e.type === 'put' ? `=${e.kv.value}` : ''}`);
  }
}

/** Applies `n` puts in batches of `per` (one commit each), keys k0..k{keys-1}, values `v<j>` then `pad` bytes. */
async function storm(n: number, per: number, keys = 10, pad = 0): Promise<void> {
  const padding = '.'.repeat(pad);
  for (let i = 0; i < n; i += per) {
    for (let j = i; j < Math.min(n, i + per); j++) {
      await h.store.put({ key: b(`k${j % keys}`), value: b(`v${j}${padding}`), lease: 0n }, ++h.index);
    }
    await h.commit();
  }
}

describe('watch', () => {
  it('delivers new events after the commit, one response per commit, with prev_kv', async () => {
    const r = new Receiver();
    expect(r.ws.watch({ key: b('a'), startRevision: 0, prevKv: true })).toEqual({ watchId: 0 });
    expect(r.ws.isSynced(0)).toBe(true);
    await h.store.put({ key: b('a'), value: b('1'), lease: 0n }, 1);
    await h.store.put({ key: b('b'), value: b('x'), lease: 0n }, 2);
    await h.store.put({ key: b('a'), value: b('2'), lease: 0n }, 3);
    expect(r.got).toHaveLength(0);
    await h.commit();
    expect(r.got).toHaveLength(1);
    expect(r.got[0]!.revision).toBe(4);
    const [e1, e2] = r.got[0]!.events;
    expect(e1).toEqual({ type: 'put', kv: expect.objectContaining({ modRevision: 2, createRevision: 2, version: 1 }) });
    expect(e2!.prevKv).toMatchObject({ modRevision: 2, value: b('1') });
    await h.del('a');
    const d = r.got[1]!.events[0]!;
    expect(d.type).toBe('delete');
    expect(d.kv).toEqual({ key: b('a'), createRevision: 0, modRevision: 5, version: 0, value: Buffer.alloc(0), lease: 0n });
    expect(d.prevKv).toMatchObject({ modRevision: 4, value: b('2') });
  });

  it('drops prev_kv unless asked, and filters puts or deletes', async () => {
    const r = new Receiver();
    r.ws.watch({ key: b('a'), startRevision: 0 });
    r.ws.watch({ key: b('a'), startRevision: 0, noPut: true });
    r.ws.watch({ key: b('a'), startRevision: 0, noDelete: true });
    await h.put('a', '1');
    await h.put('a', '2');
    await h.del('a');
    expect(r.events(0).every((e) => e.prevKv === undefined)).toBe(true);
    expect(r.summary(0)).toEqual(['put a@2=1', 'put a@3=2', 'delete a@4']);
    expect(r.summary(1)).toEqual(['delete a@4']);
    expect(r.summary(2)).toEqual(['put a@2=1', 'put a@3=2']);
  });

  it('watches prefixes and from-key ranges; an empty key means "\\0"', async () => {
    const r = new Receiver();
    r.ws.watch({ key: b('p/'), rangeEnd: b('p0'), startRevision: 0 });
    r.ws.watch({ key: b('m'), rangeEnd: Buffer.of(0), startRevision: 0 });
    r.ws.watch({ key: Buffer.alloc(0), rangeEnd: Buffer.of(0), startRevision: 0 });
    for (const k of ['a', 'p/1', 'p0', 'z']) await h.put(k, '1');
    expect(r.summary(0)).toEqual(['put p/1@3=1']);
    expect(r.summary(1)).toEqual(['put p/1@3=1', 'put p0@4=1', 'put z@5=1']);
    expect(r.summary(2)).toHaveLength(4);
  });

  it('replays history from the start revision, inclusive, then continues live', async () => {
    await h.put('a', '1'); // 2
    await h.put('a', '2'); // 3
    await h.del('a'); // 4
    await h.put('a', '3'); // 5
    const r = new Receiver();
    r.ws.watch({ key: b('a'), startRevision: 3, prevKv: true });
    expect(r.ws.isSynced(0)).toBe(false);
    await vi.waitFor(() => expect(r.ws.isSynced(0)).toBe(true));
    await h.put('a', '4'); // 6
    expect(r.summary()).toEqual(['put a@3=2', 'delete a@4', 'put a@5=3', 'put a@6=4']);
    const ev = r.events();
    expect(ev[0]!.prevKv).toMatchObject({ modRevision: 2 });
    expect(ev[1]!.prevKv).toMatchObject({ modRevision: 3 });
    expect(ev[2]!.prevKv).toBeUndefined(); // a create after a delete
    expect(ev[3]!.prevKv).toMatchObject({ modRevision: 5 });
  });

  it('replays everything from revision 1, after a reopen too', async () => {
    await h.put('a', '1');
    await h.put('b', '1');
    await h.reopen();
    const r = new Receiver();
    r.ws.watch({ key: b('\0'), rangeEnd: b('\0'), startRevision: 1 });
    await vi.waitFor(() => expect(r.ws.isSynced(0)).toBe(true));
    expect(r.summary()).toEqual(['put a@2=1', 'put b@3=1']);
  });

  it('catches up from LevelDB when the in-memory history no longer covers the start', async () => {
    // 40 k events of 1 KiB: more than the ring's 32 MB
    await storm(40_000, 500, 10, 1024);
    const r = new Receiver();
    r.ws.watch({ key: b('k3'), startRevision: 2, prevKv: true });
    await vi.waitFor(() => expect(r.ws.isSynced(0)).toBe(true), { timeout: 20_000 });
    const ev = r.events();
    expect(ev).toHaveLength(4000);
    expect(ev.map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 4000 }, (_, i) => 2 + 3 + i * 10));
    expect(ev[1]!.prevKv).toMatchObject({ modRevision: 5 });
    // never more than 1000 revisions in one response
    expect(Math.max(...r.got.map((x) => new Set(x.events.map((e) => e.kv.modRevision)).size))).toBeLessThanOrEqual(1000);
  });

  it('keeps no landed history while nothing watches; a later watch from the past reads it from LevelDB', async () => {
    await h.close();
    h = await Harness.open({ valueCacheBytes: 0 });
    const before = await liveArrayBuffers();
    const big = (j: number) => Buffer.alloc(64 * 1024, `${j};`);
    // 200 puts of 64 KiB (13 MB, under the ring's bound): a ring kept for nobody held them all
    for (let i = 0; i < 200; i += 20) {
      for (let j = i; j < i + 20; j++) await h.store.put({ key: b(`k${j % 10}`), value: big(j), lease: 0n }, ++h.index);
      await h.commit();
    }
    expect((await liveArrayBuffers()) - before).toBeLessThan(4 * 1024 * 1024);
    const r = new Receiver();
    r.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 2, prevKv: true });
    await vi.waitFor(() => expect(r.ws.isSynced(0)).toBe(true));
    const ev = r.events();
    expect(ev.map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 200 }, (_, j) => j + 2));
    expect(ev.every((e, j) => e.kv.value.equals(big(j)))).toBe(true);
    expect(ev.every((e, j) => (j < 10 ? e.prevKv === undefined : e.prevKv?.value.equals(big(j - 10))))).toBe(true);
  });

  it('serves a watch from events published but not yet in LevelDB, past the ring bound, then the landing', async () => {
    // watchers hear of an apply batch before its write lands: 40 MiB published, nothing landed
    const big = (j: number) => Buffer.alloc(1024 * 1024, `${j};`);
    for (let j = 0; j < 40; j++) await h.store.put({ key: b(`k${j % 4}`), value: big(j), lease: 0n }, ++h.index);
    h.store.publish();
    const r = new Receiver();
    r.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 2 });
    await vi.waitFor(() => expect(r.ws.isSynced(0)).toBe(true));
    expect(r.events().map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 40 }, (_, j) => j + 2));
    await h.commit();
    // and a second watcher, from the start again, once it has landed and the first still watches
    r.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 2 });
    await vi.waitFor(() => expect(r.ws.isSynced(1)).toBe(true));
    expect(r.events(1).every((e, j) => e.kv.modRevision === j + 2 && e.kv.value.equals(big(j)))).toBe(true);
    expect(r.events(1)).toHaveLength(40);
  });

  it('tells a watcher whose start revision is compacted, then forgets it', async () => {
    for (let i = 0; i < 5; i++) await h.put('a', `${i}`); // 2..6
    await h.compact(4);
    const r = new Receiver();
    r.ws.watch({ key: b('a'), startRevision: 3 });
    r.ws.watch({ key: b('a'), startRevision: 4 }); // == compact revision: fine
    await vi.waitFor(() => expect(r.got.some((x) => x.watchId === 0)).toBe(true));
    await vi.waitFor(() => expect(r.ws.isSynced(1)).toBe(true));
    expect(r.got.find((x) => x.watchId === 0)).toEqual({ watchId: 0, events: [], revision: 0, compactRevision: 4 });
    expect(r.ws.cancel(0)).toBe(false);
    expect(r.summary(1)).toEqual(['put a@4=2', 'put a@5=3', 'put a@6=4']);
  });

  it('numbers watchers from 0, accepts client ids and refuses duplicates and empty ranges', async () => {
    const r = new Receiver();
    expect(r.ws.watch({ key: b('a'), startRevision: 0, watchId: 1 })).toEqual({ watchId: 1 });
    expect(r.ws.watch({ key: b('a'), startRevision: 0 })).toEqual({ watchId: 0 });
    expect(r.ws.watch({ key: b('a'), startRevision: 0 })).toEqual({ watchId: 2 });
    expect(r.ws.watch({ key: b('a'), startRevision: 0, watchId: 2 })).toEqual({ error: 'duplicate-watch-id' });
    expect(r.ws.watch({ key: b('b'), rangeEnd: b('a'), startRevision: 0 })).toEqual({ error: 'empty-range' });
    const other = new Receiver();
    expect(other.ws.watch({ key: b('a'), startRevision: 0 })).toEqual({ watchId: 0 });
  });

  it('stops delivering after cancel and close', async () => {
    const r = new Receiver();
    r.ws.watch({ key: b('a'), startRevision: 0 });
    r.ws.watch({ key: b('a'), startRevision: 0 });
    await h.put('a');
    expect(r.ws.cancel(0)).toBe(true);
    expect(r.ws.cancel(0)).toBe(false);
    await h.put('a');
    expect(r.got.map((x) => x.watchId)).toEqual([0, 1, 1]);
    r.ws.close();
    await h.put('a');
    expect(r.got).toHaveLength(3);
  });

  it('a future start revision waits for that revision', async () => {
    const r = new Receiver();
    r.ws.watch({ key: b('a'), startRevision: 4 });
    await h.put('a', '1');
    await h.put('a', '2');
    await h.put('a', '3');
    expect(r.summary()).toEqual(['put a@4=3']);
  });

  it('answers a progress request at once when synced, else once synced', async () => {
    await storm(100, 10);
    const r = new Receiver();
    r.ws.requestProgress();
    expect(r.got).toEqual([{ watchId: -1, events: [], revision: 101 }]);
    r.ws.watch({ key: b('k1'), startRevision: 2 });
    r.ws.requestProgress();
    expect(r.got).toHaveLength(1);
    await vi.waitFor(() => expect(r.got).toHaveLength(3));
    expect(r.got[1]!.watchId).toBe(0);
    expect(r.got[1]!.events).toHaveLength(10);
    expect(r.got[2]).toEqual({ watchId: -1, events: [], revision: 101 });
  });

  it('a stalled receiver under a write storm costs nothing and catches up exactly after resume', async () => {
    const stalled = new Receiver();
    stalled.room = 1; // accepts one response, then reports full
    stalled.ws.watch({ key: b('k0'), rangeEnd: b('k9'), startRevision: 0, prevKv: true });
    const live = new Receiver();
    live.ws.watch({ key: b('k0'), startRevision: 0 });
    await storm(30_000, 100);
    expect(h.store.currentRevision).toBe(30_001);
    // one response went out; since then nothing is queued for it
    expect(stalled.got).toHaveLength(1);
    expect(stalled.ws.isSynced(0)).toBe(false);
    stalled.ws.requestProgress(); // deferred: the stream is full
    expect(live.events()).toHaveLength(3000);
    stalled.room = Infinity;
    stalled.ws.resume();
    await vi.waitFor(() => expect(stalled.ws.isSynced(0)).toBe(true), { timeout: 30_000 });
    const ev = stalled.events();
    const expected = Array.from({ length: 30_000 }, (_, i) => i).filter((i) => i % 10 !== 9).map((i) => i + 2);
    expect(ev.map((e) => e.kv.modRevision)).toEqual(expected);
    expect(ev.every((e, i) => e.kv.value.toString() === `v${expected[i]! - 2}`)).toBe(true);
    expect(ev[20]!.prevKv).toMatchObject({ modRevision: ev[20]!.kv.modRevision - 10 });
    // revisions never split across responses, progress comes after all events
    const last = stalled.got[stalled.got.length - 1]!;
    expect(last).toEqual({ watchId: -1, events: [], revision: 30_001 });
  });

  it('a receiver stalled past a compaction is told the compact revision on resume', async () => {
    const stalled = new Receiver();
    stalled.room = 1;
    stalled.ws.watch({ key: b('k1'), startRevision: 0 });
    await storm(200, 10);
    await h.compact(150);
    stalled.room = Infinity;
    stalled.ws.resume();
    await vi.waitFor(() => expect(stalled.got.some((x) => x.compactRevision !== undefined)).toBe(true));
    expect(stalled.got[stalled.got.length - 1]).toEqual({ watchId: 0, events: [], revision: 0, compactRevision: 150 });
  });

  it('keeps many overlapping watchers exact: ordered, complete, no duplicates, revisions whole', async () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const key = () => `k${rnd(20).toString().padStart(2, '0')}`;
    const history: Event[] = [];
    const apply = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        for (let j = 0, n = 1 + rnd(5); j < n; j++) {
          if (rnd(4) === 0) {
            const from = key();
            const r = await h.store.deleteRange({ key: b(from), rangeEnd: b(from + '5') }, ++h.index);
            void r;
          } else if (rnd(3) === 0) {
            const k1 = key();
            let k2 = key();
            if (k2 === k1) k2 = k1 + 'x';
            await h.store.txn({ compare: [], success: [{ put: { key: b(k1), value: b(`t${i}`), lease: 0n } }, { put: { key: b(k2), value: b(`u${i}`), lease: 0n } }], failure: [] }, ++h.index);
          } else {
            await h.store.put({ key: b(key()), value: b(`p${i}.${j}`), lease: 0n }, ++h.index);
          }
        }
        await h.commit();
      }
    };
    const all = new Receiver();
    all.ws.watch({ key: b('\0'), rangeEnd: b('\0'), startRevision: 1, prevKv: true });
    await apply(150);
    const receivers: Array<{ r: Receiver; from: string; to: string; start: number }> = [];
    for (let i = 0; i < 40; i++) {
      const r = new Receiver();
      if (i % 3 === 0) r.room = 2 + rnd(5); // some stall for a while
      const a = key();
      const z = rnd(3) === 0 ? a + '\0' : key() + 'z';
      const start = rnd(2) === 0 ? 0 : 1 + rnd(h.store.currentRevision);
      const created = r.ws.watch({ key: b(a), rangeEnd: b(z), startRevision: start, prevKv: true });
      if ('error' in created) continue;
      receivers.push({ r, from: a, to: z, start: start === 0 ? h.store.currentRevision + 1 : start });
      await apply(3);
    }
    await apply(100);
    for (const { r } of receivers) {
      r.room = Infinity;
      r.ws.resume();
    }
    await vi.waitFor(() => expect(receivers.every(({ r }) => r.ws.isSynced(0)) && all.ws.isSynced(0)).toBe(true), { timeout: 20_000 });
    history.push(...all.events());
    expect(history.map((e) => e.kv.modRevision)).toEqual([...history.map((e) => e.kv.modRevision)].sort((x, y) => x - y));
    for (const { r, from, to, start } of receivers) {
      const want = history.filter((e) => e.kv.modRevision >= start && e.kv.key.toString() >= from && e.kv.key.toString() < to);
      expect(r.events()).toEqual(want);
      const revs = r.got.map((x) => x.events.map((e) => e.kv.modRevision));
      for (let i = 1; i < revs.length; i++) expect(revs[i]![0]!).toBeGreaterThan(revs[i - 1]![revs[i - 1]!.length - 1]!);
    }
  });
});

describe('watch across a store replacement (a leader snapshot installed)', () => {
  /**
   * Replaces h.store by a store ahead of it, as a leader's would be: `n` puts of k0..k9,
   * then maybe a compaction. Returns a receiver whose stream was opened in between.
   */
  async function installLeaderStore(n: number, compactAt?: number): Promise<Receiver> {
    const leader = await Harness.open();
    try {
      for (let i = 0; i < n; i++) await leader.put(`k${i % 10}`, `v${i}`);
      if (compactAt !== undefined) await leader.compact(compactAt);
      const { dir, restored } = await copyStore(leader.store);
      await h.store.close();
      const replaced = h.store;
      // a stream opened between the close and the successor's open: "from now" means after
      // the closed store's revision (what its created response reports)
      const late = new Receiver();
      late.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 0 });
      h.store = await MvccStore.open({ dir, replacing: replaced, restored });
      replacedDirs.push(dir);
      return late;
    } finally {
      await leader.close();
    }
  }
  const replacedDirs: string[] = [];
  afterEach(() => {
    for (const d of replacedDirs.splice(0)) removeDir(d);
  });

  it('catches watchers up from the new store, from the revision each still needs', async () => {
    await h.put('k0', 'mine'); // rev 2, also the leader's rev 2 (same first write position)
    const r = new Receiver();
    r.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 0 }); // next: rev 3
    r.ws.watch({ key: b('k5'), startRevision: 40 }); // ahead of this store
    expect(r.ws.isSynced(0)).toBe(true);
    const late = await installLeaderStore(60);
    await vi.waitFor(() => expect(r.events(0)).toHaveLength(59));
    expect(r.events(0).map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 59 }, (_, i) => i + 3));
    expect(r.summary(1)).toEqual(['put k5@47=v45', 'put k5@57=v55']);
    await vi.waitFor(() => expect(r.ws.isSynced(0) && r.ws.isSynced(1)).toBe(true));
    // and new writes flow as before
    await h.put('k1', 'after');
    await vi.waitFor(() => expect(r.summary(0).at(-1)).toBe('put k1@62=after'));
    expect(late.events().map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 60 }, (_, i) => i + 3));
  });

  it('tells a watcher whose next revision the new store compacted away', async () => {
    const r = new Receiver();
    r.ws.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 0 }); // next: rev 2
    const late = await installLeaderStore(30, 20);
    await vi.waitFor(() => expect(r.got.at(-1)).toMatchObject({ watchId: 0, compactRevision: 20 }));
    expect(r.events(0)).toEqual([]);
    expect(r.ws.cancel(0)).toBe(false);
    await vi.waitFor(() => expect(late.got.at(-1)).toMatchObject({ watchId: 0, compactRevision: 20 }));
  });
});
