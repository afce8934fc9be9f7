// etcd 3.4's corruption check (--experimental-initial-corrupt-check,
// --experimental-corrupt-check-time) run by etcd-ts members, side by side with real etcd
// 3.4.23 doing the same: three-member clusters on loopback where one stopped member's
// store is changed on disk (a value's bytes rewritten in its LevelDB, or in etcd's bbolt
// file), then started again. With the initial check it refuses to start; with the periodic
// check the leader raises the CORRUPT alarm, after which no member applies a write. Then
// mixed clusters: an etcd-ts leader checks real etcd members without false alarms and
// finds the one whose bbolt file was changed, and a real etcd leader finds a changed
// etcd-ts member.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type ClusterPlan, eventually, flagsFor, leaderIndex, planCluster } from './cluster-harness.js';
import { type Member, cleanup, ctl, etcdctl, killProcesses, startMember, stopMember } from './harness.js';

afterAll(cleanup);
// each case starts its own cluster: none outlives its case (the periodic checks' clusters
// would go on hashing every second through the cases after them)
afterEach(killProcesses);

type Kind = 'etcd' | 'etcd-ts';

const GOOD = Buffer.from('good-value');
const EVIL = Buffer.from('evil-value');

interface Running {
  member: Member;
  kind: Kind;
  slot: ClusterPlan['slots'][number];
  args: string[];
}

function run(r: Omit<Running, 'member'>, extra: string[] = [], waitReady = true): Promise<Member> {
  const s = r.slot;
  return startMember({
    name: s.name, dataDir: s.dataDir, clientPort: s.clientPort, peerPort: s.peerPort, bare: true,
    args: [...r.args, ...extra], binary: r.kind, waitReady,
  });
}

async function startCluster(prefix: string, kinds: Kind[], extra: (i: number) => string[] = () => []): Promise<Running[]> {
  const plan = await planCluster(kinds.length, prefix);
  return Promise.all(
    kinds.map(async (kind, i) => {
      const slot = plan.slots[i]!;
      const r = { kind, slot, args: [...flagsFor(plan, slot, 'new'), ...extra(i)] };
      return { ...r, member: await run(r) };
    }),
  );
}

/** Rewrites GOOD into EVIL in every stored revision of a stopped member; returns how many records changed. */
async function corruptStore(r: Running): Promise<number> {
  if (r.kind === 'etcd') {
    // bbolt keeps no checksum of its pages: the value's bytes are changed in place
    const file = path.join(r.slot.dataDir, 'member/snap/db');
    const db = readFileSync(file);
    let n = 0;
    for (let at = db.indexOf(GOOD); at !== -1; at = db.indexOf(GOOD, at + 1), n++) EVIL.copy(db, at);
    writeFileSync(file, db);
    return n;
  }
  // etcd-ts's LevelDB, opened directly: the `key` bucket's record (prefix 'k') rewritten
  const db = new ClassicLevel<Buffer, Buffer>(path.join(r.slot.dataDir, 'member/leveldb'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  let n = 0;
  try {
    for await (const [k, v] of db.iterator({ gte: Buffer.from('k'), lt: Buffer.from('l') })) {
      const at = v.indexOf(GOOD);
      if (at === -1) continue;
      const changed = Buffer.from(v);
      EVIL.copy(changed, at);
      await db.put(k, changed);
      n++;
    }
  } finally {
    await db.close();
  }
  return n;
}

async function leaderOf(rs: readonly Running[]): Promise<Running> {
  return rs[await leaderIndex(rs.map((r) => r.member))]!;
}

async function memberId(r: Running): Promise<string> {
  return (await ctl(r.member.clientUrl, ['endpoint', 'status'])).split(', ')[1]!;
}

/** Moves leadership to `to` (etcdctl move-leader through the current leader) until it leads. */
async function leadBy(rs: readonly Running[], to: Running): Promise<void> {
  await eventually(async () => {
    const leader = await leaderOf(rs);
    if (leader === to) return;
    await etcdctl(leader.member.clientUrl, ['move-leader', await memberId(to)]);
    throw new Error(`${to.slot.name} does not lead yet`);
  }, 60_000, 1000);
}

async function hashes(rs: readonly Running[]): Promise<Set<string>> {
  return new Set(await Promise.all(rs.map(async (r) => (await ctl(r.member.clientUrl, ['endpoint', 'hashkv'])).split(', ')[1]!.trim())));
}

/** Writes the value that will be corrupted and some around it, then waits until every member has them. */
async function writeAndConverge(rs: readonly Running[]): Promise<void> {
  for (let i = 0; i < 12; i++) await ctl(rs[i % rs.length]!.member.clientUrl, ['put', `k${i}`, `v${i}`]);
  await ctl(rs[0]!.member.clientUrl, ['put', 'victim', GOOD.toString()]);
  await eventually(async () => expect((await hashes(rs)).size).toBe(1), 30_000, 300);
}

/** Stops a follower, changes its store on disk, starts it again with `extra` flags. */
async function corruptFollower(rs: Running[], extra: string[], waitReady: boolean, of: Kind = rs[0]!.kind): Promise<Running> {
  const leader = await leaderOf(rs);
  const victim = rs.find((r) => r !== leader && r.kind === of)!;
  await stopMember(victim.member);
  expect(await corruptStore(victim)).toBeGreaterThan(0);
  victim.member = await run(victim, extra, waitReady);
  return victim;
}

/** The CORRUPT alarm as `etcdctl alarm list` shows it: etcd 3.4 raises it for member 0, which the text format leaves out. */
const CORRUPT_ALARM = 'alarm:CORRUPT \n';

/** Once CORRUPT is raised every member refuses writes (etcd's applierV3Corrupt) and still serves reads. */
async function expectCorruptCluster(rs: readonly Running[]): Promise<void> {
  for (const r of rs) {
    await eventually(async () => expect(await ctl(r.member.clientUrl, ['alarm', 'list'])).toBe(CORRUPT_ALARM), 60_000, 500);
  }
  for (const r of rs) {
    const put = await etcdctl(r.member.clientUrl, ['put', 'after', 'x']);
    expect(put.code, `${r.kind} ${r.slot.name}`).not.toBe(0);
    expect(put.stderr).toMatch(/etcdserver: corrupt cluster/);
    expect((await etcdctl(r.member.clientUrl, ['lease', 'grant', '10'])).stderr).toMatch(/etcdserver: corrupt cluster/);
    expect(await ctl(r.member.clientUrl, ['get', 'k1', '--print-value-only'])).toBe('v1\n');
  }
}

/**
 * A restarting member knows the cluster's members before its raft log is replayed only
 * from its newest snapshot (etcd 3.4 recovers them from the v2 store in the .snap file, and
 * etcd-ts from the same): without one, the initial check finds no peer to ask and passes.
 * Snapshots every 5 entries make sure the writes below leave one.
 */
const SNAPSHOT_OFTEN = ['--snapshot-count', '5'];

/** What a member of each kind logs when its initial check refuses the start (etcd's default logger, capnslog). */
const INCONSISTENT = /found data inconsistency with peers/;
const INITIAL_PASSED: Record<Kind, RegExp> = {
  'etcd-ts': /initial corruption checking passed; no corruption/,
  etcd: /succeeded on initial corruption checking: no corruption/,
};

describe.each(['etcd', 'etcd-ts'] as const)('the corruption check in a cluster of %s members', (kind) => {
  it('with --experimental-initial-corrupt-check a member whose store was changed on disk refuses to start; an intact one starts', async () => {
    const rs = await startCluster(`ic${kind === 'etcd' ? 'e' : 't'}`, [kind, kind, kind], () => SNAPSHOT_OFTEN);
    await writeAndConverge(rs);
    const leader = await leaderOf(rs);
    const intact = rs.find((r) => r !== leader)!;
    await stopMember(intact.member);
    intact.member = await run(intact, ['--experimental-initial-corrupt-check']);
    expect(intact.member.output()).toMatch(INITIAL_PASSED[kind]);

    const victim = await corruptFollower(rs, ['--experimental-initial-corrupt-check'], false);
    expect(await victim.member.exited).toBe(1);
    expect(victim.member.output()).toMatch(INCONSISTENT);
    expect(victim.member.output()).not.toMatch(/ready to serve client requests/);
    // the others go on serving
    expect(await ctl(leader.member.clientUrl, ['put', 'still', 'works'])).toBe('OK\n');
  }, 300_000);

  it('with --experimental-corrupt-check-time the leader raises CORRUPT once a follower was changed on disk, and writes stop everywhere', async () => {
    const rs = await startCluster(`pc${kind === 'etcd' ? 'e' : 't'}`, [kind, kind, kind], () => ['--experimental-corrupt-check-time', '1s']);
    await writeAndConverge(rs);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await ctl(rs[0]!.member.clientUrl, ['alarm', 'list']), 'no alarm while the stores agree').toBe('');
    await corruptFollower(rs, [], true);
    await expectCorruptCluster(rs);
  }, 300_000);
});

describe('the corruption check in a mixed cluster', () => {
  it('an etcd-ts leader checks two real etcd members without a false alarm, then finds the one whose bbolt file was changed', async () => {
    const periodic = (i: number): string[] => (i === 0 ? ['--experimental-corrupt-check-time', '1s', ...SNAPSHOT_OFTEN] : []);
    const rs = await startCluster('mt', ['etcd-ts', 'etcd', 'etcd'], periodic);
    const ts = rs[0]!;
    await leadBy(rs, ts);
    await writeAndConverge(rs);
    await ctl(ts.member.clientUrl, ['compact', '5']);
    await eventually(async () => expect((await hashes(rs)).size).toBe(1), 30_000, 300);

    const from = ts.member.output().length;
    const since = (): string => ts.member.output().slice(from);
    await eventually(async () => expect(since().match(/"number-of-peers-checked":2,"msg":"finished peer corruption check"/g)?.length ?? 0).toBeGreaterThan(2), 30_000, 200);
    expect(since()).not.toMatch(/failed hash kv request|must be less than or equal|hashes must match|found hash mismatch/);
    expect(await ctl(ts.member.clientUrl, ['alarm', 'list'])).toBe('');

    // the etcd-ts member restarting with the initial check compares itself with both etcd members
    await stopMember(ts.member);
    ts.member = await run(ts, ['--experimental-initial-corrupt-check']);
    expect(ts.member.output()).toMatch(INITIAL_PASSED['etcd-ts']);
    expect(ts.member.output()).not.toMatch(/failed hash kv request|cannot fetch hash|found different/);

    await leadBy(rs, ts);
    await corruptFollower(rs, [], true, 'etcd');
    // etcd 3.4 has no pre-vote: the restarted member campaigns when the leader's first
    // heartbeat comes late, and may take the lead (CI saw it once); only etcd-ts checks here
    await leadBy(rs, ts);
    await eventually(() => expect(ts.member.output()).toMatch(/"msg":"same compact revision then hashes must match"/), 60_000, 300);
    await expectCorruptCluster(rs);
  }, 300_000);

  it('a real etcd leader finds an etcd-ts member whose LevelDB store was changed', async () => {
    const periodic = (i: number): string[] => (i === 0 ? ['--experimental-corrupt-check-time', '1s'] : []);
    const rs = await startCluster('me', ['etcd', 'etcd', 'etcd-ts'], periodic);
    const etcd = rs[0]!;
    await leadBy(rs, etcd);
    await writeAndConverge(rs);
    await corruptFollower(rs, [], true, 'etcd-ts');
    // etcd's capnslog line for a follower's hash that differs at the leader's compact revision
    await eventually(() => expect(etcd.member.output()).toMatch(/hash \d+ at revision \d+ from member [0-9a-f]+, expected hash \d+/), 60_000, 300);
    await expectCorruptCluster(rs);
  }, 300_000);
});
