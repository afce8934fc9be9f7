// What the workload asks etcd: a weighted mix of requests over a key space split
// into groups ("g3/k1"). Every txn, range and lease stays inside one group so
// the checker can partition by group (partition.ts). Put values are unique.

import type { KvRequest, Operation, TxnRequestOp } from './history.js';
import { NO_LEASE } from './model.js';
import { prefixEnd } from './partition.js';
import type { Rng } from './rng.js';

export interface KeySpace {
  groups: number;
  keysPerGroup: number;
}

export const keyName = (group: number, key: number): string => `g${group}/k${key}`;
export const groupPrefix = (group: number): string => `g${group}/`;

export const REQUEST_WEIGHTS = {
  get: 15,
  getSerializable: 10,
  list: 8,
  listSerializable: 5,
  put: 20,
  putWithLease: 5,
  delete: 6,
  cas: 10,
  multiTxn: 8,
  leaseGrant: 4,
  leaseRevoke: 4,
} as const;

export type RequestKind = keyof typeof REQUEST_WEIGHTS;

/** Long enough never to expire during a run: expiry would delete keys no request asked to. */
export const LEASE_TTL = 3600;

/** What a client remembers to choose plausible CAS operands and leases. */
export class Knowledge {
  private readonly mod = new Map<string, number>();
  private readonly leases = new Map<number, Set<string>>();

  modRevision(key: string): number | undefined {
    return this.mod.get(key);
  }
  leasesOf(group: number): string[] {
    return [...(this.leases.get(group) ?? [])];
  }

  /** learns from an acknowledged response */
  observe(op: Pick<Operation, 'input' | 'output'>): void {
    const { input, output } = op;
    if (output === null) return;
    switch (output.type) {
      case 'range':
        if (input.type === 'range' && input.end === '' && output.kvs.length === 0) this.mod.set(input.key, 0);
        for (const kv of output.kvs) this.mod.set(kv.key, kv.modRevision);
        break;
      case 'put':
        if (input.type === 'put') this.mod.set(input.key, output.revision);
        break;
      case 'delete':
        if (input.type === 'delete' && input.end === '') this.mod.set(input.key, 0);
        break;
      case 'txn':
        if (input.type === 'txn' && output.succeeded) {
          for (const o of input.success) if (o.type === 'put') this.mod.set(o.key, output.revision);
        }
        break;
      case 'leaseGrant':
        if (input.type === 'leaseGrant') this.setOf(groupOfLease(input.id)).add(input.id);
        break;
      case 'leaseRevoke':
        if (input.type === 'leaseRevoke') this.setOf(groupOfLease(input.id)).delete(input.id);
        break;
    }
  }

  private setOf(group: number): Set<string> {
    let s = this.leases.get(group);
    if (s === undefined) this.leases.set(group, (s = new Set()));
    return s;
  }
}

/** Lease IDs carry their group (bits 32..47) so each lease stays in one partition. */
export function leaseId(group: number, client: number, counter: number): string {
  return ((BigInt(group + 1) << 32n) | (BigInt(client & 0xfff) << 20n) | BigInt(counter & 0xfffff)).toString();
}

export function groupOfLease(id: string): number {
  return Number((BigInt(id) >> 32n) & 0xffffn) - 1;
}

export class RequestGenerator {
  private counter = 0;
  private leaseCounter = 0;

  constructor(
    private readonly rng: Rng,
    private readonly space: KeySpace,
    private readonly client: number,
    private readonly weights: Readonly<Record<RequestKind, number>> = REQUEST_WEIGHTS,
  ) {
    if (space.keysPerGroup < 3) throw new Error('RequestGenerator: keysPerGroup must be at least 3 (multi-op txns use 3 keys)');
  }

  private value(): string {
    return `c${this.client}v${++this.counter}`;
  }

  next(known: Knowledge): KvRequest {
    const g = this.rng.int(0, this.space.groups - 1);
    const keys = Array.from({ length: this.space.keysPerGroup }, (_, i) => keyName(g, i));
    const key = this.rng.pick(keys);
    const kind = this.rng.weighted(this.weights);
    switch (kind) {
      case 'get':
      case 'getSerializable':
        return { type: 'range', key, end: '', serializable: kind === 'getSerializable' };
      case 'list':
      case 'listSerializable':
        return { type: 'range', key: groupPrefix(g), end: prefixEnd(groupPrefix(g)), serializable: kind === 'listSerializable' };
      case 'put':
        return { type: 'put', key, value: this.value(), lease: NO_LEASE };
      case 'putWithLease': {
        const leases = known.leasesOf(g);
        return { type: 'put', key, value: this.value(), lease: leases.length > 0 ? this.rng.pick(leases) : NO_LEASE };
      }
      case 'delete':
        return { type: 'delete', key, end: '' };
      case 'cas':
        // kube-apiserver's update: put if the mod revision is still the one last seen
        return {
          type: 'txn',
          compare: [{ key, target: 'MOD', result: 'EQUAL', operand: known.modRevision(key) ?? 0 }],
          success: [{ type: 'put', key, value: this.value(), lease: NO_LEASE }],
          failure: [{ type: 'range', key, end: '' }],
        };
      case 'multiTxn': {
        const [a, b, c] = this.rng.shuffle([...keys]) as [string, string, string];
        const success: TxnRequestOp[] = [
          { type: 'put', key: a, value: this.value(), lease: NO_LEASE },
          this.rng.chance(0.5) ? { type: 'delete', key: b, end: '' } : { type: 'put', key: b, value: this.value(), lease: NO_LEASE },
          { type: 'range', key: c, end: '' },
        ];
        return {
          type: 'txn',
          compare: [{ key: c, target: 'VERSION', result: this.rng.pick(['GREATER', 'EQUAL'] as const), operand: 0 }],
          success,
          failure: [{ type: 'range', key: groupPrefix(g), end: prefixEnd(groupPrefix(g)) }],
        };
      }
      case 'leaseGrant':
        return { type: 'leaseGrant', id: leaseId(g, this.client, ++this.leaseCounter), ttl: LEASE_TTL };
      case 'leaseRevoke': {
        const leases = known.leasesOf(g);
        if (leases.length === 0) return { type: 'leaseGrant', id: leaseId(g, this.client, ++this.leaseCounter), ttl: LEASE_TTL };
        return { type: 'leaseRevoke', id: this.rng.pick(leases) };
      }
    }
  }
}
