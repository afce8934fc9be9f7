// A fake peer on the (unauthenticated, as without --peer-client-cert-auth) peer port
// sends raft messages with terms no member can use: 2^53-1, which a member used to
// adopt and then campaign past, at 2^53, which no member could decode (no leader ever
// again, and the term persisted), and 2^63 and 2^64-1, which do not fit a JS number.
// Three real etcd-ts processes, stock etcdctl; the fake peer is a learner added with
// `etcdctl member add --learner`, so the members dial its message stream endpoint and
// read what it writes in etcd's message-stream encoding, as malformed.test.ts's fake
// peers are read.
//
// Real etcd 3.4.23 with the same message (from reading etcd-io/etcd raft/raft.go, not run): terms
// are uint64, so 2^53-1 does no harm, but a MsgHeartbeat at 2^64-1 makes each member
// becomeFollower(2^64-1, fake) and persist it; on the next election timeout
// becomeCandidate's reset(r.Term + 1) wraps to term 0, Step takes a term-0 message for
// a local one, and the members still at 2^64-1 reject the wrapped candidate and send
// it back to 2^64-1: no leader, and restarts reload the term from the WAL.

import http from 'node:http';
import type net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { MessageType } from '../../src/raftpb/index.js';
import { parseIdHex } from '../../src/server/ids.js';
import { Header, STREAM_PATH_PREFIX } from '../../src/server/transport/headers.js';
import { U53, rawMessage } from '../raftpb/raw.js';
import { eventually, leaderIndex, planCluster, startCluster, startSlot, statusOf } from './cluster-harness.js';
import { type Member, cleanup, ctl, stopMember } from './harness.js';

const FAST = ['--heartbeat-interval', '50', '--election-timeout', '500'];
const HOSTILE: ReadonlyArray<[number, bigint]> = [
  [MessageType.MsgHeartbeat, U53 - 1n],
  [MessageType.MsgHeartbeat, 2n ** 63n],
  [MessageType.MsgHeartbeat, 2n ** 64n - 1n],
  [MessageType.MsgVote, U53 - 1n],
  [MessageType.MsgPreVote, U53 - 1n],
  [MessageType.MsgVote, 2n ** 64n - 1n],
];

/** One message as etcd's message stream frames it: uint64 length, then the bytes. */
function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeBigUInt64BE(BigInt(payload.length), 0);
  b.set(payload, 8);
  return b;
}

interface FakePeer {
  url: string;
  /** set once `member add` told us our ID */
  id: bigint;
  /** frames written so far, over all streams */
  sent: number;
  close(): Promise<void>;
}

/** Answers every member's stream dial by writing the hostile messages to it, over and over. */
async function fakePeer(): Promise<FakePeer> {
  const timers = new Set<NodeJS.Timeout>();
  const fake: FakePeer = { url: '', id: 0n, sent: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const dialer = parseIdHex(String(req.headers[Header.from] ?? ''));
    if (!req.url?.startsWith(`${STREAM_PATH_PREFIX}message/`) || dialer === undefined || fake.id === 0n) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let i = 0;
    const t = setInterval(() => {
      const [type, term] = HOSTILE[i++ % HOSTILE.length]!;
      res.write(frame(rawMessage({ type, from: fake.id, to: dialer, term, logTerm: 1n, index: 1n << 40n })));
      fake.sent++;
    }, 20);
    timers.add(t);
    res.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  fake.close = () => {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  };
  return fake;
}

let fake: FakePeer | undefined;
afterAll(async () => {
  await fake?.close();
  await cleanup();
});

async function expectServing(members: Member[], key: string): Promise<void> {
  const leader = await leaderIndex(members);
  expect(await eventually(() => ctl(members[(leader + 1) % 3]!.clientUrl, ['put', key, 'ok']))).toBe('OK\n');
  for (const m of members) {
    expect(await eventually(() => ctl(m.clientUrl, ['get', key, '--print-value-only', '--consistency=l']))).toBe('ok\n');
    const st = await statusOf(m.clientUrl);
    expect(st.raftTerm).toBeLessThan(1000);
  }
}

describe('a fake peer sending terms no member can use', () => {
  it('leaves the cluster serving, with a leader, before and after all members restart', async () => {
    const plan = await planCluster(3, 'h');
    let members = await startCluster(plan, { args: FAST });
    fake = await fakePeer();
    const added = await ctl(members[0]!.clientUrl, ['member', 'add', 'fake', `--peer-urls=${fake.url}`, '--learner']);
    fake.id = BigInt(`0x${/Member +([0-9a-f]+) added/.exec(added)![1]!}`);
    // every member dials the fake peer and reads its messages for a while
    await eventually(async () => {
      if (fake!.sent < 3 * 40) throw new Error(`only ${fake!.sent} hostile frames sent`);
    });
    await expectServing(members, 'after-attack');
    const logs = members.map((m) => m.output()).join('\n');
    expect(logs).toContain('dropped a raft message from the remote peer that does not decode');
    expect(logs).toContain('dropped a raft message from the remote peer that raft refused');

    await Promise.all(members.map((m) => stopMember(m)));
    members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { args: FAST })));
    const sentBefore = fake.sent;
    await eventually(async () => {
      if (fake!.sent < sentBefore + 3 * 40) throw new Error('the restarted members have not read the fake peer yet');
    });
    await expectServing(members, 'after-restart');
    expect(await ctl(members[0]!.clientUrl, ['get', 'after-attack', '--print-value-only'])).toBe('ok\n');
    await Promise.all(members.map((m) => stopMember(m)));
  }, 180_000);
});
