// The Lock and Election routes of the JSON gateway, side by side with real etcd 3.4.23:
// the same requests, in the same order, to an etcd-ts process and to /usr/bin/etcd, must
// give the same statuses and the same JSON (member and cluster IDs and raft terms aside;
// leases are granted with fixed IDs so keys and revisions match exactly), including the
// error bodies, a campaign that waits for its turn, callers that go away, and Observe's
// stream. Where etcd-ts deliberately differs (a waiter whose own lease goes) is in
// test/e2e/lock-election.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, cleanup, startMember } from '../e2e/harness.js';
import { StreamingRequest, b64, request } from './member.js';

let etcdTs: Member;
let etcd: Member;

beforeAll(async () => {
  etcdTs = await startMember({ name: 'gw-ts', binary: 'etcd-ts' });
  etcd = await startMember({ name: 'gw-etcd', binary: 'etcd' });
}, 60_000);
afterAll(cleanup);

const LA = '4097'; // 0x1001
const LB = '4098';
const LC = '4099';
const keyOf = (name: string, lease: string) => b64(`${name}/${BigInt(lease).toString(16)}`);

/** IDs and terms differ between any two clusters; everything else must match. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, ['cluster_id', 'member_id', 'raft_term'].includes(k) ? '*' : normalize(x)]),
  );
}

interface Answer {
  status: number;
  contentType: string | undefined;
  body: unknown;
}

async function until(cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A client of one server's gateway that records every answer, normalized, by step. */
class Script {
  readonly answers: Array<[string, Answer]> = [];
  constructor(private readonly url: string) {}

  /** Records the answer; `redact` rewrites what legitimately differs between the two servers. */
  async call(step: string, path: string, body: unknown, redact = (json: Record<string, unknown>) => json): Promise<Record<string, unknown>> {
    const r = await request(this.url, path, JSON.stringify(body));
    const json = JSON.parse(r.body) as Record<string, unknown>;
    this.answers.push([step, { status: r.status, contentType: r.headers['content-type'], body: normalize(redact(json)) }]);
    return json;
  }

  /**
   * A call that waits (Lock, Campaign): started now, answered later, or abandoned. Its
   * answer takes its place in the script where it was started, so the order of the
   * answers does not depend on which of two simultaneous replies arrives first.
   */
  start(step: string, path: string, body: unknown): { answer: Promise<void>; abandon(): void } {
    const req = new StreamingRequest(this.url, path);
    req.endBody(body);
    const slot = this.answers.push([step, { status: 0, contentType: undefined, body: 'no answer' }]) - 1;
    const answer = (async () => {
      const { status, headers } = await req.status;
      const text = (await req.next()) ?? '';
      this.answers[slot] = [step, { status, contentType: headers['content-type'], body: normalize(JSON.parse(text)) }];
    })();
    return {
      answer,
      abandon: () => {
        answer.catch(() => undefined); // the socket closes under it
        req.close();
      },
    };
  }

  async keys(prefix: string): Promise<string[]> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const r = await request(this.url, '/v3/kv/range', JSON.stringify({ key: b64(prefix), range_end: end.toString('base64'), keys_only: true }));
    return ((JSON.parse(r.body) as { kvs?: Array<{ key: string }> }).kvs ?? []).map((kv) => kv.key);
  }

  untilKeys(prefix: string, n: number): Promise<void> {
    return until(async () => (await this.keys(prefix)).length === n);
  }

  record(step: string, value: unknown): void {
    this.answers.push([step, { status: 0, contentType: undefined, body: value }]);
  }
}

async function lockScript(url: string): Promise<Script> {
  const s = new Script(url);
  for (const id of [LA, LB, LC]) await s.call(`grant ${id}`, '/v3/lease/grant', { TTL: 60, ID: id });
  const held = await s.call('lock', '/v3/lock/lock', { name: b64('lk'), lease: LA });
  await s.call('lock again with the same lease', '/v3/lock/lock', { name: b64('lk'), lease: LA });
  await s.call('lock with a lease that does not exist', '/v3/lock/lock', { name: b64('lk'), lease: '999' });
  // its key names a lease granted for it, whose ID differs between the two
  await s.call('lock without a lease', '/v3/lock/lock', { name: b64('fresh') }, (json) => ({
    ...json,
    key: Buffer.from(json['key'] as string, 'base64').toString().replace(/\/[0-9a-f]+$/, '/<lease>'),
  }));
  await s.call('unlock without a key', '/v3/lock/unlock', {});
  await s.call('unlock a key nobody holds', '/v3/lock/unlock', { key: b64('nobody') });

  const waiting = s.start('a second session waits, then locks', '/v3/lock/lock', { name: b64('lk'), lease: LB });
  await s.untilKeys('lk/', 2);
  await s.call('unlock', '/v3/lock/unlock', { key: held['key'] });
  await waiting.answer;

  const abandoned = s.start('never answered', '/v3/lock/lock', { name: b64('lk'), lease: LC });
  await s.untilKeys('lk/', 2);
  abandoned.abandon();
  await s.untilKeys('lk/', 1); // the caller went away: its key is deleted
  s.record('keys after a waiter went away', await s.keys('lk/'));
  return s;
}

async function electionScript(url: string): Promise<Script> {
  const s = new Script(url);
  for (const id of [LA, LB, LC]) await s.call(`grant ${id}`, '/v3/lease/grant', { TTL: 60, ID: id });
  await s.call('leader of an election nobody runs in', '/v3/election/leader', { name: b64('el') });
  const a = await s.call('campaign', '/v3/election/campaign', { name: b64('el'), lease: LA, value: b64('v1') });
  const leaderA = a['leader'] as Record<string, string>;

  const observe = new StreamingRequest(url, '/v3/election/observe');
  observe.endBody({ name: b64('el') });
  const observed: unknown[] = [];
  const nextObserved = async () => observed.push(normalize(JSON.parse((await observe.next()) ?? 'null')));
  await nextObserved(); // the current leader: from here on every change is seen

  await s.call('campaign again with another value', '/v3/election/campaign', { name: b64('el'), lease: LA, value: b64('v2') });
  await s.call('leader', '/v3/election/leader', { name: b64('el') });
  await s.call('proclaim', '/v3/election/proclaim', { leader: leaderA, value: b64('v3') });
  await s.call('proclaim with a stale leader key', '/v3/election/proclaim', { leader: { ...leaderA, rev: '1' }, value: b64('x') });
  await s.call('proclaim without a leader key', '/v3/election/proclaim', { value: b64('x') });
  await s.call('proclaim with an empty leader key', '/v3/election/proclaim', { leader: {}, value: b64('x') });
  await s.call('resign without a leader key', '/v3/election/resign', {});
  await s.call('campaign with a lease that does not exist', '/v3/election/campaign', { name: b64('el'), lease: '999', value: b64('x') });

  const waiting = s.start('a second candidate waits, then leads', '/v3/election/campaign', { name: b64('el'), lease: LB, value: b64('b') });
  await s.untilKeys('el/', 2);
  await s.call('resign with a stale leader key', '/v3/election/resign', { leader: { ...leaderA, rev: '1' } });
  await s.call('resign', '/v3/election/resign', { leader: leaderA });
  await waiting.answer;
  await s.call('leader after the handover', '/v3/election/leader', { name: b64('el') });

  const abandoned = s.start('never answered', '/v3/election/campaign', { name: b64('el'), lease: LC, value: b64('c') });
  await s.untilKeys('el/', 2);
  abandoned.abandon();
  await s.untilKeys('el/', 1); // the candidate went away: it withdrew
  s.record('keys after a candidate went away', await s.keys('el/'));

  for (let i = 0; i < 3; i++) await nextObserved(); // v2, v3, then the next leader
  observe.close();
  s.record('observed', observed);
  return s;
}

describe('Lock and Election routes, compared with etcd 3.4.23', () => {
  it('lock and unlock: the same answers, waits and cleanup', async () => {
    const ours = await lockScript(etcdTs.clientUrl);
    const theirs = await lockScript(etcd.clientUrl);
    expect(ours.answers).toEqual(theirs.answers);
    // and the answers are the expected ones, not merely equal
    expect(Object.fromEntries(ours.answers.map(([step, a]) => [step, a.status]))).toMatchObject({
      lock: 200,
      'lock with a lease that does not exist': 500,
      'unlock without a key': 500,
      'a second session waits, then locks': 200,
    });
    const byStep = Object.fromEntries(ours.answers);
    expect(byStep['lock without a lease']!.body).toMatchObject({ key: 'fresh/<lease>' });
    expect(byStep['a second session waits, then locks']!.body).toMatchObject({ key: keyOf('lk', LB) });
    expect(byStep['keys after a waiter went away']!.body).toEqual([keyOf('lk', LB)]);
  });

  it('campaign, proclaim, leader, resign and observe: the same answers, handover and stream', async () => {
    const ours = await electionScript(etcdTs.clientUrl);
    const theirs = await electionScript(etcd.clientUrl);
    expect(ours.answers).toEqual(theirs.answers);
    const byStep = Object.fromEntries(ours.answers);
    expect(byStep['proclaim with a stale leader key']!.body).toEqual({ error: 'election: not leader', message: 'election: not leader', code: 2 });
    expect(byStep['leader of an election nobody runs in']!.body).toEqual({ error: 'election: no leader', message: 'election: no leader', code: 2 });
    expect((byStep['observed']!.body as Array<{ result: { kv: { value: string } } }>).map((r) => r.result.kv.value)).toEqual(
      ['v1', 'v2', 'v3', 'b'].map(b64),
    );
  });
});
