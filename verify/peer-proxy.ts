// A fault-injecting TCP proxy in front of each member's peer port. Members
// advertise the proxy's address, so every byte between two members crosses the
// proxy of one of them. etcd's peer traffic is HTTP: each connection's first
// request names its sender (the X-Server-From header, or the member ID in the
// /raft/stream/<type>/<id> path), which tells the proxy which link
// (sender <-> owner) the connection belongs to. The ID is resolved to a member
// when bytes flow, not when the connection opens: members dial each other before
// the harness has learned their IDs, and those streams live on. Faults are per link and apply
// to live connections at once:
//
//   blackhole  bytes are silently discarded in both directions (a partition);
//              when healed, connections that lost bytes are reset so etcd
//              reconnects with clean HTTP framing
//   delay      bytes are forwarded after a fixed delay plus jitter, in order
//   drop       each chunk resets its connection with some probability
//              (messages in flight are lost, etcd redials)

import * as net from 'node:net';
import { Rng } from './rng.js';

export type LinkFault = { kind: 'blackhole' } | { kind: 'delay'; ms: number; jitterMs: number } | { kind: 'drop'; probability: number };

const MAX_HEADER_BYTES = 16 * 1024;

/** The fault table shared by all proxies of a cluster. */
export class Network {
  private readonly faults = new Map<string, LinkFault>();
  private readonly idToMember = new Map<string, number>();
  private readonly proxies: PeerProxy[] = [];
  readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** member IDs are decimal strings (as MemberList gives them) */
  setMemberId(member: number, id: string): void {
    for (const [k, v] of this.idToMember) if (v === member) this.idToMember.delete(k);
    this.idToMember.set(id, member);
  }

  memberOfHexId(hex: string): number | undefined {
    try {
      return this.idToMember.get(BigInt('0x' + hex).toString());
    } catch {
      return undefined;
    }
  }

  private static key(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  fault(a: number, b: number): LinkFault | null {
    return this.faults.get(Network.key(a, b)) ?? null;
  }

  /** A member whose every link is faulted is isolated: even unidentified traffic to it is. */
  ownerFault(owner: number, members: number): LinkFault | null {
    let f: LinkFault | null = null;
    for (let m = 0; m < members; m++) {
      if (m === owner) continue;
      const x = this.fault(owner, m);
      if (x === null) return null;
      f = x;
    }
    return f;
  }

  setFault(a: number, b: number, f: LinkFault): void {
    this.faults.set(Network.key(a, b), f);
  }

  /** Removes every fault and resets connections that lost bytes. */
  healAll(): void {
    this.faults.clear();
    for (const p of this.proxies) p.resetTainted();
  }

  register(p: PeerProxy): void {
    this.proxies.push(p);
  }

  get size(): number {
    return this.proxies.length;
  }

  describe(): string {
    return [...this.faults.entries()].map(([k, f]) => `${k}:${f.kind}`).join(' ') || 'healthy';
  }
}

/**
 * Delayed bytes of one direction of a connection, released strictly in order by
 * a single timer (one timer per chunk could fire out of order and corrupt the
 * stream: raft messages have no checksum, TCP is trusted to deliver in order).
 */
class DelayQueue {
  private readonly chunks: { at: number; data: Buffer }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly to: net.Socket) {}

  get idle(): boolean {
    return this.chunks.length === 0;
  }

  push(at: number, data: Buffer): void {
    const last = this.chunks[this.chunks.length - 1];
    this.chunks.push({ at: last !== undefined && last.at > at ? last.at : at, data });
    if (this.timer === null) this.pump();
  }

  private pump(): void {
    this.timer = null;
    const now = Date.now();
    while (this.chunks.length > 0 && this.chunks[0]!.at <= now) {
      const { data } = this.chunks.shift()!;
      if (!this.to.destroyed) this.to.write(data);
    }
    if (this.chunks.length > 0) this.timer = setTimeout(() => this.pump(), this.chunks[0]!.at - now);
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.chunks.length = 0;
  }
}

interface Conn {
  client: net.Socket;
  upstream: net.Socket;
  /** the sender's member ID (hex) from its first request, once read */
  senderHex: string | undefined;
  /** bytes were discarded: the HTTP stream is corrupt and must be reset on heal */
  tainted: boolean;
  /** delayed bytes towards upstream [0] and towards the client [1] */
  queues: [DelayQueue, DelayQueue];
}

export class PeerProxy {
  private server: net.Server | null = null;
  private readonly conns = new Set<Conn>();
  port = 0;

  constructor(
    readonly owner: number,
    private readonly targetPort: number,
    private readonly network: Network,
  ) {
    network.register(this);
  }

  async listen(port = 0): Promise<number> {
    const server = net.createServer((sock) => this.accept(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const conn: Conn = { client, upstream, senderHex: undefined, tainted: false, queues: [new DelayQueue(upstream), new DelayQueue(client)] };
    this.conns.add(conn);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      conn.queues[0].clear();
      conn.queues[1].clear();
      this.conns.delete(conn);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.setNoDelay(true);
    upstream.setNoDelay(true);

    let head = Buffer.alloc(0);
    let identified = false;
    const onClientData = (chunk: Buffer): void => {
      if (!identified) {
        head = Buffer.concat([head, chunk]);
        const text = head.toString('latin1');
        if (!text.includes('\r\n\r\n') && head.length < MAX_HEADER_BYTES) return;
        identified = true;
        conn.senderHex = senderHex(text);
        chunk = head;
      }
      this.deliver(conn, chunk, upstream, 0);
    };
    client.on('data', onClientData);
    upstream.on('data', (chunk: Buffer) => this.deliver(conn, chunk, client, 1));
  }

  private senderOf(conn: Conn): number | undefined {
    return conn.senderHex === undefined ? undefined : this.network.memberOfHexId(conn.senderHex);
  }

  private deliver(conn: Conn, chunk: Buffer, to: net.Socket, dir: 0 | 1): void {
    const sender = this.senderOf(conn);
    const fault = sender === undefined ? this.network.ownerFault(this.owner, this.network.size) : this.network.fault(this.owner, sender);
    const now = Date.now();
    if (fault?.kind === 'blackhole') {
      conn.tainted = true;
      return;
    }
    if (fault?.kind === 'drop' && this.network.rng.chance(fault.probability)) {
      conn.client.destroy();
      conn.upstream.destroy();
      return;
    }
    const delay = fault?.kind === 'delay' ? fault.ms + this.network.rng.uniform(0, fault.jitterMs) : 0;
    const queue = conn.queues[dir];
    // Bytes never overtake earlier delayed bytes, even once the delay is healed.
    if (delay === 0 && queue.idle) to.write(chunk);
    else queue.push(now + delay, chunk);
  }

  resetTainted(): void {
    for (const c of [...this.conns]) {
      if (c.tainted) {
        c.client.destroy();
        c.upstream.destroy();
        this.conns.delete(c);
      }
    }
  }

  /** Resets every connection touching `member` (used when it is removed). */
  resetLinksOf(member: number): void {
    for (const c of [...this.conns]) {
      if (this.owner === member || this.senderOf(c) === member) {
        c.client.destroy();
        c.upstream.destroy();
        this.conns.delete(c);
      }
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.conns.clear();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The sender's member ID in a connection's first request (header, or stream path as etcd's /raft/stream/message/<id>). */
function senderHex(text: string): string | undefined {
  const header = /^x-server-from:\s*([0-9a-f]+)\s*$/im.exec(text);
  if (header !== null) return header[1]!;
  return /^\S+ \/raft\/stream\/[\w-]+\/([0-9a-f]+)/i.exec(text)?.[1];
}
