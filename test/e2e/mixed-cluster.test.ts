// etcd 3.4.23 and etcd-ts members in one cluster, over etcd's peer protocol (rafthttp) on
// loopback: real etcd processes, stock etcdctl. An etcd cluster gains an etcd-ts member
// the way an operator adds one (`member add`, then `--initial-cluster-state existing`);
// writes through every member are read on every member; `endpoint hashkv` agrees; lease
// keep-alive and time-to-live are forwarded to a leader of the other kind, and the
// followers' peer ports answer the lease paths byte for byte as etcd's do; leadership
// moves both ways; kill -9 of the leader of each kind loses no acknowledged write; an
// etcd-ts member that fell behind installs an etcd leader's snapshot (POST /raft/snapshot:
// etcd's v2 store in the MsgSnap, then its bbolt database), and an etcd member installs
// an etcd-ts leader's. Then the reverse, with peers on mutual TLS (`--peer-client-cert-auth`,
// certificates from openssl): a real etcd member joins an etcd-ts cluster; and the first join
// again over TLS.
// Last, the rolling migration: a live etcd cluster replaced member by member with etcd-ts
// members under a write load from etcd's Go client (goload -acked), and back, losing no
// acknowledged write.

import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FOREVER_TTL } from '../../src/server/lessor.js';
import { int64, toBigInt, type } from '../../src/server/pb.js';
import { type TestPki, makeLeaf, makePki } from '../listener/helpers.js';
import { type ClusterPlan, type Slot, bulkPut, eventually, flagsFor, peerUrl, planCluster, snapshotCatchUp, statusOf } from './cluster-harness.js';
import { seqLoad } from './goload.js';
import { cleanup, ctl, httpRequest, stopMember, waitFor, killProcesses } from './harness.js';
import {
  type Kind,
  type Running,
  LOAD_INTERVAL_MS,
  addMember,
  firstThree,
  leaderOf,
  memberId,
  rollingMigration,
  run,
  start,
} from './rolling-migration.js';

let pki: TestPki | undefined;
afterAll(async () => {
  await cleanup();
  if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
});
// each case starts its own members: none outlives its case
afterEach(killProcesses);


/** The value of one series (name and labels as printed) in a /metrics page; NaN while it is absent. */
function sampleOf(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

async function hashes(rs: readonly Running[]): Promise<string[]> {
  return Promise.all(rs.map(async (r) => (await ctl(r.member.clientUrl, ['endpoint', 'hashkv'])).split(', ')[1]!.trim()));
}

/** Every member reports the same hash of the store (retrying while the last writes apply). */
async function converged(rs: readonly Running[]): Promise<void> {
  await eventually(async () => expect(new Set(await hashes(rs)).size).toBe(1), 60_000, 500);
}



/**
 * Peer TLS flags with a certificate of the member's own (CN = its name, IP SAN 127.0.0.1,
 * server and client use) from one test CA: each side of every peer connection checks the other's.
 */
function peerTls(slot: Slot): string[] {
  pki ??= makePki();
  const name = `peer-${slot.name}`;
  makeLeaf(pki.dir, 'ca', name, `/CN=${slot.name}`);
  return [
    '--peer-cert-file', path.join(pki.dir, `${name}.pem`),
    '--peer-key-file', path.join(pki.dir, `${name}-key.pem`),
    '--peer-trusted-ca-file', pki.ca,
    '--peer-client-cert-auth',
  ];
}

/** Every member's peer URL serves a client with a certificate from the CA, and refuses one without. */
async function expectPeersRequireCerts(plan: ClusterPlan, rs: readonly Running[]): Promise<void> {
  const ca = pki!.ca;
  for (const r of rs) {
    const url = `${peerUrl(plan, r.slot)}/version`;
    const withCert = await httpRequest(url, { tls: { ca, cert: path.join(pki!.dir, 'client.pem'), key: path.join(pki!.dir, 'client-key.pem') } });
    expect(withCert.json, `${r.kind} ${r.slot.name}`).toMatchObject({ etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    await expect(httpRequest(url, { tls: { ca } }), `${r.kind} ${r.slot.name} without a client certificate`).rejects.toThrow();
  }
}


/** Puts one key through every member, then reads every key on every member (one linearizable read of the prefix each). */
async function writeEverywhereReadEverywhere(rs: readonly Running[], tag: string): Promise<void> {
  for (const r of rs) await ctl(r.member.clientUrl, ['put', `${tag}/${r.slot.name}`, `${r.kind} wrote it`]);
  const written = rs.map((w) => [`${tag}/${w.slot.name}`, `${w.kind} wrote it`]).sort(([a], [b]) => (a! < b! ? -1 : 1));
  for (const r of rs) {
    const read = (await ctl(r.member.clientUrl, ['get', `${tag}/`, '--prefix'])).split('\n').slice(0, -1);
    expect(read, `${tag}/ on ${r.slot.name}`).toEqual(written.flat());
  }
}


/**
 * The leader, once it is a member of kind `kind`: leadership is moved to one when another
 * leads. A case that put leadership somewhere (or found it there) cannot count on it
 * staying: at a load average of 30 a member misses heartbeats and an election moves it,
 * and two cases failed on "expected 'etcd' to be 'etcd-ts'".
 */
async function leaderOfKind(rs: readonly Running[], kind: Kind): Promise<Running> {
  return eventually(async () => {
    const leader = await leaderOf(rs);
    if (leader.kind === kind) return leader;
    await ctl(leader.member.clientUrl, ['move-leader', await memberId(rs.find((r) => r.kind === kind)!)]);
    throw new Error(`${leader.kind} ${leader.slot.name} leads; moved leadership to a member of kind ${kind}`);
  }, 60_000, 500);
}

/** A lease granted through `grantVia`, kept alive and asked about through `askVia` (a follower: forwarded to the leader). */
async function leaseThrough(grantVia: Running, askVia: Running): Promise<void> {
  const id = /lease ([0-9a-f]+) granted/.exec(await ctl(grantVia.member.clientUrl, ['lease', 'grant', '60']))![1]!;
  expect(await ctl(askVia.member.clientUrl, ['lease', 'keep-alive', '--once', id])).toMatch(new RegExp(`lease ${id} keepalived with TTL\\(60\\)`));
  await ctl(grantVia.member.clientUrl, ['put', `lease/${id}`, 'x', `--lease=${id}`]);
  const ttl = await ctl(askVia.member.clientUrl, ['lease', 'timetolive', id, '--keys']);
  expect(ttl).toMatch(new RegExp(`lease ${id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[lease/${id}\\]\\)`));
  expect(await ctl(askVia.member.clientUrl, ['lease', 'timetolive', 'abcdef'])).toMatch(/lease 0*abcdef already expired/);
}

const LeaseInternalRequest = type('leasepb.LeaseInternalRequest');
const LeaseInternalResponse = type('leasepb.LeaseInternalResponse');
const LeaseKeepAliveRequest = type('etcdserverpb.LeaseKeepAliveRequest');

/** What a peer port answered, as the forwarding follower sees it. */
interface PeerAnswer {
  status: number;
  contentType: string | null;
  body: Buffer;
}

async function peerPost(plan: ClusterPlan, r: Running, path: string, body: Uint8Array): Promise<PeerAnswer> {
  const res = await fetch(`${peerUrl(plan, r.slot)}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/protobuf' } });
  return { status: res.status, contentType: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

/**
 * The lease paths asked of every follower's peer port, where a follower forwards
 * keep-alive (POST /leases) and time-to-live (POST /leases/internal) when it believes the
 * member leads. etcd's leasehttp answers them from the member's own lessor, which is not
 * primary: time-to-live reports every lease with `FOREVER_TTL` left (etcd's zero expiry,
 * math.MaxInt64 ns, in whole seconds), a keep-alive is refused with "not a primary lessor"
 * before the lease is even looked up, an unknown lease's time-to-live is a 404, a body that
 * does not unmarshal a 400. Followers of both kinds must answer the same status, type and bytes.
 */
async function expectFollowersAnswerAsEtcd(plan: ClusterPlan, rs: readonly Running[]): Promise<void> {
  const leader = await leaderOf(rs);
  const id = /lease ([0-9a-f]+) granted/.exec(await ctl(leader.member.clientUrl, ['lease', 'grant', '60']))![1]!;
  await ctl(leader.member.clientUrl, ['put', `forever/${id}`, 'x', `--lease=${id}`]);
  const timeToLive = (lease: bigint) => LeaseInternalRequest.encode({ LeaseTimeToLiveRequest: { ID: int64(lease), keys: true } }).finish();
  const keepAlive = (lease: bigint) => LeaseKeepAliveRequest.encode({ ID: int64(lease) }).finish();
  const truncated = Uint8Array.of(0x0a, 0xff);
  const asks: Array<{ what: string; path: string; body: Uint8Array }> = [
    { what: 'time-to-live', path: '/leases/internal', body: timeToLive(BigInt(`0x${id}`)) },
    { what: 'time-to-live of an unknown lease', path: '/leases/internal', body: timeToLive(0xabcdefn) },
    { what: 'a truncated time-to-live', path: '/leases/internal', body: truncated },
    { what: 'keep-alive', path: '/leases', body: keepAlive(BigInt(`0x${id}`)) },
    { what: 'keep-alive of an unknown lease', path: '/leases', body: keepAlive(0xabcdefn) },
    { what: 'a truncated keep-alive', path: '/leases', body: truncated },
  ];
  const followers = rs.filter((r) => r !== leader);
  expect(new Set(followers.map((r) => r.kind))).toEqual(new Set(['etcd', 'etcd-ts']));
  for (const ask of asks) {
    const answers = await Promise.all(followers.map(async (r) => ({ r, a: await peerPost(plan, r, ask.path, ask.body) })));
    const etcd = answers.find((x) => x.r.kind === 'etcd')!.a;
    const shown = (x: PeerAnswer) => ({ status: x.status, contentType: x.contentType, body: x.body.toString('hex') });
    for (const { r, a } of answers) expect(shown(a), `${ask.what} on ${r.kind} ${r.slot.name} answers as an etcd follower does`).toEqual(shown(etcd));
    if (ask.what === 'time-to-live') {
      const ttl = (LeaseInternalResponse.decode(etcd.body) as unknown as { LeaseTimeToLiveResponse: { TTL: Parameters<typeof toBigInt>[0]; keys: Uint8Array[] } }).LeaseTimeToLiveResponse;
      expect({ ttl: toBigInt(ttl.TTL), keys: ttl.keys.map((k) => Buffer.from(k).toString()) }).toEqual({ ttl: BigInt(FOREVER_TTL), keys: [`forever/${id}`] });
    }
    if (ask.what === 'keep-alive') expect({ status: etcd.status, body: etcd.body.toString() }).toEqual({ status: 400, body: 'not a primary lessor\n' });
  }
}

async function expectAll(r: Running, keys: readonly string[]): Promise<void> {
  const prefix = keys[0]!.slice(0, keys[0]!.lastIndexOf('/') + 1);
  const got = new Set((await ctl(r.member.clientUrl, ['get', prefix, '--prefix', '--keys-only'])).split('\n').filter((l) => l !== ''));
  expect(keys.filter((k) => !got.has(k)), `acknowledged keys missing on ${r.slot.name}`).toEqual([]);
}


/** kill -9 of the leader under a write load through the others; it restarts and catches up. */
async function killLeader(rs: Running[], kind: Kind): Promise<void> {
  const leader = await leaderOfKind(rs, kind);
  const others = rs.filter((r) => r !== leader);
  const load = seqLoad(others.map((r) => `127.0.0.1:${r.slot.clientPort}`), 1, LOAD_INTERVAL_MS);
  // the leader dies once the load is acknowledged, and the load goes on being acknowledged
  // after (waited for, not slept: at a load average of 30 goload's first acknowledgement
  // took more than the 1.5 s and 3 s this once slept, and the case failed with none)
  await eventually(async () => expect(load.acked().length).toBeGreaterThan(0), 60_000, 100);
  await stopMember(leader.member, 'SIGKILL');
  const atKill = load.acked().length;
  await eventually(async () => expect(load.acked().length).toBeGreaterThan(atKill), 60_000, 100);
  const { acked } = await load.stop();
  const newLeader = await leaderOf(others);
  expect(newLeader).not.toBe(leader);
  leader.member = await run(leader.slot, leader.kind, leader.args);
  await converged(rs);
  for (const r of rs) await expectAll(r, acked);
}



/** What a member of each kind logs once it has installed a leader's snapshot. */
const INSTALLED_SNAPSHOT: Record<Kind, string> = {
  'etcd-ts': 'installed the store from a leader snapshot',
  // etcd 3.4's default logger (capnslog)
  etcd: 'finished applying incoming snapshot',
};

/**
 * Two members of kind `leaders` and one of kind `behind`, snapshots every 100 entries: the
 * third is killed, the others write past what a leader keeps behind its snapshot, and the
 * restarted member must install the leader's snapshot, then serve and agree.
 */
async function catchUpThroughSnapshot(leaders: Kind, behind: Kind, prefix: string): Promise<void> {
  const plan = await planCluster(3, prefix);
  const catchUp = snapshotCatchUp(leaders);
  const kinds: Kind[] = [leaders, leaders, behind];
  const rs = await Promise.all(
    kinds.map(async (kind, i) => {
      const slot = plan.slots[i]!;
      const args = [...flagsFor(plan, slot, 'new'), '--snapshot-count', '100', ...(kind === leaders ? catchUp.args : [])];
      return { member: await run(slot, kind, args), kind, slot, args };
    }),
  );
  const late = rs[2]!;
  await ctl(late.member.clientUrl, ['put', 'before', 'x']);
  await stopMember(late.member, 'SIGKILL');
  // more than the entries a leader keeps behind its snapshot
  const leader = await leaderOf(rs.slice(0, 2));
  await bulkPut(leader.member.clientUrl, catchUp.puts);
  late.member = await run(late.slot, late.kind, late.args);
  await waitFor(late.member, INSTALLED_SNAPSHOT[late.kind], 120_000);
  await converged(rs);
  expect(await ctl(late.member.clientUrl, ['get', catchUp.lastKey, '--print-value-only', '--consistency=s'])).toBe(`${catchUp.lastValue}\n`);
  expect(await ctl(late.member.clientUrl, ['get', 'before', '--print-value-only', '--consistency=s'])).toBe('x\n');
  expect((await ctl(late.member.clientUrl, ['member', 'list'])).trim().split('\n')).toHaveLength(3);
  await writeEverywhereReadEverywhere(rs, 'after-snapshot');
}

describe('a mixed cluster of etcd 3.4.23 and etcd-ts members', () => {
  it('an etcd cluster gains an etcd-ts member: replication, leases and leadership both ways, kill -9 of either leader', async () => {
    const plan = await planCluster(4, 'mx');
    const three = firstThree(plan);
    const rs = await Promise.all([0, 1, 2].map((i) => start(three, i, 'etcd')));
    const ts = await addMember(plan, 3, 'etcd-ts', rs[0]!);
    rs.push(ts);
    await writeEverywhereReadEverywhere(rs, 'joined');
    await converged(rs);
    expect((await ctl(ts.member.clientUrl, ['member', 'list'])).trim().split('\n')).toHaveLength(4);
    // each kind's prober reads the other's /raft/probing: the round trip shows both ways
    const [tsId, etcdId] = [await memberId(ts), await memberId(rs[0]!)];
    const roundTrips = async (from: Running, to: string) =>
      sampleOf(await (await fetch(`${from.member.clientUrl}/metrics`)).text(), `etcd_network_peer_round_trip_time_seconds_count{To="${to}"}`);
    await eventually(async () => {
      expect(await roundTrips(rs[0]!, tsId)).toBeGreaterThanOrEqual(1);
      expect(await roundTrips(ts, etcdId)).toBeGreaterThanOrEqual(1);
    });

    // etcd leads: the etcd-ts follower forwards keep-alive and time-to-live to it
    await leaderOfKind(rs, 'etcd');
    await leaseThrough(ts, ts);
    await expectFollowersAnswerAsEtcd(plan, rs);

    // leadership moves to the etcd-ts member; etcd followers forward to it
    const leader = await leaderOf(rs);
    await ctl(leader.member.clientUrl, ['move-leader', await memberId(ts)]);
    await eventually(async () => expect(await leaderOf(rs)).toBe(ts));
    await writeEverywhereReadEverywhere(rs, 'ts-leads');
    await leaseThrough(rs[0]!, rs[1]!);
    await converged(rs);

    await killLeader(rs, 'etcd-ts');
    await killLeader(rs, 'etcd');
    await writeEverywhereReadEverywhere(rs, 'after');
    await converged(rs);
  }, 600_000);

  it("an etcd-ts member that fell behind catches up through an etcd leader's snapshot (etcd's v2 store and bbolt database)", async () => {
    await catchUpThroughSnapshot('etcd', 'etcd-ts', 'sn');
  }, 600_000);

  it("an etcd member that fell behind catches up through an etcd-ts leader's snapshot", async () => {
    await catchUpThroughSnapshot('etcd-ts', 'etcd', 'rs');
  }, 600_000);

  it("etcd's corruption check covers etcd-ts members: GET /members/hashkv answers as etcd's does, periodic and initial checks pass", async () => {
    const plan = await planCluster(3, 'hk');
    const periodic = (): string[] => ['--experimental-corrupt-check-time', '1s'];
    const rs = await Promise.all([start(plan, 0, 'etcd', periodic), start(plan, 1, 'etcd-ts'), start(plan, 2, 'etcd-ts')]);
    const [etcd, ts] = [rs[0]!, rs[1]!];
    await writeEverywhereReadEverywhere(rs, 'hk');
    await ctl(etcd.member.clientUrl, ['compact', '2']);
    await converged(rs);

    // the same requests to an etcd and an etcd-ts member get the same answers
    const ask = async (r: Running, body: string): Promise<{ status: number; text: string }> => {
      // a GET's body needs its length spelled out (Node does not chunk a GET)
      const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) };
      const a = await httpRequest(`${peerUrl(plan, r.slot)}/members/hashkv`, { body, headers });
      return { status: a.status, text: a.text };
    };
    const rev = (await statusOf(etcd.member.clientUrl)).header.revision;
    for (const body of [`{"revision":${rev}}`, '{"revision":0}', '{}', 'null', `{"Revision":${rev - 1}}`]) {
      const want = await ask(etcd, body);
      expect(want.status).toBe(200);
      expect(await ask(ts, body), body).toEqual(want);
    }
    expect((await ask(ts, `{"revision":${rev}}`)).text).toMatch(/^\{"header":\{"revision":\d+\},"hash":\d+,"compact_revision":2\}$/);
    // refusals: etcd 3.4.23's answers with --logger=zap (with its default capnslog logger
    // the handler dereferences a nil logger and the connection is dropped instead)
    expect(await ask(ts, '{"revision":1}')).toEqual({ status: 400, text: 'mvcc: required revision has been compacted\n' });
    expect(await ask(ts, `{"revision":${rev + 100}}`)).toEqual({ status: 400, text: 'mvcc: required revision is a future revision\n' });
    for (const body of ['{"revision":"x"}', 'nonsense', '']) expect(await ask(ts, body), body).toEqual({ status: 400, text: 'error unmarshalling request\n' });

    // an etcd leader's periodic check reaches both etcd-ts members (a peer that does not
    // answer is logged as a "hash-kv error"; a hash that differs raises a CORRUPT alarm)
    if ((await leaderOf(rs)) !== etcd) await ctl((await leaderOf(rs)).member.clientUrl, ['move-leader', await memberId(etcd)]);
    // (checks from before every member listened may have failed to dial it)
    const from = etcd.member.output().length;
    const since = (): string => etcd.member.output().slice(from);
    await eventually(async () => expect(since().split('finished peer corruption check').length).toBeGreaterThan(2), 30_000, 200);
    expect(since()).not.toMatch(/hash-kv error|mismatched hashes|expected hash|expected at most/);
    expect(await ctl(etcd.member.clientUrl, ['alarm', 'list'])).toBe('');

    // an etcd member restarting with the initial check compares itself with both etcd-ts members
    await stopMember(etcd.member);
    const again = await run(etcd.slot, 'etcd', [...etcd.args, '--experimental-initial-corrupt-check']);
    expect(again.output()).toMatch(/succeeded on initial corruption checking: no corruption/);
    expect(again.output()).not.toMatch(/hash-kv error|cannot check|found data inconsistency/);
  }, 600_000);

  // on peers with mutual TLS (--peer-client-cert-auth), which a case of its own covered at
  // the cost of one more four-member cluster; etcd members joining an etcd-ts cluster over
  // plain http are the rolling migration back
  it('an etcd-ts cluster gains a real etcd member, peers on mutual TLS', async () => {
    const plan = await planCluster(4, 'rv', 'https');
    const three = firstThree(plan);
    const rs = await Promise.all([0, 1, 2].map((i) => start(three, i, 'etcd-ts', peerTls)));
    const etcd = await addMember(plan, 3, 'etcd', rs[0]!, peerTls);
    rs.push(etcd);
    await writeEverywhereReadEverywhere(rs, 'joined');
    await converged(rs);
    const list = await ctl(etcd.member.clientUrl, ['member', 'list']);
    expect(list.match(/, started, .*, https:\/\/127\.0\.0\.1:\d+, /g)).toHaveLength(4);
    await expectPeersRequireCerts(plan, rs);
    await leaderOfKind(rs, 'etcd-ts');
    await leaseThrough(etcd, etcd);
    await killLeader(rs, 'etcd-ts');
    await writeEverywhereReadEverywhere(rs, 'after');
    await converged(rs);
  }, 600_000);

  describe('peers on mutual TLS with --peer-client-cert-auth', () => {
    // (an etcd-ts cluster gaining an etcd member over TLS is the case above)
    it('an etcd cluster gains an etcd-ts member', async () => {
      const plan = await planCluster(4, 'tx', 'https');
      const rs = await Promise.all([0, 1, 2].map((i) => start(firstThree(plan), i, 'etcd', peerTls)));
      rs.push(await addMember(plan, 3, 'etcd-ts', rs[0]!, peerTls));
      await writeEverywhereReadEverywhere(rs, 'tls');
      await converged(rs);
      const list = await ctl(rs[3]!.member.clientUrl, ['member', 'list']);
      expect(list.match(/, started, .*, https:\/\/127\.0\.0\.1:\d+, /g)).toHaveLength(4);
      await expectPeersRequireCerts(plan, rs);
    }, 300_000);
  });

  describe('the rolling migration: three members replaced one at a time under a client load', () => {
    async function migrate(from: Kind, to: Kind, prefix: string, annotate: (m: string) => Promise<unknown>): Promise<void> {
      const { rs, load, termBefore, termAfter } = await rollingMigration(from, to, prefix);
      expect(rs.map((r) => r.kind)).toEqual([to, to, to]);
      expect((await ctl(rs[0]!.member.clientUrl, ['member', 'list'])).trim().split('\n')).toHaveLength(3);
      // every acknowledged write is on every member
      expect(load.acked.length).toBeGreaterThan(0);
      for (const r of rs) await expectAll(r, load.acked);
      await converged(rs);
      // no more than one election per replacement (the leader's move when it was the one to go)
      expect(termAfter - termBefore).toBeLessThanOrEqual(3);
      // How long the client went without an acknowledgement is reported, not asserted: on a
      // loaded machine it stretches with the load, and the suite asserts order and outcome
      // only (writes acknowledged during every replacement, in rollingMigration; one
      // election at most per replacement, above). Expected: under an election timeout when
      // an etcd-ts member hands leadership over (it holds the proposals it gets meanwhile
      // for the next leader); up to one put's deadline when an etcd member does (etcd's raft
      // drops them, and a forwarded one times out). bench/migration measures both.
      await annotate(`${load.acked.length} puts acknowledged, longest time without one ${load.longestAckGapMs} ms, term ${termBefore} -> ${termAfter}`);
    }

    it('etcd 3.4.23 to etcd-ts', async ({ annotate }) => {
      await migrate('etcd', 'etcd-ts', 'ma', annotate);
    }, 300_000);

    it('etcd-ts back to etcd 3.4.23', async ({ annotate }) => {
      await migrate('etcd-ts', 'etcd', 'mb', annotate);
    }, 300_000);
  });
});
