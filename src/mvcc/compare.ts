// Txn compare evaluation, as etcd's applyCompare/compareKV.

import type { Compare, KeyValue } from './types.js';

const ZERO_KV: KeyValue = {
  key: Buffer.alloc(0),
  createRevision: 0,
  modRevision: 0,
  version: 0,
  value: Buffer.alloc(0),
  lease: 0n,
};

/**
 * `kvs` are the keys the compare's range holds. A missing key compares as all
 * zeroes, except that a VALUE compare on nothing is always false (a missing value
 * cannot be told from an empty one).
 */
export function applyCompare(c: Compare, kvs: KeyValue[]): boolean {
  if (kvs.length === 0) return c.target === 'value' ? false : compareKV(c, ZERO_KV);
  return kvs.every((kv) => compareKV(c, kv));
}

function compareKV(c: Compare, kv: KeyValue): boolean {
  let result: number;
  switch (c.target) {
    case 'value':
      result = Buffer.compare(kv.value, c.value);
      break;
    case 'create':
      result = sign(kv.createRevision - c.value);
      break;
    case 'mod':
      result = sign(kv.modRevision - c.value);
      break;
    case 'version':
      result = sign(kv.version - c.value);
      break;
    case 'lease':
      result = kv.lease === c.value ? 0 : kv.lease < c.value ? -1 : 1;
      break;
  }
  switch (c.result) {
    case 'equal':
      return result === 0;
    case 'not_equal':
      return result !== 0;
    case 'greater':
      return result > 0;
    case 'less':
      return result < 0;
  }
}

function sign(n: number): number {
  return n === 0 ? 0 : n < 0 ? -1 : 1;
}
