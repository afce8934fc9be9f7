// Shared test scaffolding: a store in a scratch directory and an applier that
// hands out raft indexes the way the server does.

import { mkdtempSync, rmSync } from 'node:fs';
import { type BucketName, type BucketRecords, MvccStore, type MvccStoreOptions, buildStore } from '../../src/mvcc/index.js';
import type {
  DeleteRangeRequest,
  KeyValue,
  PutRequest,
  RangeRequest,
  TxnRequest,
} from '../../src/mvcc/index.js';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

export function scratchDir(): string {
  return mkdtempSync('/tmp/mvcc-test-');
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

const BUCKETS: BucketName[] = ['alarm', 'auth', 'authRoles', 'authUsers', 'key', 'lease', 'meta'];

/** Every record of `store`, bucket by bucket, as an import of etcd's bbolt file streams them. */
export async function* recordsOf(store: MvccStore): AsyncGenerator<BucketRecords> {
  const view = store.bucketView();
  try {
    for (const bucket of BUCKETS) for await (const entries of view.bucket(bucket)) yield { bucket, entries };
  } finally {
    await view.close();
  }
}

/**
 * A copy of `store` in a new scratch directory, built the way a member installs a
 * leader's snapshot; open it with the state the build returns.
 */
export async function copyStore(store: MvccStore): Promise<{ dir: string; restored: Awaited<ReturnType<typeof buildStore>> }> {
  const dir = scratchDir();
  removeDir(dir);
  return { dir, restored: await buildStore(dir, recordsOf(store)) };
}

/** A store plus the next raft index, applying every call as one committed entry. */
export class Harness {
  index = 0;
  private constructor(
    public store: MvccStore,
    readonly dir: string,
    private readonly opts: Omit<MvccStoreOptions, 'dir'>,
  ) {}

  static async open(opts: Omit<MvccStoreOptions, 'dir'> = {}): Promise<Harness> {
    const dir = scratchDir();
    return new Harness(await MvccStore.open({ dir, ...opts }), dir, opts);
  }

  async reopen(): Promise<void> {
    await this.store.close();
    this.store = await MvccStore.open({ dir: this.dir, ...this.opts });
    this.index = this.store.consistentIndex;
  }

  /** commit and wait until the batch is in LevelDB and watchers were told */
  async commit(): Promise<void> {
    await this.store.commit();
    await this.store.flushed();
  }

  async put(key: string, value = 'v', extra: Partial<PutRequest> = {}) {
    return this.store.put({ key: b(key), value: b(value), lease: 0n, ...extra }, ++this.index).finally(() => this.commit());
  }

  async del(key: string, rangeEnd?: string, extra: Partial<DeleteRangeRequest> = {}) {
    return this.store.deleteRange(
      { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), ...extra },
      ++this.index,
    ).finally(() => this.commit());
  }

  async txn(req: TxnRequest) {
    return this.store.txn(req, ++this.index).finally(() => this.commit());
  }

  async compact(rev: number) {
    const { done } = await this.store.compact(rev, ++this.index).finally(() => this.commit());
    await done;
  }

  range(key: string, rangeEnd?: string, extra: Partial<RangeRequest> = {}) {
    return this.store.range({ key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), ...extra });
  }

  async close(): Promise<void> {
    await this.store.close();
    removeDir(this.dir);
  }
}

/** A KeyValue as plain comparable data. */
export function kvData(kv: KeyValue) {
  return {
    key: kv.key.toString('latin1'),
    create: kv.createRevision,
    mod: kv.modRevision,
    ver: kv.version,
    value: kv.value.toString('latin1'),
    lease: kv.lease,
  };
}
