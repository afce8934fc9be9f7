// The client side of a whole-member simulation: real requests (puts, deletes, txns,
// compactions, lease grants and revokes) in InternalRaftRequest's shape, drawn from the
// seed, and the puts whose results came back, which no crash may lose.

import type { MvccStore } from '../../mvcc/index.js';
import { int64 } from '../../server/pb.js';
import type { Rng } from '../../pkg/rng.js';

const KEYS = 8;
const LEASES = 3;

/** A put the proposer was answered for: its key holds its value at its revision for good. */
interface AckedPut {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly revision: number;
}

export class Workload {
  private readonly acked: AckedPut[] = [];
  private highestRevision = 1;
  private seq = 0;

  constructor(private readonly rng: Rng) {}

  /** The next request, and what to remember of its result. */
  next(): { req: Record<string, unknown>; onResult: (result: unknown) => void } {
    const r = this.rng;
    const key = Buffer.from(`k${r.int(KEYS)}`);
    const value = Buffer.from(`v${this.seq++}`);
    const roll = r.int(100);
    if (roll < 55) {
      const lease = r.chance(0.2) ? BigInt(1 + r.int(LEASES)) : 0n;
      return { req: { put: { key, value, lease: int64(lease) } }, onResult: (res) => this.ackPut(key, value, res) };
    }
    if (roll < 65) return { req: { delete_range: { key, range_end: r.chance(0.3) ? Buffer.from('l') : Buffer.alloc(0) } }, onResult: (res) => this.seen(res) };
    if (roll < 82) {
      // put if the key is at the version we guess, else delete another key
      const other = Buffer.from(`k${r.int(KEYS)}`);
      const txn = {
        compare: [{ result: 0, target: 0, key, version: int64(BigInt(r.int(3))), range_end: Buffer.alloc(0) }],
        success: [{ request_put: { key, value, lease: int64(0n) } }],
        failure: [{ request_delete_range: { key: other, range_end: Buffer.alloc(0) } }],
      };
      return {
        req: { txn },
        onResult: (res) => {
          const t = res as { succeeded: boolean; revision: number };
          if (t.succeeded) this.ackPut(key, value, t);
          else this.seen(t);
        },
      };
    }
    if (roll < 88) {
      const rev = Math.max(1, this.highestRevision - r.int(20));
      return { req: { compaction: { revision: int64(BigInt(rev)) } }, onResult: () => undefined };
    }
    const lease = BigInt(1 + r.int(LEASES));
    if (roll < 94) return { req: { lease_grant: { ID: int64(lease), TTL: int64(3600n) } }, onResult: () => undefined };
    return { req: { lease_revoke: { ID: int64(lease) } }, onResult: (res) => this.seen(res) };
  }

  get acknowledged(): number {
    return this.acked.length;
  }

  private ackPut(key: Buffer, value: Buffer, res: unknown): void {
    const { revision } = res as { revision: number };
    this.acked.push({ key, value, revision });
    this.seen(res);
  }

  private seen(res: unknown): void {
    const revision = (res as { revision?: number } | undefined)?.revision;
    if (revision !== undefined && revision > this.highestRevision) this.highestRevision = revision;
  }

  /** Why `store` lost an acknowledged put, if it did: each is still there at its revision unless compacted away. */
  async lostWrite(store: MvccStore): Promise<string | undefined> {
    for (const a of this.acked) {
      if (a.revision > store.currentRevision) return `the put of ${a.key} at revision ${a.revision} is beyond its revision ${store.currentRevision}`;
      if (a.revision <= store.compactRevision) continue;
      const kv = (await store.range({ key: a.key, revision: a.revision })).kvs[0];
      if (kv?.modRevision !== a.revision || !kv.value.equals(a.value)) {
        return `the put of ${a.key}=${a.value} acknowledged at revision ${a.revision} reads back as ${kv === undefined ? 'nothing' : `${kv.value} (mod revision ${kv.modRevision})`}`;
      }
    }
    return undefined;
  }
}
