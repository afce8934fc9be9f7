// Members of etcd 3.4.23 and etcd-ts started as an operator starts them (`--initial-cluster`,
// `member add` then `existing`), and the rolling migration of a live three-member cluster
// from one kind to the other under a client load. Shared by test/e2e/mixed-cluster.test.ts,
// which asserts order and outcome, and bench/migration, which measures what the client
// sees beside etcd replacing its own members. No vitest here: a bench runs it too.

import { type ClusterPlan, type Slot, eventually, flagsFor, leaderIndex, peerUrl, planCluster, statusOf } from './cluster-harness.js';
import { type SeqOutcome, seqLoad } from './goload.js';
import { type Member, ctl, startMember } from './harness.js';

export type Kind = 'etcd' | 'etcd-ts';

export interface Running {
  member: Member;
  kind: Kind;
  slot: Slot;
  /** every flag it was started with, to restart it the same way */
  args: string[];
}

export function run(slot: Slot, kind: Kind, args: string[]): Promise<Member> {
  return startMember({ name: slot.name, dataDir: slot.dataDir, clientPort: slot.clientPort, peerPort: slot.peerPort, bare: true, args, binary: kind });
}

/** Flags a member needs beyond flagsFor's (the peer certificates of a TLS cluster, its timing). */
export type ExtraFlags = (slot: Slot) => string[];
export const noExtraFlags: ExtraFlags = () => [];

export async function start(plan: ClusterPlan, i: number, kind: Kind, extra = noExtraFlags): Promise<Running> {
  const slot = plan.slots[i]!;
  const args = [...flagsFor(plan, slot, 'new'), ...extra(slot)];
  return { member: await run(slot, kind, args), kind, slot, args };
}

/** `etcdctl member add` through `via`, then the new member started with what it printed and `existing`. */
export async function addMember(plan: ClusterPlan, i: number, kind: Kind, via: Running, extra = noExtraFlags): Promise<Running> {
  const slot = plan.slots[i]!;
  // a cluster refuses a new voter until every member has been connected for 5 s (etcd's strict reconfig check)
  const out = await eventually(() => ctl(via.member.clientUrl, ['member', 'add', slot.name, `--peer-urls=${peerUrl(plan, slot)}`]), 30_000, 1000);
  const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(out)![1]!;
  const args = [...flagsFor(plan, slot, 'existing', initialCluster), ...extra(slot)];
  return { member: await run(slot, kind, args), kind, slot, args };
}

/** The first three slots of `plan`, as the cluster they start (the fourth joins it later). */
export function firstThree(plan: ClusterPlan): ClusterPlan {
  return { ...plan, slots: plan.slots.slice(0, 3), initialCluster: plan.initialCluster.split(',').slice(0, 3).join(',') };
}

/** The member's ID in hex, from etcdctl's simple output (JSON would round the uint64). */
export async function memberId(r: Running): Promise<string> {
  return (await ctl(r.member.clientUrl, ['endpoint', 'status'])).split(', ')[1]!;
}

export async function leaderOf(rs: readonly Running[]): Promise<Running> {
  return rs[await leaderIndex(rs.map((r) => r.member))]!;
}

/** Resolves once `r` has applied at least the writes acknowledged so far (a serializable read on it). */
export async function caughtUp(r: Running, load: { acked(): readonly string[] }): Promise<void> {
  const last = await eventually(async () => load.acked().at(-1) ?? Promise.reject(new Error('no write acknowledged yet')));
  await eventually(async () => {
    const got = await ctl(r.member.clientUrl, ['get', last, '--keys-only', '--consistency=s']);
    if (!got.includes(last)) throw new Error(`${r.slot.name} has not applied ${last} yet`);
  }, 60_000, 250);
}

/** A put every LOAD_INTERVAL_MS at most: writes go on throughout, without loading the members flat out. */
export const LOAD_INTERVAL_MS = 20;

/**
 * The migration test's members: heartbeats every 200 ms, elections after 3 s of silence. Its
 * assertion of one election per replacement at most counts terms; with etcd's defaults
 * (100 ms, 1 s) a member starved of CPU on a loaded machine (load 30) missed enough
 * heartbeats to start elections of its own: 7 terms in one run.
 */
export const steadyTiming: ExtraFlags = () => ['--heartbeat-interval', '200', '--election-timeout', '3000'];

export interface Migration {
  /** the three members of kind `to` the cluster ends with */
  rs: Running[];
  load: SeqOutcome;
  termBefore: number;
  termAfter: number;
  /** what the migration did and when (Date.now()), to place the load's longest gap among its steps */
  steps: Array<{ at: number; what: string }>;
  /** the members it replaced, in order (their output stays readable) */
  replaced: Running[];
}

/**
 * Three members of kind `from`, under a client load, replaced one at a time by members of
 * kind `to` on new data dirs and ports, as an operator migrates a live cluster: the member
 * goes (`member remove`; if it leads, leadership is moved to one of the new members first),
 * its replacement is added (`member add`, started with `existing`) and catches up before the
 * next one goes. The load is etcd's Go client (goload -acked, one put at a time, paced
 * at LOAD_INTERVAL_MS), given all six members' endpoints from the start: its balancer uses
 * those that answer, as an application's client configured with the cluster's endpoints
 * would. Throws if a replacement went by without a write acknowledged during it.
 */
export async function rollingMigration(from: Kind, to: Kind, prefix: string, timing: ExtraFlags = steadyTiming): Promise<Migration> {
  const plan = await planCluster(6, prefix);
  const rs = await Promise.all([0, 1, 2].map((i) => start(firstThree(plan), i, from, timing)));
  const termBefore = (await statusOf(rs[0]!.member.clientUrl)).raftTerm;
  const load = seqLoad(plan.slots.map((s) => `127.0.0.1:${s.clientPort}`), 1, LOAD_INTERVAL_MS);
  const steps: Migration['steps'] = [];
  const step = (what: string): void => void steps.push({ at: Date.now(), what });
  // the members still to replace (by identity: from and to may be the same kind, as in the bench's etcd>etcd)
  const old = new Set(rs);
  const replaced: Running[] = [];
  for (let n = 1; n <= 3; n++) {
    let victim = rs.find((r) => old.has(r))!;
    const leader = await leaderOf(rs);
    if (old.has(leader)) {
      const followers = rs.filter((r) => old.has(r) && r !== leader);
      if (followers.length > 0) victim = followers[0]!;
      else {
        step(`${n}: move-leader from ${leader.kind} ${leader.slot.name}`);
        await ctl(leader.member.clientUrl, ['move-leader', await memberId(rs.find((r) => !old.has(r))!)]);
        await eventually(async () => {
          const now = await leaderOf(rs);
          if (old.has(now)) throw new Error(`leadership has not moved to a new member yet (${now.slot.name} leads)`);
        });
        step(`${n}: leadership moved`);
      }
    }
    old.delete(victim);
    replaced.push(victim);
    const id = await memberId(victim);
    rs.splice(rs.indexOf(victim), 1);
    const ackedBefore = load.acked().length;
    step(`${n}: member remove ${victim.kind} ${victim.slot.name}`);
    await eventually(() => ctl(rs[0]!.member.clientUrl, ['member', 'remove', id]), 30_000, 1000);
    step(`${n}: removed`);
    // a removed member learns it was removed and stops by itself, as etcd does
    await eventually(async () => {
      if ((victim.member.proc.exitCode ?? victim.member.proc.signalCode) === null) throw new Error(`removed member ${victim.slot.name} still runs`);
    }, 30_000, 200);
    step(`${n}: ${victim.slot.name} exited; member add ${to}`);
    const joined = await addMember(plan, 2 + n, to, rs[0]!, timing);
    step(`${n}: ${joined.slot.name} started`);
    await caughtUp(joined, load);
    step(`${n}: ${joined.slot.name} caught up`);
    rs.push(joined);
    // writes went on being acknowledged while the member was being replaced
    if (load.acked().length <= ackedBefore) throw new Error(`step ${n}: no write was acknowledged while ${victim.slot.name} was replaced`);
  }
  const outcome = await load.stop();
  const termAfter = (await statusOf(rs[0]!.member.clientUrl)).raftTerm;
  return { rs, load: outcome, termBefore, termAfter, steps, replaced };
}
