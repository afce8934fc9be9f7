// The part of a Range that runs after the keys are read, as etcd's applier does it:
// min/max revision filters, sorting, limit with `more`, and keys_only.

import type { KeyValue, RangeRequest, RangeResponse, SortTarget } from './types.js';

/**
 * How many kvs to read: etcd reads limit+1 to learn `more`, but everything when it
 * must sort or filter (decided on the raw sort order, before NONE becomes ASCEND).
 */
export function readLimit(r: RangeRequest): number {
  const limit = r.limit ?? 0;
  const all =
    (r.sortOrder ?? 'none') !== 'none' ||
    !!r.minModRevision ||
    !!r.maxModRevision ||
    !!r.minCreateRevision ||
    !!r.maxCreateRevision;
  if (all || limit <= 0) return 0;
  return limit + 1;
}

/**
 * Whether a range can be read a slice of keys at a time (MvccStore.rangeInSlices): its
 * answer comes in key order and each key's place in it is known when the key is read,
 * with no sort (by key ascending is key order) and no revision filter, which `limit`
 * would have to count after.
 */
export function isSliceable(r: RangeRequest): boolean {
  const order = r.sortOrder ?? 'none';
  const byKey = (r.sortTarget ?? 'key') === 'key' && (order === 'none' || order === 'ascend');
  return byKey && !r.minModRevision && !r.maxModRevision && !r.minCreateRevision && !r.maxCreateRevision;
}

export function finishRange(r: RangeRequest, kvs: KeyValue[], count: number, revision: number): RangeResponse {
  if (r.maxModRevision) kvs = kvs.filter((kv) => kv.modRevision <= r.maxModRevision!);
  if (r.minModRevision) kvs = kvs.filter((kv) => kv.modRevision >= r.minModRevision!);
  if (r.maxCreateRevision) kvs = kvs.filter((kv) => kv.createRevision <= r.maxCreateRevision!);
  if (r.minCreateRevision) kvs = kvs.filter((kv) => kv.createRevision >= r.minCreateRevision!);

  const target = r.sortTarget ?? 'key';
  let order = r.sortOrder ?? 'none';
  // kvs come in key order; any other target sorts ascending by default
  if (target !== 'key' && order === 'none') order = 'ascend';
  if (order !== 'none') {
    const cmp = comparator(target);
    // stable, like Go's insertion sort for small inputs: ties keep key order either way
    kvs = order === 'ascend' ? kvs.sort(cmp) : kvs.sort((a, b) => cmp(b, a));
  }

  let more = false;
  const limit = r.limit ?? 0;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  return { revision, kvs, more, count };
}

const EMPTY = Buffer.alloc(0);

function comparator(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'key':
      return (a, b) => Buffer.compare(a.key, b.key);
    case 'version':
      return (a, b) => a.version - b.version;
    case 'create':
      return (a, b) => a.createRevision - b.createRevision;
    case 'mod':
      return (a, b) => a.modRevision - b.modRevision;
    case 'value':
      return (a, b) => Buffer.compare(a.value, b.value);
  }
}
