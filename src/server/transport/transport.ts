// The peer transport: etcd 3.4's rafthttp, on the peer URLs.
//
// For every pair of members there are two long-lived streams in each direction, each
// dialled by the member that reads it: we GET the peer's /raft/stream/msgapp/<our id>
// and /raft/stream/message/<our id>, and it writes its messages for us on the responses
// (MsgApp on the first, in etcd's msgappv2 encoding; everything else on the second).
// While neither is up, messages go one per POST /raft (the pipeline). Sending is a push
// onto a bounded per-peer queue written out once per turn of the event loop, so raft
// never waits on the network and one slow peer never holds up another. MsgSnap goes on
// a request of its own (POST /raft/snapshot) with the database streamed behind it.

import type http from 'node:http';
import type { Logger } from 'pino';
import { StepError } from '../../raft/index.js';
import { decodeMessage, MessageType, messageTypeName, type Message } from '../../raftpb/index.js';
import { NOT_DECIDED } from '../cluster-version.js';
import { idHex, idHex16, parseIdHex } from '../ids.js';
import type { Member } from '../membership.js';
import { probe } from '../probe.js';
import type { TlsContext } from '../tls.js';
import { readBody } from './dial.js';
import { DropLog } from './drop-log.js';
import {
  checkCompatibility,
  Header,
  headerId,
  MEMBERS_PATH,
  PROBING_PATH,
  RAFT_PATH,
  Refusal,
  SNAPSHOT_PATH,
  STREAM_PATH_PREFIX,
  streamTypeOf,
  VERSION_PATH,
} from './headers.js';
import { HASHKV_PATH, type PeerHashKV, serveHashKV } from './hashkv.js';
import { type ApplyWait, isLeaderRpcPath, LeaderClient, type LeaderRpc, serveLeaderRpc } from './leader-rpc.js';
import { membersJson } from './members.js';
import { Pipeline } from './pipeline.js';
import { ETCD_PROBER_TIMINGS, PeerProber, type ProberTimings } from './prober.js';
import { Remote, peerUrlsFromHeader } from './remote.js';
import { receiveSnapshot, sendSnapshot } from './snapshot.js';
import { PeerStatus, type PeerCounters } from './status.js';
import { MAX_MESSAGE_BYTES, type StreamType } from './stream-codec.js';
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
  /** this member's advertised peer URLs (X-PeerURLs on every request) */
  readonly peerUrls?: readonly string[];
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
  /** etcd's ApplyWait, which the lease paths wait on before they answer */
  readonly applyWait?: ApplyWait;
  /** The store's hash, for peers running etcd's corruption check (GET /members/hashkv). */
  readonly hashKV?: (revision: number) => Promise<PeerHashKV>;
  /** A peer's smoothed round trip, in seconds, as its prober reports it (etcd_network_peer_round_trip_time_seconds). */
  readonly onPeerRoundTrip?: (id: bigint, seconds: number) => void;
  /** How often peers are probed and the probes reported; etcd's timings unless a test shortens them. */
  readonly probing?: ProberTimings;
}

const STREAM_TYPES: readonly StreamType[] = ['msgappv2', 'message'];

interface Peer {
  readonly id: bigint;
  urls: readonly string[];
  /** next URL to try for a snapshot */
  urlIndex: number;
  readonly status: PeerStatus;
  readonly writers: Readonly<Record<StreamType, StreamWriter>>;
  readonly readers: Readonly<Record<StreamType, StreamReader>>;
  readonly pipeline: Pipeline;
  readonly prober: PeerProber;
  snapshotInFlight: boolean;
}

export class Transport {
  /** The HTTP handler to mount on every --listen-peer-urls listener (servePeer). */
  readonly handler: http.RequestListener;

  private readonly local: LocalMember;
  private readonly opts: TransportOptions;
  private readonly log: Logger;
  private readonly peers = new Map<bigint, Peer>();
  /** senders that are not peers yet, answered by the pipeline alone (remote.ts) */
  private readonly remotes = new Map<bigint, Remote>();
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
    this.local = { localId: opts.localId, clusterId: opts.clusterId, version: opts.version, peerUrls: opts.peerUrls ?? [] };
    this.log = opts.logger;
    this.drops = new DropLog(opts.logger);
    this.handler = (req, res) => this.serve(req, res);
    this.keepAliveTimer = setInterval(() => {
      const now = Date.now();
      for (const p of this.peers.values()) for (const t of STREAM_TYPES) p.writers[t].keepAlive(now);
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
    this.dropRemote(id);
    const status = new PeerStatus(id, this.log);
    const writer = (t: StreamType): StreamWriter =>
      new StreamWriter(id, t, { localId: this.local.localId, log: this.log, status, onDropped: () => this.reportUnreachable(id) });
    const reader = (t: StreamType): StreamReader =>
      new StreamReader(id, t, urls, {
        local: this.local,
        tls: this.opts.tls,
        log: this.log,
        status,
        drops: this.drops,
        deliver: (m) => this.deliver(id, m),
        onRemoved: () => this.reportRemoved(),
      });
    const peer: Peer = {
      id,
      urls: [...urls],
      urlIndex: 0,
      status,
      writers: { msgappv2: writer('msgappv2'), message: writer('message') },
      readers: { msgappv2: reader('msgappv2'), message: reader('message') },
      pipeline: new Pipeline(id, {
        local: this.local,
        tls: this.opts.tls,
        log: this.log,
        status,
        urls: () => peer.urls,
        onFailed: () => this.reportUnreachable(id),
        onRemoved: () => this.reportRemoved(),
      }),
      prober: new PeerProber(id, () => peer.urls, {
        tls: this.opts.tls,
        log: this.log,
        timings: this.opts.probing ?? ETCD_PROBER_TIMINGS,
        onRoundTrip: (seconds) => this.opts.onPeerRoundTrip?.(id, seconds),
      }),
      snapshotInFlight: false,
    };
    this.peers.set(id, peer);
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(id), 'remote-peer-urls': urls }, 'added remote peer');
    for (const t of STREAM_TYPES) peer.readers[t].start();
  }

  /** Forwards requests only the leader can answer to peer `id` (the leader). */
  forwardTo(id: bigint, timeoutMs: number): LeaderRpc {
    return new LeaderClient(id, this.peers.get(id)?.urls ?? [], this.opts.tls, timeoutMs);
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    const p = this.peers.get(id);
    if (p === undefined || (p.urls.length === urls.length && p.urls.every((u, i) => u === urls[i]))) return;
    p.urls = [...urls];
    p.urlIndex = 0;
    for (const t of STREAM_TYPES) p.readers[t].updateUrls(urls);
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(id), 'remote-peer-urls': urls }, 'updated remote peer');
  }

  removePeer(id: bigint): void {
    this.removed.add(id);
    this.dropRemote(id);
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    // its streams wind down on their own; a failure there changes nothing for the removal
    this.closePeer(p).catch((err: Error) => this.log.warn({ 'remote-peer-id': idHex16(id), error: err.message }, 'closing the streams of a removed peer failed'));
    p.status.deactivate('removed from the cluster');
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'removed-remote-peer-id': idHex16(id) }, 'removed remote peer');
  }

  /**
   * etcd's AddRemote, from a request's X-Server-From and X-PeerURLs: a sender this member
   * does not know yet (not a peer, not removed) can be answered at the URLs it names.
   */
  private addRemoteFrom(req: http.IncomingMessage): void {
    const id = headerId(req.headers[Header.from]);
    if (this.stopped || id === undefined || id === this.local.localId || this.peers.has(id) || this.remotes.has(id) || this.isRemoved(id)) return;
    const urls = peerUrlsFromHeader(req.headers[Header.peerUrls]);
    if (urls === undefined) return;
    this.remotes.set(
      id,
      new Remote(id, urls, {
        local: this.local,
        tls: this.opts.tls,
        log: this.log,
        onFailed: () => this.reportUnreachable(id),
        onRemoved: () => this.reportRemoved(),
      }),
    );
    this.log.info({ 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(id), 'remote-peer-urls': urls }, 'added new remote peer');
  }

  private dropRemote(id: bigint): void {
    this.remotes.get(id)?.stop();
    this.remotes.delete(id);
  }

  /** Whether a message to peer `id` would go out on a stream now (the pipeline is a fallback). */
  canSendTo(id: bigint): boolean {
    return this.peers.get(id)?.writers.message.connected === true;
  }

  /** ms timestamp since which the peer is reachable (for health checks); undefined while it is not. */
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
        const remote = p === undefined ? this.remotes.get(m.to) : undefined;
        // a snapshot goes only to a peer: raft sends one only to a member of its configuration
        if (remote !== undefined && m.type !== MessageType.MsgSnap) {
          if (!remote.send(m)) (unreachable ??= new Set()).add(m.to);
          continue;
        }
        if (p === undefined) {
          this.log.debug({ type: messageTypeName(m.type), 'remote-peer-id': idHex16(m.to) }, 'ignored message send request; unknown remote peer target');
          continue;
        }
        if (m.type === MessageType.MsgSnap) {
          this.startSnapshot(p, m);
          continue;
        }
        if (!this.pick(p, m)) {
          if (unreachable === undefined || !unreachable.has(m.to)) {
            this.log.debug(
              { 'message-type': messageTypeName(m.type), 'local-member-id': idHex16(this.local.localId), 'remote-peer-id': idHex16(m.to), 'remote-peer-active': p.status.activeSince !== undefined },
              'dropped internal Raft message since sending buffer is full (overloaded network)',
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

  /** etcd's peer.pick: MsgApp on the msgappv2 stream, the rest on the message stream, the pipeline while neither is up. */
  private pick(p: Peer, m: Message): boolean {
    if (m.type === MessageType.MsgApp && p.writers.msgappv2.connected) return p.writers.msgappv2.enqueue(m);
    if (p.writers.message.connected) return p.writers.message.enqueue(m);
    return p.pipeline.send(m);
  }

  private closePeer(p: Peer): Promise<void> {
    p.prober.stop();
    p.pipeline.stop();
    for (const t of STREAM_TYPES) p.writers[t].close();
    return Promise.all(STREAM_TYPES.map((t) => p.readers[t].stop())).then(() => undefined);
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
    // an acknowledgement names the index it acknowledges: which put it belongs to
    probe?.mark('peer-read', `${messageTypeName(m.type)}:${idHex16(from)}${m.type === MessageType.MsgAppResp ? `:${m.index}` : ''}`);
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
      } else if (path === RAFT_PATH) {
        if (!allowMethod(req, res, 'POST')) return;
        void this.servePipeline(req, res);
      } else if (path === SNAPSHOT_PATH) {
        if (!allowMethod(req, res, 'POST')) return;
        this.serveSnapshot(req, res);
      } else if (path === PROBING_PATH) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${JSON.stringify({ OK: true, Now: new Date().toISOString() })}\n`);
      } else if (path === MEMBERS_PATH) {
        if (!allowMethod(req, res, 'GET')) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(membersJson(this.opts.members()));
      } else if (isLeaderRpcPath(path)) {
        if (!allowMethod(req, res, 'POST')) return;
        void serveLeaderRpc(this.opts.leaderRpc, this.opts.members, this.opts.applyWait ?? (async () => true), path, req, res);
      } else if (path === HASHKV_PATH && this.opts.hashKV !== undefined) {
        if (!allowMethod(req, res, 'GET')) return;
        void serveHashKV(this.opts.hashKV, req, res);
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
   * etcd's checkClusterCompatibilityFromHeader, made on every raft request before its body
   * is read: answers 412 with etcd's reason (which the sender recognises) and returns
   * false when the sender's version or cluster does not fit; 503 while stopping.
   */
  private compatible(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.stopped) {
      textReply(res, 503, 'the member is stopping');
      return false;
    }
    const bad = checkCompatibility(req.headers, this.local);
    if (bad === undefined) return true;
    const sender = String(req.headers[Header.from] ?? '');
    const from = headerId(req.headers[Header.from]);
    const remoteCluster = headerId(req.headers[Header.clusterId]);
    this.refuse(res, 412, bad.refusal, sender, bad.refusal === Refusal.clusterIdMismatch ? 'request cluster ID mismatch' : 'failed to check version compatibility', {
      'local-member-id': idHex16(this.local.localId),
      'local-member-cluster-id': idHex16(this.local.clusterId),
      'local-member-server-version': this.local.version,
      'remote-addr': remoteAddress(req),
      'remote-peer-id': from !== undefined ? idHex16(from) : sender,
      'remote-peer-server-version': String(req.headers[Header.version] ?? ''),
      'remote-peer-server-minimum-cluster-version': String(req.headers[Header.minClusterVersion] ?? ''),
      'remote-peer-cluster-id': remoteCluster !== undefined ? idHex16(remoteCluster) : String(req.headers[Header.clusterId] ?? ''),
      error: bad.reason,
    });
    return false;
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

  /** A sender that got through: its next refusal is news again. */
  private admitted(sender: bigint): void {
    const suffix = `/${idHex(sender)}`;
    for (const key of this.refusalsLogged) if (key.endsWith(suffix)) this.refusalsLogged.delete(key);
  }

  /** GET /raft/stream/<msgapp|message>/<from>, with etcd's refusals in etcd's order. */
  private serveStream(req: http.IncomingMessage, res: http.ServerResponse, rest: string): void {
    if (!this.compatible(req, res)) return;
    const slash = rest.indexOf('/');
    const type = slash < 0 ? undefined : streamTypeOf(rest.slice(0, slash));
    if (type === undefined) {
      textReply(res, 404, 'invalid path');
      return;
    }
    const fromText = rest.slice(slash + 1);
    const from = parseIdHex(fromText);
    if (from === undefined) {
      textReply(res, 404, 'invalid from');
      return;
    }
    const fields = { 'local-member-id': idHex16(this.local.localId), 'remote-peer-id-from': idHex16(from), 'remote-addr': remoteAddress(req) };
    if (this.isRemoved(from)) {
      this.refuse(res, 410, 'removed member', fromText, 'rejected stream from remote peer because it was removed', fields);
      return;
    }
    const peer = this.peers.get(from);
    if (peer === undefined) {
      // a member added since this one's last applied entry: its pipeline messages are answered
      this.addRemoteFrom(req);
      this.refuse(res, 404, 'error sender not found', fromText, 'failed to find remote peer in cluster', { ...fields, 'cluster-id': idHex16(this.local.clusterId) });
      return;
    }
    const to = req.headers[Header.to];
    if (to !== idHex(this.local.localId)) {
      this.refuse(res, 412, 'to field mismatch', fromText, 'ignored streaming request; ID mismatch', { ...fields, 'remote-peer-id-header': String(to ?? '') });
      return;
    }
    this.admitted(from);
    res.writeHead(200);
    res.flushHeaders();
    peer.writers[type].attach(res, remoteAddress(req));
  }

  /** POST /raft: one raft message, answered 204 once raft has it. */
  private async servePipeline(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.compatible(req, res)) {
      req.resume();
      return;
    }
    this.addRemoteFrom(req);
    let body: Buffer;
    try {
      body = await readBody(req, MAX_MESSAGE_BYTES);
    } catch (err) {
      this.log.warn({ 'local-member-id': idHex16(this.local.localId), 'remote-addr': remoteAddress(req), error: (err as Error).message }, 'failed to read Raft message');
      textReply(res, 400, 'error reading raft message');
      return;
    }
    let m: Message;
    try {
      m = decodeMessage(body);
    } catch (err) {
      const sender = String(req.headers[Header.from] ?? '');
      this.refuse(res, 400, 'error unmarshalling raft message', sender, 'failed to unmarshal Raft message', {
        'local-member-id': idHex16(this.local.localId),
        'remote-addr': remoteAddress(req),
        error: (err as Error).message,
      });
      return;
    }
    // etcdserver's Process: a removed member is told so (it then stops).
    if (this.isRemoved(m.from)) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ message: 'cannot process message from removed member' })}\n`);
      return;
    }
    // As etcd, raft steps a message from a member this one does not know yet too (a leader
    // added while this member was down); its answers go back through the sender's remote.
    const status = (this.peers.get(m.from) ?? this.remotes.get(m.from))?.status;
    if (status !== undefined) status.counters.receivedBytes += body.length;
    this.deliver(m.from, m);
    res.writeHead(204).end();
  }

  private serveSnapshot(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!this.compatible(req, res)) {
      req.resume();
      return;
    }
    this.addRemoteFrom(req);
    const from = headerId(req.headers[Header.from]);
    const peer = from === undefined ? undefined : (this.peers.get(from) ?? this.remotes.get(from));
    if (peer === undefined || this.isRemoved(peer.id)) {
      // etcd steps a snapshot from anyone; we take a store only from a member or a remote
      // (a leader added while this member was down), and raft decides before it is installed
      this.refuse(res, 404, 'error sender not found', String(req.headers[Header.from] ?? ''), 'failed to find remote peer in cluster', {
        'local-member-id': idHex16(this.local.localId),
        'remote-addr': remoteAddress(req),
      });
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

  private isRemoved(id: bigint): boolean {
    return this.removed.has(id) || this.opts.isRemoved?.(id) === true;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Closes every stream and snapshot transfer; raft hears nothing from the transport afterwards. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.keepAliveTimer);
    for (const a of this.snapshotAborts) a.abort();
    const closing: Promise<void>[] = [];
    for (const p of this.peers.values()) closing.push(this.closePeer(p));
    this.peers.clear();
    for (const r of this.remotes.values()) r.stop();
    this.remotes.clear();
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
