// Splitting a history into independent parts (P-compositionality): operations
// that touch disjoint sets of keys and leases can be checked separately, which
// is what makes long histories tractable.
//
// Keys are grouped by their first path segment ("g3/k1" belongs to group "g3/").
// An operation's resources are the groups of every key or range it touches and
// every lease it names; the partitions are the connected components of that
// graph. The workload keeps each txn, range and lease inside one group, so the
// components are exactly the groups. A history that mixes groups still checks
// correctly, only slower (its groups merge into one partition). A range that
// leaves its group's prefix touches everything and merges all partitions.
//
// Revisions are global, so the per-partition model only bounds them; the global
// order of revisions is checked separately over the whole history (revisions.ts).

import type { KvRequest, Operation } from './history.js';
import { NO_LEASE } from './model.js';

const EVERYTHING = '*';

/** The group of a key: its prefix up to and including the first '/', or the key itself. */
export function groupOf(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash + 1);
}

/** The smallest key greater than every key with this prefix (etcd's prefix range end). */
export function prefixEnd(prefix: string): string {
  let i = prefix.length - 1;
  while (i >= 0 && prefix.charCodeAt(i) === 0xff) i--;
  if (i < 0) return '\0';
  return prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1);
}

function rangeResource(key: string, end: string): string {
  if (end === '') return groupOf(key);
  const g = groupOf(key);
  if (g.endsWith('/') && key.startsWith(g) && end !== '\0' && end <= prefixEnd(g)) return g;
  return EVERYTHING;
}

export function resourcesOf(input: KvRequest): string[] {
  switch (input.type) {
    case 'range':
    case 'delete':
      return [rangeResource(input.key, input.end)];
    case 'put':
      return input.lease === NO_LEASE ? [groupOf(input.key)] : [groupOf(input.key), 'lease:' + input.lease];
    case 'leaseGrant':
    case 'leaseRevoke':
      return ['lease:' + input.id];
    case 'txn': {
      const r = input.compare.map((c) => groupOf(c.key));
      for (const op of [...input.success, ...input.failure]) {
        if (op.type === 'put') {
          r.push(groupOf(op.key));
          if (op.lease !== NO_LEASE) r.push('lease:' + op.lease);
        } else {
          r.push(rangeResource(op.key, op.end));
        }
      }
      return r;
    }
  }
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    if (!this.parent.has(x)) this.parent.set(x, x);
    let root = x;
    while (this.parent.get(root) !== root) root = this.parent.get(root)!;
    while (x !== root) {
      const next = this.parent.get(x)!;
      this.parent.set(x, root);
      x = next;
    }
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra, rb);
  }
  keys(): string[] {
    return [...this.parent.keys()];
  }
}

export interface Partition {
  /** a readable name: the groups and leases it covers (leases abbreviated) */
  name: string;
  operations: Operation[];
}

export function partitionOperations(ops: readonly Operation[]): Partition[] {
  const uf = new UnionFind();
  const resources = ops.map((op) => resourcesOf(op.input));
  for (const rs of resources) {
    for (const r of rs) uf.find(r);
    for (let i = 1; i < rs.length; i++) uf.union(rs[0]!, rs[i]!);
  }
  if (resources.some((rs) => rs.includes(EVERYTHING))) {
    for (const r of uf.keys()) uf.union(r, EVERYTHING);
  }
  const byRoot = new Map<string, Operation[]>();
  ops.forEach((op, i) => {
    const root = uf.find(resources[i]![0]!);
    let list = byRoot.get(root);
    if (list === undefined) byRoot.set(root, (list = []));
    list.push(op);
  });
  const names = new Map<string, string[]>();
  for (const r of uf.keys()) {
    if (r.startsWith('lease:')) continue;
    const root = uf.find(r);
    let l = names.get(root);
    if (l === undefined) names.set(root, (l = []));
    l.push(r);
  }
  return [...byRoot.entries()]
    .map(([root, operations]) => ({ name: (names.get(root) ?? [root]).sort().join(' '), operations }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
