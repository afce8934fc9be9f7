import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType, type Message, type Snapshot } from '../../src/raftpb/index.js';
import { SnapshotRefused, type SnapshotHooks } from '../../src/server/transport/index.js';
import { connectAll, hasLine, snapshotBody, startNode, stopNode, waitFor, type Node } from './helpers.js';

const L = 0x1n; // leader
const F = 0x2n; // follower

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stopNode(n);
});

function msgSnap(index: number): Message {
  const snapshot: Snapshot = {
    data: Buffer.from('{"membership":{}}'),
    metadata: { index, term: 3, confState: { voters: [L, F], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
  };
  return { type: MessageType.MsgSnap, to: F, from: L, term: 3, logTerm: 0, index: 0, entries: [], commit: 0, snapshot, reject: false, rejectHint: 0 };
}

/** Serves `store` in uneven chunks, as a file read would. */
function leaderHooks(store: Buffer): SnapshotHooks {
  return {
    prepare: async (m) => ({
      message: m,
      size: store.length,
      stream: (async function* () {
        for (let off = 0; off < store.length; off += 100_000 + (off % 7)) yield store.subarray(off, Math.min(store.length, off + 100_000 + (off % 7)));
      })(),
    }),
    receive: () => Promise.reject(new Error('leader does not receive')),
  };
}

/** A follower whose receive hook reads the store to the end and records what it got (or the error it ended with). */
async function recordingFollower(): Promise<{ node: Node; got: Array<{ m: Message; bytes: number } | { error: string }> }> {
  const got: Array<{ m: Message; bytes: number } | { error: string }> = [];
  const node = await startNode({
    id: F,
    snapshots: {
      prepare: () => Promise.reject(new Error('follower does not send')),
      async receive(m, stream) {
        let bytes = 0;
        try {
          for await (const c of stream) bytes += c.length;
        } catch (err) {
          got.push({ error: (err as Error).message });
          throw err;
        }
        got.push({ m, bytes });
      },
    },
  });
  nodes.push(node);
  return { node, got };
}


function postSnapshot(f: Node, body: Buffer): Promise<Response> {
  return fetch(`${f.url}/raft/snapshot`, {
    method: 'POST',
    headers: { 'X-Etcd-Cluster-ID': 'c1', 'X-Server-From': L.toString(16), 'X-Server-Version': '3.4.23', 'X-Min-Cluster-Version': '3.0.0' },
    body,
  });
}

describe('snapshots', () => {
  it('delivers a multi-MB store intact to the receive hook and reports finish; the transport never steps the MsgSnap itself', async () => {
    const store = randomBytes(12 * 1024 * 1024);
    let got: { m: Message; digest: string; bytes: number; stepped: number } | undefined;
    const f = await startNode({
      id: F,
      snapshots: {
        prepare: () => Promise.reject(new Error('follower does not send')),
        async receive(m, stream) {
          const h = createHash('sha256');
          let bytes = 0;
          for await (const c of stream) {
            h.update(c);
            bytes += c.length;
          }
          got = { m, digest: h.digest('hex'), bytes, stepped: f.raft.received.length };
        },
      },
    });
    nodes.push(f);
    const l = await startNode({ id: L, snapshots: leaderHooks(store) });
    nodes.push(l);
    connectAll([l, f]);

    l.transport.send([msgSnap(42)]);
    await waitFor('snapshot report', () => l.raft.snapshotReports.length === 1, 60_000);
    expect(l.raft.snapshotReports).toEqual([{ id: F, status: 'finish' }]);
    expect(got!.bytes).toBe(store.length);
    expect(got!.digest).toBe(createHash('sha256').update(store).digest('hex'));
    expect(got!.m.snapshot!.metadata.index).toBe(42);
    // stepping it is the hook's job, once the store is saved (the server's receiveSnapshot)
    expect(got!.stepped).toBe(0);
    expect(f.raft.received).toEqual([]);
    expect(hasLine(f.lines, 'received and installed database snapshot', { 'incoming-snapshot-index': 42 })).toBe(true);
    expect(l.transport.peerCounters(F)!.sentBytes).toBeGreaterThan(store.length);
  });

  it('reports failure and does not step the MsgSnap when the follower cannot install it', async () => {
    const f = await startNode({
      id: F,
      snapshots: {
        prepare: () => Promise.reject(new Error('follower does not send')),
        async receive(_m, stream) {
          for await (const _ of stream) break;
          throw new Error('disk full');
        },
      },
    });
    nodes.push(f);
    const l = await startNode({ id: L, snapshots: leaderHooks(randomBytes(3 * 1024 * 1024)) });
    nodes.push(l);
    connectAll([l, f]);
    l.transport.send([msgSnap(7)]);
    await waitFor('snapshot report', () => l.raft.snapshotReports.length === 1, 60_000);
    expect(l.raft.snapshotReports).toEqual([{ id: F, status: 'failure' }]);
    expect(f.raft.received).toEqual([]);
    expect(hasLine(f.lines, 'failed to receive snapshot', { error: 'disk full' })).toBe(true);
    expect(hasLine(l.lines, 'failed to send database snapshot')).toBe(true);
  });

  it('does not take in the store of a MsgSnap that raft refuses (a term past its limit, say)', async () => {
    let received = 0;
    const f = await startNode({
      id: F,
      snapshots: {
        prepare: () => Promise.reject(new Error('follower does not send')),
        async receive() {
          received++;
        },
      },
    });
    nodes.push(f);
    f.raft.refuse = (m) => (m.term === 3 ? new Error('raft: term 3 is past the limit') : undefined);
    const l = await startNode({ id: L, snapshots: leaderHooks(randomBytes(64 * 1024)) });
    nodes.push(l);
    connectAll([l, f]);
    l.transport.send([msgSnap(7)]);
    await waitFor('snapshot report', () => l.raft.snapshotReports.length === 1, 60_000);
    expect(l.raft.snapshotReports).toEqual([{ id: F, status: 'failure' }]);
    expect(received).toBe(0);
    expect(f.raft.received).toEqual([]);
    expect(hasLine(f.lines, 'failed to receive snapshot', { error: 'raft refuses the snapshot message: raft: term 3 is past the limit' })).toBe(true);
  });

  it('reports failure when the follower is down, and when the store stream is shorter than announced', async () => {
    const l = await startNode({
      id: L,
      snapshots: {
        prepare: async (m) => ({ message: m, size: 1000, stream: (async function* () { yield Buffer.alloc(10); })() }),
        receive: () => Promise.reject(new Error('leader does not receive')),
      },
    });
    nodes.push(l);
    l.transport.addPeer(F, ['http://127.0.0.1:1']);
    l.transport.send([msgSnap(5)]);
    await waitFor('snapshot report', () => l.raft.snapshotReports.length === 1);
    expect(l.raft.snapshotReports).toEqual([{ id: F, status: 'failure' }]);

    const received: number[] = [];
    const f = await startNode({
      id: F,
      snapshots: {
        prepare: () => Promise.reject(new Error('follower does not send')),
        async receive(_m, stream) {
          for await (const c of stream) received.push(c.length);
        },
      },
    });
    nodes.push(f);
    l.transport.updatePeer(F, [f.url]);
    f.transport.addPeer(L, [l.url]);
    l.transport.send([msgSnap(6)]);
    await waitFor('second report', () => l.raft.snapshotReports.length === 2);
    expect(l.raft.snapshotReports[1]).toEqual({ id: F, status: 'failure' });
    expect(f.raft.received).toEqual([]);
  });

  it('refuses a body whose message is cut or not a MsgSnap with 400; a body cut in the database is an error to the hook, never its end', async () => {
    const { node: f, got } = await recordingFollower();
    f.transport.addPeer(L, ['http://127.0.0.1:1']);
    const db = randomBytes(300_000);
    const good = snapshotBody(msgSnap(9), db);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['cut in the message', good.subarray(0, 20), /failed to decode raft message/],
      ['not a MsgSnap', snapshotBody({ ...msgSnap(9), type: MessageType.MsgApp }, db), /wrong raft message type/],
    ];
    for (const [what, body, reason] of cases) {
      const res = await postSnapshot(f, body);
      expect(res.status, what).toBe(400);
      expect(await res.text(), what).toMatch(reason);
      const line = f.lines.filter((l) => l.msg === 'failed to receive snapshot').at(-1)!;
      expect(line['remote-snapshot-sender-id']).toBe(L.toString(16).padStart(16, '0'));
      expect(String(line.error)).toMatch(reason);
    }
    expect(got).toEqual([]);

    // The connection drops in the middle of the chunked body: the database stream throws.
    const port = Number(new URL(f.url).port);
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        const half = good.subarray(0, good.length / 2);
        s.write(
          `POST /raft/snapshot HTTP/1.1\r\nHost: x\r\nX-Etcd-Cluster-ID: c1\r\nX-Server-From: ${L.toString(16)}\r\nX-Server-Version: 3.4.23\r\nTransfer-Encoding: chunked\r\n\r\n${half.length.toString(16)}\r\n`,
        );
        s.write(half, () => setTimeout(() => s.destroy(), 200));
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    await waitFor('the hook sees the cut', () => got.length === 1);
    expect('error' in got[0]!).toBe(true);

    // the same body whole goes through
    const res = await postSnapshot(f, good);
    expect(res.status).toBe(204);
    expect(got.at(-1)).toMatchObject({ bytes: db.length });
    expect(f.raft.received).toEqual([]);
  });

  it('answers 409 when the member refuses the snapshot, logs it once with sender and index, and the leader reports failure', async () => {
    const f = await startNode({
      id: F,
      snapshots: {
        prepare: () => Promise.reject(new Error('follower does not send')),
        receive: () => Promise.reject(new SnapshotRefused('its index 5 is not ahead of this member')),
      },
    });
    nodes.push(f);
    const l = await startNode({ id: L, snapshots: leaderHooks(randomBytes(2 * 1024 * 1024)) });
    nodes.push(l);
    connectAll([l, f]);
    l.transport.send([msgSnap(5)]);
    await waitFor('snapshot report', () => l.raft.snapshotReports.length === 1, 60_000);
    expect(l.raft.snapshotReports).toEqual([{ id: F, status: 'failure' }]);
    const refusals = f.lines.filter((x) => x.msg === 'refused database snapshot');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 40, 'remote-snapshot-sender-id': L.toString(16).padStart(16, '0'), 'incoming-snapshot-index': 5 });
    expect(hasLine(l.lines, 'failed to send database snapshot')).toBe(true);
    expect(f.raft.received).toEqual([]);
  });
});
