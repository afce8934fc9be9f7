// Three-member clusters on loopback, driven by stock etcdctl: bootstrap as the guides do
// it, failover under load, catching up (also through a snapshot), membership changes,
// disaster recovery with --force-new-cluster, and a minority that cannot commit.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { type Member, binary, cleanup, ctl, etcdctl, stopMember, waitFor, startMember, freePort, tempDir, killProcesses } from './harness.js';
import { type ClusterPlan, bulkPut, clientUrl, eventually, leaderIndex, planCluster, snapshotCatchUp, startCluster, startSlot, flagsFor } from './cluster-harness.js';
import path from 'node:path';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/** Fast timeouts keep failover tests short; etcd's rule (election ≥ 5 heartbeats) holds. */
const FAST = ['--heartbeat-interval', '50', '--election-timeout', '500'];

async function hashes(endpoints: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ep of endpoints) out.push((await ctl(ep, ['endpoint', 'hashkv'])).split(', ')[1]!.trim());
  return out;
}

/** Writes unique keys through `endpoints` until stopped; returns what was acknowledged. */
interface WriteLoad {
  /** resolves once at least `n` writes have been acknowledged in all */
  untilAcked(n: number, timeoutMs?: number): Promise<void>;
  readonly ackedCount: number;
  stop(): Promise<Map<string, string>>;
}

function writeLoad(endpoints: string[], workers = 6): WriteLoad {
  const acked = new Map<string, string>();
  const clients = endpoints.map((ep) => new EtcdClient(ep));
  let stopping = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    const client = clients[w % clients.length]!;
    for (let i = 0; !stopping; i++) {
      const key = `load/${w}/${i}`;
      try {
        await client.put(key, `v${i}`);
        acked.set(key, `v${i}`);
      } catch {
        await new Promise((r) => setTimeout(r, 50)); // no leader for a moment: try the next key
      }
    }
  });
  return {
    get ackedCount() {
      return acked.size;
    },
    async untilAcked(n, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (acked.size < n) {
        if (Date.now() > deadline) throw new Error(`only ${acked.size} of ${n} writes acknowledged`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const c of clients) c.close();
      return acked;
    },
  };
}

/** Every acknowledged write of writeLoad is on the member at `endpoint`, with its value (one linearizable read of load/). */
async function assertAllPresent(endpoint: string, acked: Map<string, string>): Promise<void> {
  const client = new EtcdClient(endpoint);
  try {
    const r = await client.call<{ kvs: Array<{ key: Buffer; value: Buffer }> }>(client.kv, 'Range', { key: Buffer.from('load/'), range_end: Buffer.from('load0') });
    const held = new Map(r.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
    expect([...acked].filter(([k, v]) => held.get(k) !== v).map(([k]) => k)).toEqual([]);
  } finally {
    client.close();
  }
}

describe('bootstrap as the guides do it', () => {
  it('three members (one configured only through ETCD_* variables) serve health, members and replicated writes', async () => {
    const plan = await planCluster(3);
    const members = await startCluster(plan, { viaEnv: [2] });
    for (const m of members) {
      const h = await etcdctl(m.clientUrl, ['endpoint', 'health']);
      expect(h.code, h.stderr).toBe(0);
      expect(h.stderr).toContain('is healthy: successfully committed proposal');
      const table = await ctl(m.clientUrl, ['member', 'list', '-w', 'table']);
      for (const s of plan.slots) {
        expect(table).toMatch(new RegExp(`\\| started \\| +${s.name} \\| http://127\\.0\\.0\\.1:${s.peerPort} \\| http://127\\.0\\.0\\.1:${s.clientPort} \\|`));
      }
    }
    expect(await ctl(members[0]!.clientUrl, ['put', 'guide', 'works'])).toBe('OK\n');
    for (const m of members) expect(await ctl(m.clientUrl, ['get', 'guide', '--print-value-only'])).toBe('works\n');
    // etcd's initial tick advance: a member whose peer's stream came up elects two ticks short of its timeout
    for (const m of members) expect(m.output()).toContain('"msg":"starting initial election tick advance"');
    expect(members.some((m) => /"forward-ticks":8,"forward-duration":"800ms","election-ticks":10,"election-timeout":"1s".*"msg":"initialized peer connections; fast-forwarding election ticks"/.test(m.output()))).toBe(true);
    // a write through a follower is forwarded to the leader
    const leader = await leaderIndex(members);
    const follower = members[(leader + 1) % 3]!;
    expect(await ctl(follower.clientUrl, ['put', 'via-follower', 'yes'])).toBe('OK\n');
    expect(await ctl(members[leader]!.clientUrl, ['get', 'via-follower', '--print-value-only'])).toBe('yes\n');
    // leases are renewed by the leader even through a follower
    const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(follower.clientUrl, ['lease', 'grant', '60']))![1]!;
    const renewedAt = Date.now();
    expect(await ctl(follower.clientUrl, ['lease', 'keep-alive', '--once', lease])).toBe(`lease ${lease} keepalived with TTL(60)\n`);
    const ttl = /granted with TTL\(60s\), remaining\((\d+)s\)/.exec(await ctl(follower.clientUrl, ['lease', 'timetolive', lease]));
    // the whole TTL again from the renewal, less the seconds this test saw pass since it asked for it
    expect(Number(ttl?.[1])).toBeLessThanOrEqual(60);
    expect(Number(ttl?.[1])).toBeGreaterThanOrEqual(59 - Math.ceil((Date.now() - renewedAt) / 1000));
    // etcdctl move-leader finds the leader among the endpoints and hands over to the target
    const target = (leader + 2) % 3;
    // IDs in hex from `member list` (JSON would round these 64-bit numbers)
    const idOf = new Map<string, string>();
    for (const line of (await ctl(members[0]!.clientUrl, ['member', 'list'])).trim().split('\n')) {
      const [id, , name] = line.split(', ');
      idOf.set(name!, id!);
    }
    const leaderId = idOf.get(plan.slots[leader]!.name)!;
    const targetId = idOf.get(plan.slots[target]!.name)!;
    const moved = await ctl(members.map((m) => m.clientUrl), ['move-leader', targetId]);
    expect(moved).toBe(`Leadership transferred from ${leaderId} to ${targetId}\n`);
    expect(await leaderIndex(members)).toBe(target);
    // what the peer-traffic panels of etcd's dashboards read: bytes to and from each peer
    await eventually(async () => {
      for (const [i, m] of members.entries()) {
        const text = await fetch(`${m.clientUrl}/metrics`).then((r) => r.text());
        for (const [name, id] of idOf) {
          if (name === plan.slots[i]!.name) continue;
          const sent = new RegExp(`^etcd_network_peer_sent_bytes_total\\{To="${id}"\\} (\\S+)$`, 'm').exec(text);
          const received = new RegExp(`^etcd_network_peer_received_bytes_total\\{From="${id}"\\} (\\S+)$`, 'm').exec(text);
          expect(Number(sent?.[1])).toBeGreaterThan(0);
          expect(Number(received?.[1])).toBeGreaterThan(0);
        }
      }
    }, 10_000);
    await Promise.all(members.map((m) => stopMember(m)));
  });
});

it('--initial-election-tick-advance=false: members wait out a whole election timeout before their first campaign, and still elect', async () => {
  const plan = await planCluster(3, 'notick');
  const members = await startCluster(plan, { args: ['--initial-election-tick-advance=false'] });
  expect(await ctl(members.map((m) => m.clientUrl), ['put', 'elected', 'late'])).toBe('OK\n');
  for (const m of members) {
    expect(m.output()).toContain('"election-ticks":10,"msg":"skipping initial election tick advance"');
    expect(m.output()).not.toContain('fast-forwarding election ticks');
    expect(m.output()).not.toContain('is accepted for compatibility but not implemented');
  }
  await Promise.all(members.map((m) => stopMember(m)));
});

describe('failover', () => {
  for (const victim of ['leader', 'follower'] as const) {
    it(`kill -9 of the ${victim} under a write load loses no acknowledged write; it restarts and catches up`, async () => {
      const plan = await planCluster(3);
      const members = await startCluster(plan, { args: FAST });
      const leader = await leaderIndex(members);
      const killed = victim === 'leader' ? leader : (leader + 1) % 3;
      const survivors = [0, 1, 2].filter((i) => i !== killed);
      const load = writeLoad(survivors.map((i) => members[i]!.clientUrl));
      let acked: Map<string, string>;
      try {
        await load.untilAcked(20);
        members[killed]!.proc.kill('SIGKILL');
        await members[killed]!.exited;
        // the survivors go on acknowledging writes (after an election, if the leader died)
        await load.untilAcked(load.ackedCount + 20);
      } finally {
        // on every way out: writers left running retry on stopped members until the worker runs out of memory
        acked = await load.stop();
      }
      const newLeader = await leaderIndex(survivors.map((i) => members[i]!));
      expect(newLeader).toBeGreaterThanOrEqual(0);
      for (const i of survivors) await assertAllPresent(members[i]!.clientUrl, acked);
      members[killed] = await startSlot(plan, plan.slots[killed]!, { args: FAST });
      await eventually(async () => assertAllPresent(members[killed]!.clientUrl, acked));
      await eventually(async () => {
        const h = await hashes(members.map((m) => m.clientUrl));
        expect(new Set(h).size).toBe(1);
      });
      await Promise.all(members.map((m) => stopMember(m)));
    });
  }

  it('a member that was down while the others moved on catches up through a snapshot', async () => {
    const plan = await planCluster(3);
    const catchUp = snapshotCatchUp();
    const args = [...FAST, '--snapshot-count', '100', ...catchUp.args];
    const members = await startCluster(plan, { args });
    const leader = await leaderIndex(members);
    const down = (leader + 1) % 3;
    await stopMember(members[down]!, 'SIGKILL');
    // more than the entries a leader keeps behind its snapshot for slow followers
    await bulkPut(members[leader]!.clientUrl, catchUp.puts);
    const rev = (JSON.parse(await ctl(members[leader]!.clientUrl, ['get', catchUp.lastKey, '-w', 'json'])) as { header: { revision: number } }).header.revision;
    await ctl(members[leader]!.clientUrl, ['compaction', String(rev)]);
    members[down] = await startSlot(plan, plan.slots[down]!, { args });
    await waitFor(members[down]!, 'installed the store from a leader snapshot', 60_000);
    // the import freed what it read: glibc's free pages go back (src/pkg/native-heap.ts)
    if (binary === 'etcd-ts') await waitFor(members[down]!, '"snapshot-install"', 30_000);
    await eventually(async () => {
      expect(await ctl(members[down]!.clientUrl, ['get', catchUp.lastKey, '--consistency=s', '--print-value-only'])).toBe(`${catchUp.lastValue}\n`);
    });
    await eventually(async () => {
      const h = await hashes(members.map((m) => m.clientUrl));
      expect(new Set(h).size).toBe(1);
    });
    // a member added after the last snapshot was taken catches up through one too: the
    // leader describes its current state, in which the newcomer is a member
    const joiner = await addAndStart(plan, members[leader]!.clientUrl, 'late', false);
    await waitFor(joiner, 'installed the store from a leader snapshot', 60_000);
    await eventually(async () => {
      expect(await ctl(joiner.clientUrl, ['get', catchUp.lastKey, '--consistency=s', '--print-value-only'])).toBe(`${catchUp.lastValue}\n`);
    });
    await Promise.all([...members, joiner].map((m) => stopMember(m)));
    // the puts, a snapshot sent and imported twice: a minute on a quiet machine with etcd's 6000, more on a loaded one
  }, 300_000);

  it('a stopped minority cannot commit; the majority serves; after SIGCONT all converge', async () => {
    const plan = await planCluster(3);
    const members = await startCluster(plan, { args: FAST });
    const leader = await leaderIndex(members);
    // one member paused: the other two are a majority and keep serving
    const paused = (leader + 1) % 3;
    members[paused]!.proc.kill('SIGSTOP');
    expect(await ctl(members[leader]!.clientUrl, ['put', 'majority', 'serves'])).toBe('OK\n');
    // two members paused: the remaining one is a minority and cannot commit
    const other = [0, 1, 2].find((i) => i !== leader && i !== paused)!;
    members[other]!.proc.kill('SIGSTOP');
    const stuck = await etcdctl(members[leader]!.clientUrl, ['put', 'minority', 'fails', '--command-timeout=3s']);
    expect(stuck.code).not.toBe(0);
    members[paused]!.proc.kill('SIGCONT');
    members[other]!.proc.kill('SIGCONT');
    await eventually(async () => {
      expect(await ctl(members[paused]!.clientUrl, ['get', 'majority', '--print-value-only'])).toBe('serves\n');
      const h = await hashes(members.map((m) => m.clientUrl));
      expect(new Set(h).size).toBe(1);
    });
    await Promise.all(members.map((m) => stopMember(m)));
  });
});

describe('membership changes', () => {
  it('adds a fourth member that joins with existing, removes it, then adds and promotes a learner', async () => {
    const plan = await planCluster(3);
    const members = await startCluster(plan, { args: FAST });
    const ep = members[0]!.clientUrl;
    await ctl(ep, ['put', 'before-join', 'x']);
    const joiner = await addAndStart(plan, ep, 'm4', false);
    expect(await ctl(joiner.clientUrl, ['get', 'before-join', '--print-value-only'])).toBe('x\n');
    expect(await ctl(ep, ['member', 'list'])).toMatch(/, started, m4, /);
    const id4 = /([0-9a-f]+), started, m4,/.exec(await ctl(ep, ['member', 'list']))![1]!;
    expect(await ctl(ep, ['member', 'remove', id4])).toMatch(new RegExp(`^Member +${id4} removed from cluster `));
    expect(await joiner.exited).toBe(0); // a removed member shuts itself down, as cleanly as etcd's
    expect(joiner.output()).toContain('removed from the cluster');

    const learner = await addAndStart(plan, ep, 'm5', true);
    const id5 = /([0-9a-f]+), started, m5, .*, true/.exec(await ctl(ep, ['member', 'list']))![1]!;
    await eventually(async () => {
      expect(await ctl(ep, ['member', 'promote', id5])).toMatch(new RegExp(`^Member +${id5} promoted in cluster `));
    });
    expect(await ctl(ep, ['member', 'list'])).toMatch(new RegExp(`${id5}, started, m5, .*, false`));
    expect(await ctl(learner.clientUrl, ['put', 'from-promoted', 'ok'])).toBe('OK\n');
    await Promise.all([...members, learner].map((m) => stopMember(m)));
  });
});

/** `etcdctl member add`, then start the new member with the printed ETCD_* lines. */
async function addAndStart(plan: ClusterPlan, endpoint: string, name: string, learner: boolean): Promise<Member> {
  const peerPort = await freePort();
  const clientPort = await freePort();
  // Under --strict-reconfig-check a voter is added only once every voter has been
  // connected for 5 s (etcd's HealthInterval): right after a start, wait that out, asking
  // once a second (each try is an etcdctl run, a Go process start).
  const out = await eventually(() => ctl(endpoint, ['member', 'add', name, `--peer-urls=http://127.0.0.1:${peerPort}`, ...(learner ? ['--learner'] : [])]), 30_000, 1000);
  const env: Record<string, string> = {};
  for (const [, k, v] of out.matchAll(/^(ETCD_[A-Z_]+)="(.*)"$/gm)) env[k!] = v!;
  expect(env.ETCD_NAME).toBe(name);
  expect(env.ETCD_INITIAL_CLUSTER_STATE).toBe('existing');
  expect(env.ETCD_INITIAL_CLUSTER).toContain(`${name}=http://127.0.0.1:${peerPort}`);
  return startMember({
    name,
    bare: true,
    env,
    args: [
      '--data-dir', path.join(tempDir(), name),
      '--listen-client-urls', `http://127.0.0.1:${clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster-token', plan.token,
      ...FAST,
    ],
    clientPort,
    peerPort,
  });
}

describe('disaster recovery', () => {
  it('--force-new-cluster brings back a cluster that lost two of three members, data intact, then grows back to three', async () => {
    const plan = await planCluster(3);
    const members = await startCluster(plan, { args: FAST });
    const ep = members[0]!.clientUrl;
    for (let i = 0; i < 20; i++) await ctl(ep, ['put', `dr/${i}`, `v${i}`]);
    members[1]!.proc.kill('SIGKILL');
    members[2]!.proc.kill('SIGKILL');
    await Promise.all([members[1]!.exited, members[2]!.exited]);
    await stopMember(members[0]!);
    const s = plan.slots[0]!;
    const survivor = await startMember({
      name: s.name,
      bare: true,
      clientPort: s.clientPort,
      peerPort: s.peerPort,
      args: [...flagsFor(plan, s), '--force-new-cluster', ...FAST],
    });
    const list = await ctl(clientUrl(s), ['member', 'list']);
    expect(list.trim().split('\n')).toHaveLength(1);
    expect(list).toContain(`, started, ${s.name}, `);
    expect(await ctl(clientUrl(s), ['get', 'dr/', '--prefix', '--keys-only'])).toContain('dr/19');
    expect(await ctl(clientUrl(s), ['put', 'after-recovery', 'ok'])).toBe('OK\n');
    const second = await addAndStart(plan, clientUrl(s), 'r2', false);
    const third = await addAndStart(plan, clientUrl(s), 'r3', false);
    expect((await ctl(clientUrl(s), ['member', 'list'])).trim().split('\n')).toHaveLength(3);
    expect(await ctl(third.clientUrl, ['get', 'dr/19', '--print-value-only'])).toBe('v19\n');
    await Promise.all([survivor, second, third].map((m) => stopMember(m)));
  });
});
