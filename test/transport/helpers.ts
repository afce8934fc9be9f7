// Shared pieces for the transport tests: a raft stand-in that records what the transport
// hands it, transports served on 127.0.0.1 through the real peer listener, a logger whose
// lines can be read, and a throwaway PKI made with the openssl CLI.

import { makePki as makeListenerPki } from '../listener/helpers.js';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { EntryType, MessageType, encodeMessage, type Message } from '../../src/raftpb/index.js';
import { servePeer, type Listener } from '../../src/server/listener/index.js';
import type { Member } from '../../src/server/membership.js';
import type { TlsContext } from '../../src/server/tls.js';
import { Transport, type LeaderRpc, type RaftHandle, type SnapshotHooks } from '../../src/server/transport/index.js';
import type { ApplyWait } from '../../src/server/transport/leader-rpc.js';
import type { ProberTimings } from '../../src/server/transport/prober.js';

export type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A pino logger that keeps every line it writes, parsed. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** Records what the transport delivers and reports. */
export class FakeRaft implements RaftHandle {
  readonly received: Message[] = [];
  readonly unreachable: bigint[] = [];
  readonly snapshotReports: Array<{ id: bigint; status: 'finish' | 'failure' }> = [];

  /** what check() answers; a test sets it to make raft refuse messages */
  refuse: (m: Message) => Error | undefined = () => undefined;

  process(m: Message): void {
    const err = this.refuse(m);
    if (err !== undefined) throw err;
    this.received.push(m);
  }
  check(m: Message): Error | undefined {
    return this.refuse(m);
  }
  reportUnreachable(id: bigint): void {
    this.unreachable.push(id);
  }
  reportSnapshot(id: bigint, status: 'finish' | 'failure'): void {
    this.snapshotReports.push({ id, status });
  }
}

export const noSnapshots: SnapshotHooks = {
  prepare: () => Promise.reject(new Error('no snapshot in this test')),
  receive: () => Promise.reject(new Error('no snapshot in this test')),
};

export interface Node {
  id: bigint;
  url: string;
  transport: Transport;
  raft: FakeRaft;
  lines: LogLine[];
  removedCalls: number;
  listener: Listener;
}

export interface NodeOptions {
  id: bigint;
  clusterId?: bigint;
  tls?: TlsContext;
  snapshots?: SnapshotHooks;
  members?: () => Member[];
  /** serve on this URL (e.g. a fixed port to come back on); default http(s)://127.0.0.1:0 */
  url?: string;
  /** the URLs the member advertises in X-PeerURLs (none by default) */
  peerUrls?: readonly string[];
  leaderRpc?: LeaderRpc;
  applyWait?: ApplyWait;
  probing?: ProberTimings;
  onPeerRoundTrip?: (id: bigint, seconds: number) => void;
}

/** A transport mounted on a real peer listener. Close with stopNode. */
export async function startNode(o: NodeOptions): Promise<Node> {
  const { logger, lines } = captureLogger();
  const raft = new FakeRaft();
  const node = { id: o.id, raft, lines, removedCalls: 0 } as Node;
  node.transport = new Transport({
    localId: o.id,
    clusterId: o.clusterId ?? 0xc1n,
    ...(o.tls !== undefined ? { tls: o.tls } : {}),
    raft,
    snapshots: o.snapshots ?? noSnapshots,
    logger,
    version: '3.4.23',
    clusterVersion: () => '3.4.0',
    members: o.members ?? (() => []),
    onRemoved: () => node.removedCalls++,
    ...(o.peerUrls !== undefined ? { peerUrls: o.peerUrls } : {}),
    ...(o.leaderRpc !== undefined ? { leaderRpc: o.leaderRpc } : {}),
    ...(o.applyWait !== undefined ? { applyWait: o.applyWait } : {}),
    ...(o.probing !== undefined ? { probing: o.probing } : {}),
    ...(o.onPeerRoundTrip !== undefined ? { onPeerRoundTrip: o.onPeerRoundTrip } : {}),
  });
  const url = o.url ?? `${o.tls !== undefined ? 'https' : 'http'}://127.0.0.1:0`;
  node.listener = await servePeer(new URL(url), o.tls, node.transport.handler, logger);
  node.url = node.listener.url;
  return node;
}

export async function stopNode(n: Node): Promise<void> {
  await n.transport.stop();
  await n.listener.close();
}

/** Makes every node a peer of every other. */
export function connectAll(nodes: readonly Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, [b.url]);
}

export function app(from: bigint, to: bigint, index: number, data: Uint8Array = new Uint8Array(0)): Message {
  return {
    type: MessageType.MsgApp,
    to,
    from,
    term: 1,
    logTerm: 1,
    index,
    entries: data.length > 0 ? [{ term: 1, index: index + 1, type: EntryType.Normal, data }] : [],
    commit: index,
    reject: false,
    rejectHint: 0,
  };
}

export function heartbeat(from: bigint, to: bigint, commit = 0): Message {
  return { type: MessageType.MsgHeartbeat, to, from, term: 1, logTerm: 0, index: 0, entries: [], commit, reject: false, rejectHint: 0 };
}

/** Polls until cond() holds; fails the test with `what` after timeoutMs. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function hasLine(lines: readonly LogLine[], msg: string, fields: Record<string, unknown> = {}): boolean {
  return lines.some((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
}

export interface TestPki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** a certificate from a CA the members do not trust */
  rogueCert: string;
  rogueKey: string;
}

/** The listener tests' CA and certificates (IP SAN 127.0.0.1), one certificate per member role. */
export function makePki(): TestPki {
  const p = makeListenerPki();
  return { dir: p.dir, ca: p.ca, cert: p.serverCert, key: p.serverKey, rogueCert: p.rogueCert, rogueKey: p.rogueKey };
}

/** The body the leader POSTs, as etcd's snapshot sender: the MsgSnap framed as on the message stream, then the database. */
export function snapshotBody(m: Message, db: Buffer): Buffer {
  const head = Buffer.from(encodeMessage(m));
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(head.length));
  return Buffer.concat([len, head, db]);
}
