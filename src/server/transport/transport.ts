// The peer transport: raft messages between members over HTTP/1.1 on the peer URLs.
//
// For every pair of members there are two long-lived streams, one per direction, each
// dialled by the member that reads it (as etcd's rafthttp does): we GET the peer's
// stream endpoint and it writes its messages for us on the response. Sending is a push
// onto a bounded per-peer queue that is written out once per turn of the event loop, so
// raft never waits on the network and one slow peer never holds up another. MsgSnap goes
// on a request of its own with the store's bytes streamed behind it.

import type http from 'node:http';
import type { Logger } from 'pino';
import { StepError } from '../../raft/index.js';
import { MessageType, messageTypeName, type Message } from '../../raftpb/index.js';
import { NOT_DECIDED } from '../cluster-version.js';
import { idHex, idHex16 } from '../ids.js';
import type { Member } from '../membership.js';
import type { TlsContext } from '../tls.js';
import { DropLog } from './drop-log.js';
import { Header, headerId, MEMBERS_PATH, peerHeaders, SNAPSHOT_PATH, STREAM_PATH_PREFIX, VERSION_PATH } from './headers.js';
import { LEADER_RPC_PREFIX, LeaderClient, type LeaderRpc, serveLeaderRpc } from './leader-rpc.js';
import { membersJson } from './members.js';
import { receiveSnapshot, sendSnapshot } from './snapshot.js';
import { PeerStatus, type PeerCounters } from './status.js';
import { StreamReader } from './stream-reader.js';
import { KEEPALIVE_INTERVAL_MS, StreamWriter } from './stream-writer.js';
import type { LocalMember, RaftHandle, SnapshotHooks } from './types.js';

export interface TransportOptions {
  readonly localId: bigint;
  readonly clusterId: bigint;
  /** peer TLS; its client side is used to dial https:// peer URLs */
  readonly tls?: TlsContext;
  readonly raft: RaftHandle;
  readonly snapshots: SnapshotHooks;
  readonly logger: Logger;
  /** server version, e.g. '3.4.23' */
  readonly version: string;
  /** the agreed cluster version, e.g. '3.4.0', undefined until decided */
  readonly clusterVersion: () => string | undefined;
  /** the cluster's members as this member knows them, for GET /members */
  readonly members: () => readonly Member[];
  /**
   * Members removed from the cluster (membership remembers them across restarts); their
   * streams are refused with 410 Gone so that they shut down. Peers passed to removePeer
   * are refused as well.
   */
  readonly isRemoved?: (id: bigint) => boolean;
  /** A peer answered that this member has been removed from the cluster. Called once. */
  readonly onRemoved?: () => void;
  /** What this member answers when it leads and a follower forwards a request. */
  readonly leaderRpc?: LeaderRpc;
}

interface Peer {
  readonly id: bigint;
  urls: readonly string[];
  /** next URL to try for a snapshot */
  urlIndex: number;
  readonly status: PeerStatus;
  readonly writer: StreamWriter;
  readonly reader: StreamReader;
  snapshotInFlight: boolean;
}

export class Transport {
  /** The HTTP handler to mount on every --listen-peer-urls listener (servePeer). */
  readonly handler: http.RequestListener;

  private readonly local: LocalMember;
  private readonly opts: TransportOptions;
  private readonly log: Logger;
  private readonly peers = new Map<bigint, Peer>();
  private readonly removed = new Set<bigint>();
  private readonly snapshotAborts = new Set<AbortController>();
  /** refusals already logged at warn, by reason and sender; a peer retrying is logged at debug */
  private readonly refusalsLogged = new Set<string>();
  /** messages dropped on arrival, logged a few at a time */
  private readonly drops: DropLog;
  private readonly keepAliveTimer: NodeJS.Timeout;
  private removedReported = false;
  private stopped = false;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.local = { localId: opts.localId, clusterId: opts.clusterId, version: opts.version };
    this.log = opts.logger;
    this.drops = new DropLog(opts.logger);
    this.handler = (req, res) => this.serve(req, res);
    this.keepAliveTimer = setInterval(() => {
      const now = Date.now();
      for (const p of this.peers.values()) p.writer.keepAlive(now);
    }, KEEPALIVE_INTERVAL_MS);
    this.keepAliveTimer.unref();
  }

  // ---------------------------------------------------------------- peers

  addPeer(id: bigint, urls: readonly string[]): void {
    if (this.stopped || id === this.local.localId) return;
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      this.updatePeer(id, urls);
      return;
    }
    this.removed.delete(id);
    const status = new PeerStatus(id, this.log);
    const writer = new StreamWriter(id, {
      localId: this.local.localId,
      log: this.log,
      status,
      onDropped: () => this.reportUnreachable(id),
    });
    const reader = new StreamReader(id, urls, {
      local: this.local,
      tls: this.opts.tls,
      log: this.log,
      status,
      drops: this.drops,
      deliver: (m) => this.deliver(id, m),
      onRemoved: () => this.reportRemoved(),
    });
    this.peers.set(id, { id, urls: [...urls], urlIndex: 0, status, writer, reader, snapshotInFlight: false });
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(id), 'remote-peer-urls': urls }, 'added remote peer');
    reader.start();
  }

  /** Forwards requests only the leader can answer to peer `id` (the leader). */
  forwardTo(id: bigint, timeoutMs: number): LeaderRpc {
    return new LeaderClient(id, this.peers.get(id)?.urls ?? [], peerHeaders(this.local, id), this.opts.tls, timeoutMs);
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    const p = this.peers.get(id);
    if (p === undefined || (p.urls.length === urls.length && p.urls.every((u, i) => u === urls[i]))) return;
    p.urls = [...urls];
    p.urlIndex = 0;
    p.reader.updateUrls(urls);
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(id), 'remote-peer-urls': urls }, 'updated remote peer');
  }

  removePeer(id: bigint): void {
    this.removed.add(id);
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    void p.reader.stop();
    p.writer.close();
    p.status.deactivate('removed from the cluster');
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'removed-remote-peer-id': idHex16(id) }, 'removed remote peer');
  }

  /** ms timestamp since which the peer is reachable (for health checks); undefined while it is not. */
  /** Whether a message to peer `id` would go out now: its stream for our messages is up. */
  canSendTo(id: bigint): boolean {
    return this.peers.get(id)?.writer.connected === true;
  }

  activeSince(id: bigint): number | undefined {
    return this.peers.get(id)?.status.activeSince;
  }

  /** Byte and failure counters for a peer (etcd_network_peer_* metrics), undefined for an unknown peer. */
  peerCounters(id: bigint): Readonly<PeerCounters> | undefined {
    return this.peers.get(id)?.status.counters;
  }

  // ---------------------------------------------------------------- sending

  /** Never blocks, never throws: a message that cannot be queued is dropped and raft told. */
  send(msgs: readonly Message[]): void {
    if (this.stopped) return;
    let unreachable: Set<bigint> | undefined;
    for (const m of msgs) {
      try {
        if (m.to === this.local.localId) continue;
        const p = this.peers.get(m.to);
        if (p === undefined) {
          this.log.debug({ type: messageTypeName(m.type), 'remote-peer-id': idHex16(m.to) }, 'ignored message send request; unknown remote peer target');
          continue;
        }
        if (m.type === MessageType.MsgSnap) {
          this.startSnapshot(p, m);
          continue;
        }
        if (!p.writer.enqueue(m)) {
          if (unreachable === undefined || !unreachable.has(m.to)) {
            this.log.debug(
              { 'message-type': messageTypeName(m.type), 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(m.to), 'remote-peer-active': p.status.activeSince !== undefined },
              p.writer.connected ? 'dropped internal Raft message since sending buffer is full (overloaded network)' : 'dropped internal Raft message since the stream to the remote peer is down',
            );
          }
          (unreachable ??= new Set()).add(m.to);
        }
      } catch (err) {
        this.log.error({ 'remote-peer-id': idHex16(m.to), error: (err as Error).message }, 'failed to send raft message');
      }
    }
    if (unreachable !== undefined) for (const id of unreachable) this.reportUnreachable(id);
  }

  private startSnapshot(p: Peer, m: Message): void {
    if (p.snapshotInFlight || p.urls.length === 0) {
      this.reportSnapshot(p.id, 'failure');
      return;
    }
    p.snapshotInFlight = true;
    const url = p.urls[p.urlIndex % p.urls.length]!;
    const abort = new AbortController();
    this.snapshotAborts.add(abort);
    const done = (status: 'finish' | 'failure'): void => {
      p.snapshotInFlight = false;
      this.snapshotAborts.delete(abort);
      this.reportSnapshot(p.id, status);
    };
    sendSnapshot({ local: this.local, tls: this.opts.tls, url, m, hooks: this.opts.snapshots, counters: p.status.counters, log: this.log }, abort.signal).then(
      () => done('finish'),
      (err: Error) => {
        p.urlIndex++;
        this.log.warn({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(p.id), 'remote-url': url, error: err.message }, 'failed to send database snapshot');
        done('failure');
      },
    );
  }

  // ---------------------------------------------------------------- raft callbacks

  private deliver(from: bigint, m: Message): void {
    if (this.stopped) return;
    if (m.to !== this.local.localId || m.from !== from) {
      this.log.warn(
        { 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(from), 'message-to': idHex16(m.to), 'message-from': idHex16(m.from), 'message-type': messageTypeName(m.type) },
        'dropped raft message not addressed from the remote peer to the local member',
      );
      return;
    }
    try {
      this.opts.raft.process(m);
    } catch (err) {
      if (err instanceof StepError) {
        this.drops.note(from, err.reason, 'dropped a raft message from the remote peer that raft refused', {
          'local-member-id': idHex16(this.local.localId),
          'message-type': messageTypeName(m.type),
          error: err.message,
        });
        return;
      }
      this.log.error({ 'remote-peer-id': idHex16(from), 'message-type': messageTypeName(m.type), error: (err as Error).message }, 'failed to process raft message');
    }
  }

  private reportUnreachable(id: bigint): void {
    if (this.stopped) return;
    try {
      this.opts.raft.reportUnreachable(id);
    } catch (err) {
      this.log.error({ 'remote-peer-id': idHex16(id), error: (err as Error).message }, 'failed to report unreachable peer');
    }
  }

  private reportSnapshot(id: bigint, status: 'finish' | 'failure'): void {
    if (this.stopped) return;
    try {
      this.opts.raft.reportSnapshot(id, status);
    } catch (err) {
      this.log.error({ 'remote-peer-id': idHex16(id), error: (err as Error).message }, 'failed to report snapshot status');
    }
  }

  private reportRemoved(): void {
    if (this.removedReported || this.stopped) return;
    this.removedReported = true;
    this.opts.onRemoved?.();
  }

  // ---------------------------------------------------------------- serving

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader('X-Etcd-Cluster-ID', idHex(this.local.clusterId));
    res.setHeader('X-Server-Version', this.local.version);
    const path = (req.url ?? '').split('?')[0]!;
    try {
      if (path.startsWith(STREAM_PATH_PREFIX)) {
        if (!allowMethod(req, res, 'GET')) return;
        this.serveStream(req, res, path.slice(STREAM_PATH_PREFIX.length));
      } else if (path === SNAPSHOT_PATH) {
        if (!allowMethod(req, res, 'POST')) return;
        this.serveSnapshot(req, res);
      } else if (path === MEMBERS_PATH) {
        if (!allowMethod(req, res, 'GET')) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(membersJson(this.opts.members()));
      } else if (path.startsWith(LEADER_RPC_PREFIX)) {
        if (!allowMethod(req, res, 'POST')) return;
        if (this.admit(req, res) === undefined) return;
        void serveLeaderRpc(this.opts.leaderRpc, req, res);
      } else if (path === VERSION_PATH) {
        if (!allowMethod(req, res, 'GET')) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ etcdserver: this.local.version, etcdcluster: this.opts.clusterVersion() ?? NOT_DECIDED }));
      } else {
        textReply(res, 404, '404 page not found');
      }
    } catch (err) {
      this.log.error({ path, error: (err as Error).message }, 'failed to serve peer request');
      if (!res.headersSent) textReply(res, 500, 'internal error');
      else res.destroy();
    }
  }

  /**
   * Checks the headers every raft request carries; answers the refusal itself and returns
   * undefined, or returns the sending peer.
   */
  private admit(req: http.IncomingMessage, res: http.ServerResponse): Peer | undefined {
    const remoteAddr = remoteAddress(req);
    if (this.stopped) {
      textReply(res, 503, 'the member is stopping');
      return undefined;
    }
    const remoteCluster = headerId(req.headers[Header.clusterId]);
    const from = headerId(req.headers[Header.from]);
    const sender = String(req.headers[Header.from] ?? '');
    if (remoteCluster !== this.local.clusterId) {
      this.refuse(res, 412, 'cluster ID mismatch', sender, 'request cluster ID mismatch', {
        'local-member-id': idHex16(this.local.localId),
        'local-member-cluster-id': idHex16(this.local.clusterId),
        'local-member-server-version': this.local.version,
        'remote-addr': remoteAddr,
        'remote-peer-id': from !== undefined ? idHex16(from) : sender,
        'remote-peer-server-version': String(req.headers[Header.version] ?? ''),
        'remote-peer-cluster-id': remoteCluster !== undefined ? idHex16(remoteCluster) : String(req.headers[Header.clusterId] ?? ''),
      });
      return undefined;
    }
    if (from === undefined) {
      textReply(res, 400, `missing or invalid ${Header.from} header`);
      return undefined;
    }
    if (this.removed.has(from) || this.opts.isRemoved?.(from) === true) {
      this.refuse(res, 410, 'removed member', sender, 'rejected stream from remote peer because it was removed', {
        'local-member-id': idHex16(this.local.localId),
        'remote-peer-id-from': idHex16(from),
        'remote-addr': remoteAddr,
      });
      return undefined;
    }
    const peer = this.peers.get(from);
    if (peer === undefined) {
      this.refuse(res, 404, 'error sender not found', sender, 'failed to find remote peer in cluster', {
        'local-member-id': idHex16(this.local.localId),
        'remote-peer-id-from': idHex16(from),
        'remote-addr': remoteAddr,
        'cluster-id': idHex16(this.local.clusterId),
      });
      return undefined;
    }
    const to = headerId(req.headers[Header.to]);
    if (to !== this.local.localId) {
      this.refuse(res, 412, 'to field mismatch', sender, 'rejected request from remote peer addressed to another member', {
        'local-member-id': idHex16(this.local.localId),
        'remote-peer-id-from': idHex16(from),
        'remote-addr': remoteAddr,
        'raft-to': String(req.headers[Header.to] ?? ''),
      });
      return undefined;
    }
    for (const key of this.refusalsLogged) if (key.endsWith(`/${sender}`)) this.refusalsLogged.delete(key);
    return peer;
  }

  /** Answers a refusal; logs it at warn the first time for this sender and reason, then at debug. */
  private refuse(res: http.ServerResponse, status: number, text: string, sender: string, msg: string, fields: Record<string, unknown>): void {
    const key = `${msg}/${sender}`;
    if (this.refusalsLogged.has(key)) {
      this.log.debug(fields, msg);
    } else {
      // Senders are not authenticated here; never let their variety grow the set without bound.
      if (this.refusalsLogged.size >= 1024) this.refusalsLogged.clear();
      this.refusalsLogged.add(key);
      this.log.warn(fields, msg);
    }
    textReply(res, status, text);
  }

  private serveStream(req: http.IncomingMessage, res: http.ServerResponse, pathId: string): void {
    const peer = this.admit(req, res);
    if (peer === undefined) return;
    if (pathId !== idHex(peer.id)) {
      textReply(res, 400, 'stream path does not match the sender');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.flushHeaders();
    peer.writer.attach(res, remoteAddress(req));
  }

  private serveSnapshot(req: http.IncomingMessage, res: http.ServerResponse): void {
    const peer = this.admit(req, res);
    if (peer === undefined) {
      req.resume();
      return;
    }
    void receiveSnapshot(req, res, {
      localId: this.local.localId,
      from: peer.id,
      hooks: this.opts.snapshots,
      check: (m) => this.opts.raft.check(m),
      counters: peer.status.counters,
      log: this.log,
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Closes every stream and snapshot transfer; raft hears nothing from the transport afterwards. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.keepAliveTimer);
    for (const a of this.snapshotAborts) a.abort();
    const closing: Promise<void>[] = [];
    for (const p of this.peers.values()) {
      closing.push(p.reader.stop());
      p.writer.close();
    }
    this.peers.clear();
    await Promise.all(closing);
  }
}

function allowMethod(req: http.IncomingMessage, res: http.ServerResponse, method: string): boolean {
  if (req.method === method) return true;
  res.setHeader('Allow', method);
  textReply(res, 405, 'Method Not Allowed');
  return false;
}

function textReply(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}

function remoteAddress(req: http.IncomingMessage): string {
  const s = req.socket;
  if (s.remoteAddress === undefined) return '';
  return s.remoteFamily === 'IPv6' ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}
