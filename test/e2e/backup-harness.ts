// Backups and restores as an operator runs them with stock etcdctl, and what a member
// serves of the data, to compare a restored member with the one the backup came from.

import { expect } from 'vitest';
import type { ClusterPlan } from './cluster-harness.js';
import { ctl, etcdctl } from './harness.js';

/** `etcdctl snapshot restore` for one member of `plan`, as the disaster-recovery guide runs it. */
export async function restoreMember(file: string, plan: ClusterPlan, i: number): Promise<void> {
  const s = plan.slots[i]!;
  const r = await etcdctl('127.0.0.1:1', [
    'snapshot', 'restore', file,
    '--name', s.name,
    '--data-dir', s.dataDir,
    '--initial-cluster', plan.initialCluster,
    '--initial-cluster-token', plan.token,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peerPort}`,
  ]);
  expect(r.code, r.stderr).toBe(0);
}

export interface Served {
  hashkv: { hash: number; compact_revision: number; revision: number };
  kvs: unknown[];
  leases: string[];
  grantedTtl: string[];
  users: string;
  roles: string;
  /** `role get` of every role */
  grants: string[];
}

/**
 * What a member serves of its data (leases' remaining TTLs tick, so only their grants);
 * `auth` are etcdctl's credential flags when auth is on.
 */
export async function served(ep: string, auth: string[] = []): Promise<Served> {
  const run = (args: string[]) => ctl(ep, [...auth, ...args]);
  const h = (JSON.parse(await run(['endpoint', 'hashkv', '-w', 'json'])) as Array<{ HashKV: { header: { revision: number }; hash: number; compact_revision: number } }>)[0]!.HashKV;
  const kvs = (JSON.parse(await run(['get', '', '--prefix', '-w', 'json'])) as { kvs: unknown[] }).kvs;
  const leases = (await run(['lease', 'list'])).split('\n').slice(1).filter((l) => l !== '').sort();
  const grantedTtl: string[] = [];
  for (const l of leases) {
    const ttl = await run(['lease', 'timetolive', l, '--keys']);
    const m = /granted with TTL\((\d+)s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)/.exec(ttl)!;
    expect(Number(m[2])).toBeGreaterThan(0);
    // etcd lists a lease's keys in Go map order, which varies from call to call
    grantedTtl.push(`${l} ${m[1]} [${m[3]!.split(' ').sort().join(' ')}]`);
  }
  const roles = await run(['role', 'list']);
  const grants: string[] = [];
  for (const r of roles.split('\n').filter((l) => l !== '')) grants.push(await run(['role', 'get', r]));
  return {
    hashkv: { hash: h.hash, compact_revision: h.compact_revision, revision: h.header.revision },
    kvs,
    leases,
    grantedTtl,
    users: await run(['user', 'list']),
    roles,
    grants,
  };
}
