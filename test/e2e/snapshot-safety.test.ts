// A member's live store changes only when raft accepts a peer's snapshot (issue 12, item 1).
// Three etcd-ts processes on loopback; the third member's peer port sits behind a TCP
// proxy of this test that records the leader's snapshot POST, so the same real snapshot
// can be delivered again later. Every request below reaches the member's real peer
// port, unauthenticated, as an attacker on the network would send it.
//
// What real etcd 3.4.23 does with the forged request (one member, POST /raft/snapshot
// with the cluster ID from a peer response header, X-Server-From 1234, X-Raft-To the
// member's ID from GET /members, a raftpb MsgSnap at index 1 in rafthttp's framing (u64
// length, message) and 27 bytes that are no bbolt file): it answers 204, logs
// "receiving database snapshot [index: 1, from: 1234, ...]", "saved database snapshot
// to disk [total bytes: 27]" and "successfully received and saved database snapshot",
// and leaves the bytes in member/snap/0000000000000001.snap.db (still there after a
// restart). Raft ignores the MsgSnap, so keys and `endpoint hashkv` stay as they were,
// before and after a restart. etcd-ts refuses the same attempt before reading the store
// (409, one warn line naming the sender and the index) and writes nothing.

import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { decodeMessage, MessageType, type Message } from '../../src/raftpb/index.js';
import { writeEtcdBackend } from '../../src/server/backup/etcd-db.js';
import { type ClusterPlan, bulkPut, eventually, flagsFor, leaderIndex, planCluster, snapshotCatchUp, startSlot, statusOf } from './cluster-harness.js';
import { type Member, cleanup, ctl, freePort, startMember, stopMember, tempDir, waitFor } from './harness.js';
import { snapshotBody } from '../transport/helpers.js';

const CATCH_UP = snapshotCatchUp('etcd-ts');
const FAST = ['--heartbeat-interval', '50', '--election-timeout', '500', '--snapshot-count', '100', ...CATCH_UP.args];
/** the member that catches up through a snapshot, behind the recording proxy */
const F = 2;

interface CapturedPost {
  headers: Record<string, string>;
  body: Buffer;
}

/** Forwards `listenPort` to `upstreamPort`, keeping every POST /raft/snapshot that crosses it. */
async function recordingProxy(listenPort: number, upstreamPort: number): Promise<{ posts: CapturedPost[]; close(): Promise<void> }> {
  const posts: CapturedPost[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    let bytes: Buffer[] | undefined;
    client.on('data', (c: Buffer) => {
      if (bytes === undefined && !c.toString('latin1').startsWith('POST /raft/snapshot ')) return;
      (bytes ??= []).push(c);
    });
    client.on('close', () => {
      if (bytes !== undefined) posts.push(parsePost(Buffer.concat(bytes)));
    });
  });
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', () => r()));
  return {
    posts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function parsePost(raw: Buffer): CapturedPost {
  const end = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of raw.subarray(0, end).toString('latin1').split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body: dechunk(raw.subarray(end + 4)) };
}

/** The body of a chunked request (etcd's snapshot sender, like ours, sends no length). */
function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; ; ) {
    const eol = raw.indexOf('\r\n', off);
    const size = parseInt(raw.subarray(off, eol).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** The MsgSnap at the head of a snapshot POST body (framed as on etcd's message stream). */
function messageOf(body: Buffer): Message {
  return decodeMessage(body.subarray(8, 8 + Number(body.readBigUInt64BE(0))));
}

/** The database behind the MsgSnap in a snapshot POST body. */
function dbOf(body: Buffer): Buffer {
  return body.subarray(8 + Number(body.readBigUInt64BE(0)));
}

/** etcd's backend database of an empty store, a real bbolt file: what a forged snapshot would put in place of the data. */
async function emptyStore(): Promise<Buffer> {
  const dir = tempDir();
  const store = await MvccStore.open({ dir: path.join(dir, 'db') });
  const view = store.bucketView();
  try {
    await writeEtcdBackend(path.join(dir, 'bolt'), view, { members: [], removed: [], version: '3.4.0' });
  } finally {
    await view.close();
    await store.close();
  }
  return readFileSync(path.join(dir, 'bolt'));
}

async function hashOf(endpoint: string): Promise<string> {
  return (await ctl(endpoint, ['endpoint', 'hashkv'])).split(', ')[1]!.trim();
}

async function get(endpoint: string, key: string): Promise<string> {
  return ctl(endpoint, ['get', key, '--consistency=s', '--print-value-only']);
}

/** Member IDs by advertised peer URL, from GET /members (decimal IDs exceed JSON's safe integers), and the cluster ID header. */
async function peerView(peerUrl: string): Promise<{ clusterId: string; ids: Map<string, bigint> }> {
  const res = await fetch(`${peerUrl}/members`);
  const text = await res.text();
  const ids = new Map<string, bigint>();
  for (const m of text.matchAll(/"id":(\d+),"peerURLs":\["([^"]+)"/g)) ids.set(m[2]!, BigInt(m[1]!));
  return { clusterId: res.headers.get('x-etcd-cluster-id')!, ids };
}

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

function logLines(m: Member, msg: string): LogLine[] {
  return m
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(msg))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === msg);
}

function receivedStores(m: Member): string[] {
  return readdirSync(path.join(m.dataDir, 'member', 'snap')).filter((n) => n.includes('.snap.db'));
}

function hex16(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

afterAll(cleanup);

describe('a member swaps in a peer snapshot only once raft accepts it', () => {
  let plan: ClusterPlan;
  let members: Member[];
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  /** where member F really listens for peers; its advertised peer URL is the proxy's */
  let fPeerPort: number;
  let captured: CapturedPost;
  afterAll(async () => {
    await proxy?.close();
  });

  function startF(): Promise<Member> {
    const args = flagsFor(plan, plan.slots[F]!);
    args[args.indexOf('--listen-peer-urls') + 1] = `http://127.0.0.1:${fPeerPort}`;
    const s = plan.slots[F]!;
    return startMember({ name: s.name, dataDir: s.dataDir, clientPort: s.clientPort, bare: true, args: [...args, ...FAST] });
  }

  async function restartF(): Promise<void> {
    await stopMember(members[F]!);
    members[F] = await startF();
  }

  async function converged(): Promise<string> {
    return eventually(async () => {
      const h = await Promise.all(members.map((m) => hashOf(m.clientUrl)));
      expect(new Set(h).size).toBe(1);
      return h[0]!;
    }, 30_000);
  }

  it('catches up through a real snapshot; stopped between recording it and swapping its store in, it installs that store at start', async () => {
    plan = await planCluster(3, 'snap');
    fPeerPort = await freePort();
    proxy = await recordingProxy(plan.slots[F]!.peerPort, fPeerPort);
    members = await Promise.all([startSlot(plan, plan.slots[0]!, { args: FAST }), startSlot(plan, plan.slots[1]!, { args: FAST }), startF()]);

    await stopMember(members[F]!, 'SIGKILL');
    const oldStore = path.join(tempDir(), 'db-before-snapshot');
    cpSync(path.join(plan.slots[F]!.dataDir, 'member', 'leveldb'), oldStore, { recursive: true });
    // more than the entries a leader keeps behind its snapshot, so F needs one
    const leader = members[await leaderIndex(members.slice(0, F))]!;
    await bulkPut(leader.clientUrl, CATCH_UP.puts);
    members[F] = await startF();
    await waitFor(members[F]!, 'installed the store from a leader snapshot', 60_000);
    await converged();
    expect(proxy.posts.length).toBeGreaterThan(0);
    // the leader sent its store as its export thread read it, with no copy written out first
    expect(members.slice(0, F).some((m) => m.output().includes('streaming the database snapshot while it is read'))).toBe(true);
    captured = proxy.posts[0]!;
    const index = messageOf(captured.body).snapshot!.metadata.index;

    // As if F had stopped right after the WAL recorded the snapshot: the store received
    // with it still waits beside the store F had before.
    await stopMember(members[F]!);
    const snapDir = path.join(plan.slots[F]!.dataDir, 'member', 'snap');
    const newest = readdirSync(snapDir).filter((n) => n.endsWith('.snap')).sort().at(-1)!;
    expect(parseInt(newest.slice(17, 33), 16)).toBe(index);
    const liveStore = path.join(plan.slots[F]!.dataDir, 'member', 'leveldb');
    // the database as it arrived (the leader's bbolt file, behind the MsgSnap in the POST)
    writeFileSync(path.join(snapDir, `${hex16(BigInt(index))}.snap.db`), dbOf(captured.body));
    rmSync(liveStore, { recursive: true });
    cpSync(oldStore, liveStore, { recursive: true });
    // nor etcd's bbolt file, which the member removes before it records a leader's snapshot
    rmSync(path.join(snapDir, 'db'));
    members[F] = await startF();
    expect(await get(members[F]!.clientUrl, CATCH_UP.lastKey)).toBe(`${CATCH_UP.lastValue}\n`);
    await converged();
    expect(members[F]!.output()).toContain('installed the store received with the snapshot the WAL recorded last');
    expect(receivedStores(members[F]!)).toEqual([]);
    // the puts, a snapshot, two restarts: about a minute on a quiet machine, minutes on a loaded one
  }, 360_000);

  it('a late copy of that snapshot, delivered after the member moved past it, changes nothing, also after a restart', async () => {
    const leader = members[await leaderIndex(members)]!;
    await ctl(leader.clientUrl, ['del', 'bulk/00000', 'bulk/00100']);
    await ctl(leader.clientUrl, ['put', 'late/key', 'written after the snapshot']);
    const before = await converged();
    const index = messageOf(captured.body).snapshot!.metadata.index;
    const sender = messageOf(captured.body).from;

    const res = await fetch(`http://127.0.0.1:${fPeerPort}/raft/snapshot`, {
      method: 'POST',
      headers: Object.fromEntries(Object.entries(captured.headers).filter(([k]) => k.startsWith('x-'))),
      body: captured.body,
    });
    const answer = { status: res.status, text: await res.text() };
    const f = members[F]!;
    for (let round = 0; round < 2; round++) {
      expect(await get(members[F]!.clientUrl, 'late/key')).toBe('written after the snapshot\n');
      expect(await get(members[F]!.clientUrl, 'bulk/00000')).toBe('');
      expect(await hashOf(members[F]!.clientUrl)).toBe(before);
      expect(receivedStores(members[F]!)).toEqual([]);
      if (round === 0) await restartF();
    }
    expect(await converged()).toBe(before);
    expect(answer.status).toBe(409);
    expect(answer.text).toMatch(/not ahead of this member's/);
    const refusals = logLines(f, 'refused database snapshot').filter((l) => l['incoming-snapshot-index'] === index);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 'warn', 'remote-snapshot-sender-id': hex16(sender) });
  }, 120_000);

  it('a forged snapshot POSTed to the peer port changes nothing, also after a restart; received stores left from a crash are removed at start', async () => {
    const f = members[F]!;
    const lead = await leaderIndex(members);
    const { clusterId, ids } = await peerView(`http://127.0.0.1:${fPeerPort}`);
    const idOf = (i: number): bigint => ids.get(`http://127.0.0.1:${plan.slots[i]!.peerPort}`)!;
    const fId = idOf(F);
    const other = [0, 1].find((i) => i !== lead)!;
    const term = (await statusOf(f.clientUrl)).raftTerm;
    const farAhead = Number((await statusOf(f.clientUrl)).header.revision) + 100_000;
    const before = await hashOf(f.clientUrl);
    const store = await emptyStore();
    const confState = { voters: [idOf(0), idOf(1), fId], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    const forge = (from: bigint, index: number): Message => ({
      type: MessageType.MsgSnap,
      to: fId,
      from,
      term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: { data: Buffer.from('{}'), metadata: { index, term: 1, confState } },
    });
    const attempts: Array<[string, bigint, number, RegExp]> = [
      ['stale, in the leader\'s name', idOf(lead), 1, /its index 1 is not ahead/],
      ['far ahead, from a member that is not the leader', idOf(other), farAhead, /is not the leader at term/],
      ['far ahead, in the leader\'s name, with data no snapshot has', idOf(lead), farAhead + 1, /its data is neither etcd-ts's nor etcd's/],
    ];
    for (const [what, from, index, reason] of attempts) {
      const res = await fetch(`http://127.0.0.1:${fPeerPort}/raft/snapshot`, {
        method: 'POST',
        headers: { 'X-Etcd-Cluster-ID': clusterId, 'X-Server-From': from.toString(16), 'X-Raft-To': fId.toString(16), 'X-Server-Version': '3.4.23' },
        body: snapshotBody(forge(from, index), store),
      });
      const text = await res.text();
      expect(await get(f.clientUrl, CATCH_UP.lastKey), what).toBe(`${CATCH_UP.lastValue}\n`);
      expect(await hashOf(f.clientUrl), what).toBe(before);
      expect(res.status, what).toBe(409);
      expect(text, what).toMatch(reason);
      const refusals = logLines(f, 'refused database snapshot').filter((l) => l['incoming-snapshot-index'] === index);
      expect(refusals, what).toHaveLength(1);
      expect(refusals[0], what).toMatchObject({ level: 'warn', 'remote-snapshot-sender-id': hex16(from) });
      expect(receivedStores(f), what).toEqual([]);
    }

    // received stores a crash left behind: one complete that raft never accepted, one cut short
    const snapDir = path.join(plan.slots[F]!.dataDir, 'member', 'snap');
    writeFileSync(path.join(snapDir, '00000000000000ff.snap.db'), store);
    writeFileSync(path.join(snapDir, '0000000000000100.snap.db.part'), store.subarray(0, 4096));
    for (let round = 0; round < 2; round++) {
      expect(await get(members[F]!.clientUrl, 'late/key')).toBe('written after the snapshot\n');
      expect(await get(members[F]!.clientUrl, CATCH_UP.lastKey)).toBe(`${CATCH_UP.lastValue}\n`);
      expect(await hashOf(members[F]!.clientUrl)).toBe(before);
      if (round === 0) await restartF();
    }
    expect(receivedStores(members[F]!)).toEqual([]);
    expect(logLines(members[F]!, 'removed a received snapshot store that raft never accepted')).toHaveLength(2);
    expect(existsSync(path.join(plan.slots[F]!.dataDir, 'member', 'leveldb'))).toBe(true);
    expect(await converged()).toBe(before);
    await Promise.all(members.map((m) => stopMember(m)));
  }, 120_000);
});
