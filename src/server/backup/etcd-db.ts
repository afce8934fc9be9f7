// An etcd-ts member's state as etcd 3.4's backend database: the bbolt file `etcdctl
// snapshot save` receives, `snapshot status|restore` read, and real etcd starts on.
//
// The store's buckets (key, meta, lease, alarm, auth*) hold etcd's bytes already and
// are copied record for record from one frozen view of the store; the membership and
// the cluster version, which etcd-ts keeps outside its store, become etcd's `members`,
// `members_removed` and `cluster` records. Everything streams through writeBolt, so
// memory does not grow with the data.

import {
  type BucketSize,
  type BucketSource,
  DEFAULT_PAGE_SIZE,
  type Entry,
  planStreamLayout,
  type SequentialOutput,
  type StreamLayout,
  streamBolt,
  type StreamResult,
  type WriteResult,
  writeBolt,
} from '../../bbolt/index.js';
import type { BucketName, BucketView } from '../../mvcc/index.js';
import type { Member, Membership } from '../membership.js';
import { type BucketRecord, ETCD_BUCKETS, type EtcdBucket, clusterVersionRecord, memberRecord, removedMemberRecord } from './etcd-buckets.js';

/** The cluster as etcd 3.4 records it in its backend, at the same applied index as the store view. */
export interface ClusterState {
  readonly members: readonly Member[];
  readonly removed: readonly bigint[];
  /** the agreed cluster version ("3.4.0"); undefined until decided, and etcd then has no record either */
  readonly version: string | undefined;
}

/** The membership as etcd's backend records it. */
export function clusterStateOf(membership: Membership): ClusterState {
  return { members: membership.list(), removed: membership.removedIds(), version: membership.version() };
}

/** Buckets that are the store's own, under the same names. */
/** The buckets etcd keeps its membership and cluster version in, which etcd-ts keeps outside its store. */
type ClusterBucket = 'members' | 'members_removed' | 'cluster';
type StoreBucket = Exclude<EtcdBucket, ClusterBucket>;

function isClusterBucket(name: EtcdBucket): name is ClusterBucket {
  return name === 'members' || name === 'members_removed' || name === 'cluster';
}

const STORE_BUCKETS: Readonly<Record<StoreBucket, BucketName>> = {
  alarm: 'alarm',
  auth: 'auth',
  authRoles: 'authRoles',
  authUsers: 'authUsers',
  key: 'key',
  lease: 'lease',
  meta: 'meta',
};

const AUTH_REVISION_KEY = Buffer.from('authRevision');
const AUTH_REVISION_AT_START = Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]);

export class ExportAbortedError extends Error {
  override name = 'ExportAbortedError';
}

/**
 * Writes etcd 3.4's backend database for `view` and `cluster` as a new bbolt file at
 * `path` (which must not exist): every bucket etcd creates, in bbolt's order, packed as
 * etcd's defrag packs them. Aborting `signal` stops the write with ExportAbortedError;
 * on any failure the partial file is removed. The caller owns (and closes) the view.
 */
export async function writeEtcdBackend(path: string, view: BucketView, cluster: ClusterState, signal?: AbortSignal): Promise<WriteResult> {
  return writeBolt(path, etcdBuckets(view, cluster, signal));
}

/**
 * The layout in which `view` and `cluster` can be sent while they are read (bbolt's
 * stream-layout.ts), or undefined when a record is too large for it: such a store is
 * written to a file first (writeEtcdBackend).
 */
export function etcdStreamLayout(view: BucketView, cluster: ClusterState): StreamLayout | undefined {
  return planStreamLayout(
    ETCD_BUCKETS.map((name) => ({ name: Buffer.from(name), ...sizeOf(name, view, cluster) })),
    DEFAULT_PAGE_SIZE,
  );
}

/**
 * Sends etcd's backend database for `view` and `cluster` to `out` in `layout`, front to
 * back, reading the view as `out` takes the pages. Aborting `signal` stops it with
 * ExportAbortedError. The caller owns (and closes) the view.
 */
export function streamEtcdBackend(layout: StreamLayout, view: BucketView, cluster: ClusterState, out: SequentialOutput, signal?: AbortSignal): Promise<StreamResult> {
  return streamBolt(layout, etcdBuckets(view, cluster, signal), out);
}

async function* etcdBuckets(view: BucketView, cluster: ClusterState, signal: AbortSignal | undefined): AsyncGenerator<BucketSource> {
  for (const name of ETCD_BUCKETS) {
    checkAborted(signal);
    yield { name: Buffer.from(name), entries: abortable(recordsOf(name, view, cluster), signal) };
  }
}

/** A cluster bucket's records, from the membership. */
function clusterRecords(name: ClusterBucket, cluster: ClusterState): BucketRecord[] {
  switch (name) {
    case 'members':
      return cluster.members.map(memberRecord);
    case 'members_removed':
      return cluster.removed.map(removedMemberRecord);
    case 'cluster':
      return cluster.version === undefined ? [] : [clusterVersionRecord(cluster.version)];
  }
}

/** What recordsOf gives for `name`, counted without reading the store. */
function sizeOf(name: EtcdBucket, view: BucketView, cluster: ClusterState): Omit<BucketSize, 'name'> {
  if (isClusterBucket(name)) return recordsSize(clusterRecords(name, cluster));
  if (name === 'auth') {
    // and the revision withRecord may add
    const s = view.size('auth');
    const added = AUTH_REVISION_KEY.length + AUTH_REVISION_AT_START.length;
    return { records: s.records + 1, dataBytes: s.dataBytes + added, maxPairBytes: Math.max(s.maxPairBytes, added), maxKeyBytes: Math.max(s.maxKeyBytes, AUTH_REVISION_KEY.length) };
  }
  return view.size(STORE_BUCKETS[name]);
}

function recordsSize(records: readonly BucketRecord[]): Omit<BucketSize, 'name'> {
  const sizes = records.map(([k, v]) => k.length + v.length);
  return { records: records.length, dataBytes: sizes.reduce((a, b) => a + b, 0), maxPairBytes: Math.max(0, ...sizes), maxKeyBytes: Math.max(0, ...records.map(([k]) => k.length)) };
}

type Batch = readonly Entry[];

function recordsOf(name: EtcdBucket, view: BucketView, cluster: ClusterState): AsyncIterable<Batch> {
  if (isClusterBucket(name)) return sorted(clusterRecords(name, cluster));
  // etcd's auth store records revision 1 when it first opens a backend; etcd-ts's
  // records its revision at the first change, so a store never changed has none
  if (name === 'auth') return withRecord(view.bucket('auth'), AUTH_REVISION_KEY, AUTH_REVISION_AT_START);
  // the revision records with their keys as hex strings: no Buffer a key
  if (name === 'key') return view.revisionRecords();
  return view.bucket(STORE_BUCKETS[name]);
}

/** `batches` with [key, value] in its place unless they have `key`. */
async function* withRecord(batches: AsyncIterable<Batch>, key: Buffer, value: Buffer): AsyncGenerator<Batch> {
  let pending = true;
  for await (const batch of batches) {
    const at = pending ? batch.findIndex(([k]) => Buffer.compare(k as Buffer, key) >= 0) : -1;
    if (at < 0) {
      yield batch;
      continue;
    }
    pending = false;
    yield (batch[at]![0] as Buffer).equals(key) ? batch : [...batch.slice(0, at), [key, value], ...batch.slice(at)];
  }
  if (pending) yield [[key, value]];
}

/** Records in bbolt's key order (member IDs are unpadded hex, so numeric order is not it), as one batch. */
async function* sorted(records: BucketRecord[]): AsyncGenerator<Batch> {
  if (records.length > 0) yield records.sort(([a], [b]) => Buffer.compare(a, b));
}

/**
 * Checks `signal` before each batch (a stop costs at most one batch's work) and lets the
 * event loop run between batches: LevelDB reads the next batch while this one is
 * written, so its promise is often settled already and awaiting it alone would run the
 * whole export, seconds of a large store, without serving clients, peers or raft's ticks.
 */
async function* abortable<T>(it: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  for await (const x of it) {
    checkAborted(signal);
    yield x;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ExportAbortedError('the export was aborted');
}
