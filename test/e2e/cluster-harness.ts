// Multi-member clusters on 127.0.0.1 for end-to-end tests, started the way deployment
// guides start them: the same --initial-cluster on every member.

import path from 'node:path';
import { EtcdClient, withToken } from './client.js';
import { type Member, binary, ctl, freePort, startMember, tempDir } from './harness.js';

export interface Slot {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
}

export interface ClusterPlan {
  slots: Slot[];
  initialCluster: string;
  token: string;
  /** the members' peer URLs: https when the caller adds the --peer-* certificate flags */
  peerScheme: 'http' | 'https';
}

/**
 * How many writes a follower kept down must miss before its leader's raft log no longer
 * holds what it lacks (with `--snapshot-count 100`), so that it catches up through a leader
 * snapshot, the flags that make it so, and the last write's key and value (what the
 * follower must serve once caught up). An etcd-ts leader keeps 100 entries behind each
 * snapshot (`--experimental-snapshot-catchup-entries`, etcd 3.5.13's flag), so a few
 * hundred writes do; etcd 3.4 keeps 5000, built in.
 */
export function snapshotCatchUp(leader: 'etcd' | 'etcd-ts' = binary): { args: string[]; puts: number; lastKey: string; lastValue: string } {
  const { args, puts } = leader === 'etcd-ts' ? { args: ['--experimental-snapshot-catchup-entries', '100'], puts: 400 } : { args: [], puts: 6000 };
  return { args, puts, lastKey: bulkKey(puts - 1), lastValue: bulkValue(puts - 1) };
}

/** The i-th bulk write's key (in order) and value. */
export function bulkKey(i: number): string {
  return `bulk/${String(i).padStart(5, '0')}`;
}
export function bulkValue(i: number): string {
  return `v${i}`;
}

/**
 * Puts `bulkKey(i)` = `bulkValue(i)` for i below `count` through `endpoint`, 32 at a time;
 * as `user`, authenticated once, when auth is on.
 */
export async function bulkPut(endpoint: string, count: number, user?: { name: string; password: string }): Promise<void> {
  const client = new EtcdClient(endpoint);
  try {
    const md = user === undefined ? undefined : withToken(await authenticate(client, user.name, user.password));
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < count; i = next++) await client.call(client.kv, 'Put', { key: Buffer.from(bulkKey(i)), value: Buffer.from(bulkValue(i)) }, md);
      }),
    );
  } finally {
    client.close();
  }
}

async function authenticate(client: EtcdClient, name: string, password: string): Promise<string> {
  const auth = client.authClient();
  try {
    return (await client.call<{ token: string }>(auth, 'Authenticate', { name, password })).token;
  } finally {
    auth.close();
  }
}

export function peerUrl(plan: ClusterPlan, s: Slot): string {
  return `${plan.peerScheme}://127.0.0.1:${s.peerPort}`;
}

export async function planCluster(n: number, prefix = 'm', peerScheme: ClusterPlan['peerScheme'] = 'http'): Promise<ClusterPlan> {
  const base = tempDir('etcd-ts-cluster-');
  const slots: Slot[] = [];
  for (let i = 1; i <= n; i++) {
    slots.push({ name: `${prefix}${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(base, `${prefix}${i}`) });
  }
  const plan = { slots, initialCluster: '', token: `tok-${path.basename(base)}`, peerScheme };
  plan.initialCluster = slots.map((s) => `${s.name}=${peerUrl(plan, s)}`).join(',');
  return plan;
}

export function flagsFor(plan: ClusterPlan, s: Slot, state: 'new' | 'existing' = 'new', initialCluster = plan.initialCluster): string[] {
  return [
    '--name', s.name,
    '--data-dir', s.dataDir,
    '--listen-client-urls', `http://127.0.0.1:${s.clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${s.clientPort}`,
    '--listen-peer-urls', peerUrl(plan, s),
    '--initial-advertise-peer-urls', peerUrl(plan, s),
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', plan.token,
    '--initial-cluster-state', state,
  ];
}

/** The same configuration as ETCD_* variables, as /etc/etcd/etcd.conf would hold it. */
export function envFor(plan: ClusterPlan, s: Slot, state: 'new' | 'existing' = 'new'): Record<string, string> {
  return {
    ETCD_NAME: s.name,
    ETCD_DATA_DIR: s.dataDir,
    ETCD_LISTEN_CLIENT_URLS: `http://127.0.0.1:${s.clientPort}`,
    ETCD_ADVERTISE_CLIENT_URLS: `http://127.0.0.1:${s.clientPort}`,
    ETCD_LISTEN_PEER_URLS: peerUrl(plan, s),
    ETCD_INITIAL_ADVERTISE_PEER_URLS: peerUrl(plan, s),
    ETCD_INITIAL_CLUSTER: plan.initialCluster,
    ETCD_INITIAL_CLUSTER_TOKEN: plan.token,
    ETCD_INITIAL_CLUSTER_STATE: state,
  };
}

export function clientUrl(s: Slot): string {
  return `http://127.0.0.1:${s.clientPort}`;
}

/** Starts one slot (flags, or ETCD_* variables only when `viaEnv`) and waits until it serves. */
export function startSlot(
  plan: ClusterPlan,
  s: Slot,
  opts: {
    viaEnv?: boolean;
    args?: string[];
    /** variables added to the member's environment */
    env?: Record<string, string>;
    state?: 'new' | 'existing';
    waitReady?: boolean;
    binary?: 'etcd' | 'etcd-ts';
  } = {},
): Promise<Member> {
  const state = opts.state ?? 'new';
  return startMember({
    name: s.name,
    dataDir: s.dataDir,
    clientPort: s.clientPort,
    peerPort: s.peerPort,
    bare: true,
    args: [...(opts.viaEnv ? [] : flagsFor(plan, s, state)), ...(opts.args ?? [])],
    env: { ...(opts.viaEnv ? envFor(plan, s, state) : {}), ...opts.env },
    waitReady: opts.waitReady,
    binary: opts.binary,
  });
}

/** Starts every slot at once (members wait for each other) and resolves when all serve. */
export function startCluster(plan: ClusterPlan, opts: { args?: string[]; viaEnv?: number[]; binary?: 'etcd' | 'etcd-ts' } = {}): Promise<Member[]> {
  return Promise.all(plan.slots.map((s, i) => startSlot(plan, s, { args: opts.args, viaEnv: opts.viaEnv?.includes(i), binary: opts.binary })));
}

interface StatusJson {
  Endpoint: string;
  Status: { header: { member_id: number; revision: number }; leader: number; raftTerm: number };
}

export async function statusOf(endpoint: string): Promise<StatusJson['Status']> {
  return (JSON.parse(await ctl(endpoint, ['endpoint', 'status', '-w', 'json'])) as StatusJson[])[0]!.Status;
}

/**
 * Whether `m` says it is the leader: Maintenance.Status through the JSON gateway (uint64s
 * as strings; a zero leader may be left out). Not `etcdctl endpoint status`: this is polled
 * on every member, and each etcdctl spawn costs ~0.05 CPU s.
 */
async function leads(m: Member): Promise<boolean> {
  try {
    const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
    if (!res.ok) return false;
    const st = (await res.json()) as { header?: { member_id?: string }; leader?: string };
    return st.leader !== undefined && st.leader !== '0' && st.leader === st.header?.member_id;
  } catch {
    return false; // not serving (yet, or any more)
  }
}

/** Index of the member that is leader according to the members (retrying until they agree). */
export async function leaderIndex(members: Member[], timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (m.proc.exitCode !== null || m.proc.signalCode !== null) continue;
      if (await leads(m)) return i;
    }
    if (Date.now() > deadline) throw new Error('no leader elected');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Retries `fn` until it returns without throwing (or the time runs out). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
