// The Lock and Election services of a real etcd-ts process, through an independent
// gRPC client: who holds a lock or leads an election, in what order, and what callers
// hear when leases go or they walk away. Expectations follow etcd 3.4.23's v3lock and
// v3election servers (checked with curl against /usr/bin/etcd; the gateway test
// compares the two side by side), except where noted.

import { status as Code, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, leaderIndex, planCluster, startCluster } from './cluster-harness.js';
import { ConcurrencyClient, type LeaderKey } from './concurrency-client.js';
import { type Member, cleanup, ctl, spawnCtl, startMember, stopMember } from './harness.js';

let m: Member;
let c: ConcurrencyClient;

beforeAll(async () => {
  m = await startMember({ name: 'locks' });
  c = new ConcurrencyClient(m.clientUrl);
});
afterAll(async () => {
  c?.close();
  await cleanup();
});

/** Resolves once the keys under `prefix` are exactly `expected` (oldest first). */
function keysBecome(prefix: string, expected: string[]): Promise<void> {
  return eventually(async () => expect(await c.keys(prefix)).toEqual(expected), 20_000, 50);
}

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded');
}

const hex = (id: string) => BigInt(id).toString(16);

describe('Lock', () => {
  it('a second session waits until the holder unlocks, then holds the lock', async () => {
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    const events: string[] = [];
    const a = await c.lock('order', la).result;
    expect(a.key.toString()).toBe(`order/${hex(la)}`);
    events.push('a locked');

    const b = c.lock('order', lb);
    void b.result.then(() => events.push('b locked'));
    await keysBecome('order/', [`order/${hex(la)}`, `order/${hex(lb)}`]); // b is queued
    events.push('a unlocks');
    const unlocked = await c.unlock(a.key);
    const held = await b.result;
    expect(events).toEqual(['a locked', 'a unlocks', 'b locked']);
    expect(held.key.toString()).toBe(`order/${hex(lb)}`);
    // b's answer is the read that found the way clear: it sees a's key deleted
    expect(Number(held.header.revision)).toBeGreaterThanOrEqual(Number(unlocked.header.revision));
    expect(await c.keys('order/')).toEqual([`order/${hex(lb)}`]);
    await c.unlock(held.key);
  });

  it('locking again with the same lease returns the key it holds', async () => {
    const l = await c.grant(60);
    const first = await c.lock('again', l).result;
    const second = await c.lock('again', l).result;
    expect(second.key).toEqual(first.key);
    expect(await c.keys('again/')).toEqual([`again/${hex(l)}`]);
  });

  it("revoking the holder's lease releases the lock to the next waiter", async () => {
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    const events: string[] = [];
    await c.lock('revoked', la).result;
    const b = c.lock('revoked', lb);
    void b.result.then(() => events.push('b locked'));
    await keysBecome('revoked/', [`revoked/${hex(la)}`, `revoked/${hex(lb)}`]);
    events.push('a revoked');
    await c.revoke(la);
    expect((await b.result).key.toString()).toBe(`revoked/${hex(lb)}`);
    expect(events).toEqual(['a revoked', 'b locked']);
  });

  it("a waiter whose own lease is revoked fails with 'mutex: session is expired' instead of taking the lock later", async () => {
    // etcd 3.4 goes on waiting and, once the holder unlocks, answers with a key that is gone
    // (3.5's Mutex checks its key after waiting and fails with this error).
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    const a = await c.lock('lost', la).result;
    const b = c.lock('lost', lb);
    await keysBecome('lost/', [`lost/${hex(la)}`, `lost/${hex(lb)}`]);
    await c.revoke(lb);
    await c.unlock(a.key);
    const err = await failure(b.result);
    expect(err.code).toBe(Code.UNKNOWN);
    expect(err.details).toBe('mutex: session is expired');
  });

  it('a caller that goes away stops waiting and its key is deleted, as etcd does', async () => {
    const [la, lb, lc] = [await c.grant(60), await c.grant(60), await c.grant(60)];
    const a = await c.lock('gone', la).result;
    const b = c.lock('gone', lb);
    await keysBecome('gone/', [`gone/${hex(la)}`, `gone/${hex(lb)}`]);
    b.cancel();
    await keysBecome('gone/', [`gone/${hex(la)}`]);
    // the queue still works: the next caller gets the lock once a unlocks
    const next = c.lock('gone', lc);
    await keysBecome('gone/', [`gone/${hex(la)}`, `gone/${hex(lc)}`]);
    await c.unlock(a.key);
    expect((await next.result).key.toString()).toBe(`gone/${hex(lc)}`);
  });

  it("without a lease the lock runs under a new 60 s session lease, as etcd's does", async () => {
    const r = await c.lock('nolease', 0).result;
    const [prefix, leaseHex] = r.key.toString().split('/');
    expect(prefix).toBe('nolease');
    expect(await c.grantedTtl(BigInt(`0x${leaseHex}`).toString())).toBe(60);
  });

  it("errors carry etcd's messages with code Unknown", async () => {
    const bad = await failure(c.lock('bad', 12345).result);
    expect([bad.code, bad.details]).toEqual([Code.UNKNOWN, 'etcdserver: requested lease not found']);
    const empty = await failure(c.unlock(Buffer.alloc(0)));
    expect([empty.code, empty.details]).toEqual([Code.UNKNOWN, 'etcdserver: key is not provided']);
    expect(await c.keys('bad/')).toEqual([]);
    // unlocking a key nobody holds is fine
    await c.unlock('bad/0');
  });
});

describe('Election', () => {
  it('campaign, leader, proclaim and resign; observe sees every change in order', async () => {
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    const observation = c.observe('el');
    const events: string[] = [];

    const a = await c.campaign('el', la, 'a1').result;
    events.push('a leads');
    const leaderA: LeaderKey = a.leader;
    expect(leaderA.key.toString()).toBe(`el/${hex(la)}`);
    expect(leaderA.rev).toBe(a.header.revision);
    expect(leaderA.lease).toBe(la);

    const b = c.campaign('el', lb, 'b1');
    void b.result.then(() => events.push('b leads'));
    await keysBecome('el/', [`el/${hex(la)}`, `el/${hex(lb)}`]);

    await c.proclaim(leaderA, 'a2');
    const current = await c.leader('el');
    expect(current.kv.key.toString()).toBe(`el/${hex(la)}`);
    expect(current.kv.value.toString()).toBe('a2');
    expect(current.kv.version).toBe('2');

    // proclaiming with a leadership that is not the current one fails
    const stale = await failure(c.proclaim({ ...leaderA, rev: String(Number(leaderA.rev) - 1) }, 'x'));
    expect([stale.code, stale.details]).toEqual([Code.UNKNOWN, 'election: not leader']);

    events.push('a resigns');
    await c.resign(leaderA);
    const leaderB = (await b.result).leader;
    expect(events).toEqual(['a leads', 'a resigns', 'b leads']);
    expect(leaderB.key.toString()).toBe(`el/${hex(lb)}`);
    expect((await c.leader('el')).kv.value.toString()).toBe('b1');

    // a's old leadership can no longer proclaim
    expect((await failure(c.proclaim(leaderA, 'a3'))).details).toBe('election: not leader');

    const seen = await observation.first(3);
    observation.cancel();
    expect(seen.map((r) => `${r.kv.key.toString()}=${r.kv.value.toString()}`)).toEqual([
      `el/${hex(la)}=a1`,
      `el/${hex(la)}=a2`,
      `el/${hex(lb)}=b1`,
    ]);
    // each response's header is no older than the change it reports
    for (const r of seen) expect(Number(r.header.revision)).toBeGreaterThanOrEqual(Number(r.kv.mod_revision));
    await c.resign(leaderB);
  });

  it('observe starts with the current leader', async () => {
    const l = await c.grant(60);
    const { leader } = await c.campaign('current', l, 'v').result;
    const observation = c.observe('current');
    const [first] = await observation.first(1);
    observation.cancel();
    expect(first!.kv.key).toEqual(leader.key);
    expect(first!.kv.value.toString()).toBe('v');
  });

  it("Leader with no candidate fails with 'election: no leader'; Proclaim and Resign need a leader key", async () => {
    const none = await failure(c.leader('nobody'));
    expect([none.code, none.details]).toEqual([Code.UNKNOWN, 'election: no leader']);
    expect((await failure(c.proclaim(undefined, 'v'))).details).toBe('"leader" field must be provided');
    expect((await failure(c.resign(undefined))).details).toBe('"leader" field must be provided');
  });

  it('a campaign with a revoked lease fails; a waiting candidate whose lease is revoked fails with election: session expired', async () => {
    const gone = await c.grant(60);
    await c.revoke(gone);
    const refused = await failure(c.campaign('exp', gone, 'v').result);
    expect([refused.code, refused.details]).toEqual([Code.UNKNOWN, 'etcdserver: requested lease not found']);

    // etcd 3.4 would go on waiting and then report leadership of a deleted key.
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    const a = await c.campaign('exp', la, 'a').result;
    const b = c.campaign('exp', lb, 'b');
    await keysBecome('exp/', [`exp/${hex(la)}`, `exp/${hex(lb)}`]);
    await c.revoke(lb);
    const err = await failure(b.result);
    expect([err.code, err.details]).toEqual([Code.UNKNOWN, 'election: session expired']);
    expect((await c.leader('exp')).kv.key).toEqual(a.leader.key);
  });

  it('a candidate that goes away withdraws, as etcd does', async () => {
    const [la, lb] = [await c.grant(60), await c.grant(60)];
    await c.campaign('withdraw', la, 'a').result;
    const b = c.campaign('withdraw', lb, 'b');
    await keysBecome('withdraw/', [`withdraw/${hex(la)}`, `withdraw/${hex(lb)}`]);
    b.cancel();
    await keysBecome('withdraw/', [`withdraw/${hex(la)}`]);
  });
});

describe('stock etcdctl lock and elect (client-side recipes over KV, Lease and Watch)', () => {
  it('lock: a second etcdctl waits for the first, and a gRPC Lock queues behind both on the same keys', async () => {
    const first = spawnCtl(m.clientUrl, ['lock', 'ctl-lock']);
    await first.waitOutput('ctl-lock/');
    const firstKey = first.output().trim();
    const second = spawnCtl(m.clientUrl, ['lock', 'ctl-lock']);
    await eventually(async () => expect((await c.keys('ctl-lock/')).length).toBe(2), 20_000, 50);
    const secondKey = (await c.keys('ctl-lock/'))[1]!;
    expect(second.output()).toBe(''); // queued behind the first

    const l = await c.grant(60);
    const viaService = c.lock('ctl-lock', l);
    await keysBecome('ctl-lock/', [firstKey, secondKey, `ctl-lock/${hex(l)}`]);

    await first.kill(); // etcdctl unlocks and revokes its session on SIGTERM
    await second.waitOutput(secondKey);
    await second.kill();
    expect((await viaService.result).key.toString()).toBe(`ctl-lock/${hex(l)}`);
  });

  it('lock runs a command while holding the lock, with ETCD_LOCK_KEY set', async () => {
    const out = await ctl(m.clientUrl, ['lock', 'ctl-cmd', '--', 'sh', '-c', 'echo "held $ETCD_LOCK_KEY"']);
    expect(out).toMatch(/^held ctl-cmd\/[0-9a-f]+\n$/);
    expect(await c.keys('ctl-cmd/')).toEqual([]);
  });

  it('elect: candidates lead in turn and elect -l observes each leader; the Election service sees them too', async () => {
    const observer = spawnCtl(m.clientUrl, ['elect', '-l', 'ctl-elect']);
    const a = spawnCtl(m.clientUrl, ['elect', 'ctl-elect', 'p1']);
    await a.waitOutput('p1\n');
    await observer.waitOutput('p1\n');
    const b = spawnCtl(m.clientUrl, ['elect', 'ctl-elect', 'p2']);
    await eventually(async () => expect((await c.keys('ctl-elect/')).length).toBe(2), 20_000, 50);
    expect(b.output()).toBe('');
    expect((await c.leader('ctl-elect')).kv.value.toString()).toBe('p1');

    await a.kill();
    await b.waitOutput('p2\n');
    expect((await c.leader('ctl-elect')).kv.value.toString()).toBe('p2');
    await observer.waitOutput('p2\n');
    const seen = observer.output().trim().split('\n');
    expect(seen.filter((_, i) => i % 2 === 1)).toEqual(['p1', 'p2']);
    await b.kill();
    await observer.kill();
  });
});

describe('in a three-member cluster', () => {
  it('followers serve Lock and Election: their writes go through raft, their waits and observations follow the leader', async () => {
    const members = await startCluster(await planCluster(3, 'le'));
    const leaderAt = await leaderIndex(members);
    const followers = members.filter((_, i) => i !== leaderAt);
    const f1Url = followers[0]!.clientUrl;
    const [f1, f2] = followers.map((x) => new ConcurrencyClient(x.clientUrl));
    const onLeader = new ConcurrencyClient(members[leaderAt]!.clientUrl);
    try {
      const [la, lb] = [await f1!.grant(60), await f2!.grant(60)];
      const events: string[] = [];
      const a = await f1!.lock('cl-lock', la).result;
      events.push('f1 locked');
      const b = f2!.lock('cl-lock', lb);
      void b.result.then(() => events.push('f2 locked'));
      await eventually(async () => expect(await onLeader.keys('cl-lock/')).toEqual([`cl-lock/${hex(la)}`, `cl-lock/${hex(lb)}`]), 20_000, 50);
      events.push('unlock on the leader');
      await onLeader.unlock(a.key);
      expect((await b.result).key.toString()).toBe(`cl-lock/${hex(lb)}`);
      expect(events).toEqual(['f1 locked', 'unlock on the leader', 'f2 locked']);

      const observation = f2!.observe('cl-elect');
      const leader = (await f1!.campaign('cl-elect', la, 'one').result).leader;
      expect((await onLeader.leader('cl-elect')).kv.value.toString()).toBe('one');
      await f2!.proclaim(leader, 'two');
      expect((await f1!.leader('cl-elect')).kv.value.toString()).toBe('two');
      const seen = await observation.first(2);
      observation.cancel();
      expect(seen.map((r) => r.kv.value.toString())).toEqual(['one', 'two']);
      await onLeader.resign(leader);
      expect((await failure(f2!.leader('cl-elect'))).details).toBe('election: no leader');

      // With hasleader set (as clientv3 sets it), calls fail fast once the member has no
      // raft leader, with etcd's interceptor's error, and an observation ends with it.
      const requireLeader = new Metadata();
      requireLeader.set('hasleader', 'true');
      const watching = f1!.observe('cl-elect', requireLeader);
      await f1!.campaign('cl-elect', la, 'three').result;
      await watching.first(1);
      await Promise.all(members.filter((x) => x.clientUrl !== f1Url).map((x) => stopMember(x, 'SIGKILL')));
      const lost = await watching.failure();
      expect([lost.code, lost.details]).toEqual([Code.UNAVAILABLE, 'etcdserver: no leader']);
      const refused = await failure(f1!.lock('cl-lock', la, requireLeader).result);
      expect([refused.code, refused.details]).toEqual([Code.UNAVAILABLE, 'etcdserver: no leader']);
    } finally {
      for (const x of [f1, f2, onLeader]) x?.close();
    }
  });
});
