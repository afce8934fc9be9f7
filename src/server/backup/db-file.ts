// etcd's backend file in an etcd-ts data dir. etcd-ts's live store is LevelDB
// (member/leveldb), but etcd's offline tools and etcd itself look for a bbolt file at
// member/snap/db: `etcdctl backup --with-v3` copies it with the newest .snap and the WAL
// after that snapshot, and real etcd started on the dir opens it and replays the WAL
// entries after its consistent index. Both get every committed entry as long as
//
//     newest .snap index  <=  the file's consistent index  <=  the store's
//
// so that is what etcd-ts keeps true whenever the file exists. A member that starts
// without one (or with one behind its newest .snap, removed then) writes it at once when
// its store is small and still at that .snap's index (a new member's), else with a
// snapshot taken in the background once it serves clients: at millions of keys the
// export takes minutes that a restart after a crash must not wait for
// (Applier.snapshotForMissingEtcdDb says why a snapshot). A clean stop writes it at the
// applied index (real etcd then starts on the dir without replaying anything). It is
// removed before a leader's .snap ahead of it. Before each .snap of its own the member
// writes it only when that is amortised (exportAmortised): an export reads and writes
// the whole store, and at every --snapshot-count entries that work grows with the
// store, so a member of millions of keys spent most of its time exporting (puts fell
// from thousands a second to a few hundred at 300 k keys, bench/scale). Otherwise it
// removes the file before the .snap. A crash therefore leaves a file that is behind the store but never
// behind the WAL, as etcd's own is, or no file: then, until etcd-ts has run on the dir
// again long enough to write it, `etcdctl backup --with-v3` fails (bbolt cannot open
// it) and real etcd refuses to start (it finds no db for the newest .snap). A clean
// stop always leaves it, and `etcdctl snapshot save` from the running member is
// etcd's own way to back up.
//
// A write is a new file beside the old one, synced, then renamed over it: a crash leaves
// the old file or the new one, never part of one (a left temporary file is removed at
// start with etcd's other `db.tmp*` files). Before the rename the store records the new
// file's identity (bolt-origin.ts): a later start tells its own file from one that etcd
// or an etcd tool wrote since.

import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BoltFile } from '../../bbolt/index.js';
import { nativeHeapTrimmer } from '../../pkg/native-heap.js';
import type { BucketView, MvccStore } from '../../mvcc/index.js';
import { readUint64BE } from '../../mvcc/revision.js';
import { TEMP_DB_PREFIX, nodeDisk } from '../../wal/index.js';
import { boltIdentity, writeOrigin } from '../import/bolt-origin.js';
import { type ClusterState, writeEtcdBackend } from './etcd-db.js';
import type { ExportThread } from './export-thread.js';

/** The store and the cluster frozen at one applied index. */
export interface ExportState {
  readonly view: BucketView;
  readonly cluster: ClusterState;
  /** the store's consistent index in the view: the entries it holds */
  readonly consistentIndex: number;
  /** the serialized size of the store's records (MvccStore.recordBytes): what an export reads and writes */
  readonly storeBytes: number;
  /** key and value bytes of every put this process has applied (MvccStats.putBytes) */
  readonly putBytes: number;
  /** the reader the view was taken with, which writes the file off the member's thread; closed with the view */
  readonly thread?: ExportThread;
}

/** The store's size and the put bytes applied at an export, from which the next is judged. */
export type ExportMark = Pick<ExportState, 'storeBytes' | 'putBytes'>;

/** The store's mark now. */
export function exportMarkOf(store: MvccStore): ExportMark {
  return { storeBytes: store.recordBytes(), putBytes: store.stats.putBytes };
}

/** The store, everything committed to it, and `cluster`, frozen now (with `thread`, for it to write). */
export function exportStateOf(store: MvccStore, cluster: ClusterState, thread?: ExportThread): ExportState {
  return { view: store.bucketView(thread), cluster, consistentIndex: store.consistentIndex, ...exportMarkOf(store), ...(thread === undefined ? {} : { thread }) };
}

/** Releases what `state` holds, unexported. */
async function release(state: ExportState): Promise<void> {
  try {
    await state.view.close();
  } finally {
    await state.thread?.close();
  }
}

/** Stores up to this size are exported before every .snap: that takes a fraction of a second. */
export const ALWAYS_EXPORT_BYTES = 8 * 1024 * 1024;

/**
 * Whether exporting `state` before a .snap is worth its cost: the store is small, or the
 * clients have put at least as many bytes since the last export as the store had then.
 * A store that grows is then exported each time it has doubled and one that is
 * rewritten in place once per rewrite of its size: the exports' work stays within a
 * constant factor of the writes', however large the store and whatever --snapshot-count.
 */
export function exportAmortised(state: ExportMark, last: ExportMark): boolean {
  return state.storeBytes <= ALWAYS_EXPORT_BYTES || state.putBytes - last.putBytes >= last.storeBytes;
}

export interface DbFileLayout {
  /** member/snap/db */
  readonly boltPath: string;
  /** member/leveldb, where the file's identity is recorded */
  readonly dbDir: string;
}

/**
 * The smallest export the native heap is trimmed after. Every first start exports an
 * almost empty store (16 KiB): the few kilobytes that frees are not worth loading the FFI
 * and walking glibc's arenas (~0.03 CPU s, at each of the hundreds of first starts of the
 * test suite).
 */
const TRIM_AFTER_EXPORT_BYTES = 1 << 20;

/** Why the file is written, for the log line. */
export type ExportReason = 'start' | 'snapshot' | 'stop';

/**
 * Writes `state` as etcd's backend at `layout.boltPath` (replacing any file there) and
 * closes the view. A failed write leaves the old file; so does aborting `signal`
 * (ExportAbortedError).
 */
export async function exportEtcdDb(layout: DbFileLayout, state: ExportState, reason: ExportReason, log: Logger, signal?: AbortSignal): Promise<void> {
  const dir = path.dirname(layout.boltPath);
  const tmp = path.join(dir, `${TEMP_DB_PREFIX}.export-${randomBytes(6).toString('hex')}`);
  const started = performance.now();
  try {
    const { size, keys } =
      state.thread === undefined ? await writeEtcdBackend(tmp, state.view, state.cluster, signal) : await state.thread.write(tmp, state.view.point, state.cluster, signal);
    await writeOrigin(layout.dbDir, await boltIdentity(tmp));
    await rename(tmp, layout.boltPath);
    await nodeDisk.fsyncDir(dir);
    log.info(
      {
        path: layout.boltPath,
        reason,
        'consistent-index': state.consistentIndex,
        size,
        records: keys,
        took: `${Math.round(performance.now() - started)}ms`,
        'written-by': state.thread === undefined ? 'member thread' : 'export thread',
      },
      "wrote etcd's bbolt db",
    );
    // the export read the whole store and built every page: give the memory it freed back
    if (size >= TRIM_AFTER_EXPORT_BYTES) nativeHeapTrimmer.request('etcd-db-export', log);
  } finally {
    await release(state);
    // gone already, unless the write failed
    await rm(tmp, { force: true });
  }
}

/** Removes the file (a leader's snapshot is about to be ahead of it). */
export async function removeEtcdDb(layout: DbFileLayout, log: Logger, why: string): Promise<void> {
  try {
    await rm(layout.boltPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await nodeDisk.fsyncDir(path.dirname(layout.boltPath));
  log.info({ path: layout.boltPath }, `removed etcd's bbolt db: ${why}`);
}

/** The file's meta/consistent_index (0 when it has none, as etcd reads it). */
export async function boltConsistentIndex(file: string): Promise<number> {
  const bolt = await BoltFile.open(file);
  try {
    if (!bolt.bucketNames().some((b) => b.toString('latin1') === 'meta')) return 0;
    for await (const [k, v] of bolt.entries('meta')) {
      if (k.toString('latin1') !== 'consistent_index') continue;
      const ci = v.length === 8 ? readUint64BE(v, 0) : undefined;
      if (ci === undefined) throw new Error(`${file}: meta/consistent_index is ${v.toString('hex')}, not an index`);
      return ci;
    }
    return 0;
  } finally {
    await bolt.close();
  }
}

/** What the apply side does with etcd's bbolt file: keeps it no older than each .snap, and writes it at a clean stop. */
export interface EtcdDbWriter {
  readonly path: string;
  /** whether the file is there, as the last finished operation left it */
  readonly present: boolean;
  /** writes `state` as the file and closes its view; aborting `signal` gives the write up (ExportAbortedError) */
  write(state: ExportState, reason: ExportReason, signal?: AbortSignal): Promise<void>;
  /** before a .snap at `state`'s index: writes the file when that is amortised, else removes it; closes the view */
  beforeSnapshot(state: ExportState, signal?: AbortSignal): Promise<void>;
  /** whether beforeSnapshot would write the file for a store at `mark` */
  exportsBeforeSnapshot(mark: ExportMark): boolean;
}

/**
 * The member's etcd bbolt file, written and removed one operation at a time: a snapshot
 * written in the background must not race the removal before a leader's .snap.
 */
export class EtcdDbFile implements EtcdDbWriter {
  private chain: Promise<void> = Promise.resolve();

  /**
   * @param exported the store as the file was last written from: at the member's start,
   *   which found the file up to date or has it written soon after (a snapshot, reason 'start')
   * @param isPresent whether the file is there: at first, whether the member found it at its start
   */
  constructor(
    private readonly layout: DbFileLayout,
    private readonly log: Logger,
    private exported: ExportMark,
    private isPresent: boolean,
  ) {}

  get present(): boolean {
    return this.isPresent;
  }

  write(state: ExportState, reason: ExportReason, signal?: AbortSignal): Promise<void> {
    this.exported = { storeBytes: state.storeBytes, putBytes: state.putBytes };
    return this.then(async () => {
      await exportEtcdDb(this.layout, state, reason, this.log, signal);
      this.isPresent = true;
    });
  }

  exportsBeforeSnapshot(mark: ExportMark): boolean {
    return exportAmortised(mark, this.exported);
  }

  beforeSnapshot(state: ExportState, signal?: AbortSignal): Promise<void> {
    if (this.exportsBeforeSnapshot(state)) return this.write(state, 'snapshot', signal);
    const written = state.putBytes - this.exported.putBytes;
    const why = `the ${written} bytes put since it was written are fewer than the ${this.exported.storeBytes} it was written from, so writing it before the snapshot at index ${state.consistentIndex} would cost more than they did`;
    return this.then(async () => {
      await release(state);
      await this.removeNow(why);
    });
  }

  remove(why: string): Promise<void> {
    return this.then(() => this.removeNow(why));
  }

  private async removeNow(why: string): Promise<void> {
    // not there from the moment the removal starts: a failed one leaves it in doubt
    this.isPresent = false;
    await removeEtcdDb(this.layout, this.log, why);
  }

  get path(): string {
    return this.layout.boltPath;
  }

  private then(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
