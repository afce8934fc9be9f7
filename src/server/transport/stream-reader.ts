// The receiving half of one stream from a peer: we dial the peer's stream endpoint of
// that type and decode what it writes for us, redialling with backoff whenever the
// stream fails. Refusals
// (another cluster, this member removed, not yet known to the peer) are logged once per
// episode rather than once per attempt.

import type http from 'node:http';
import type { Logger } from 'pino';
import type { Message } from '../../raftpb/index.js';
import { idHex, idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import type { DropLog } from './drop-log.js';
import { Header, headerId, Refusal, STREAM_ENDPOINT, STREAM_PATH_PREFIX, streamHeaders, streamName } from './headers.js';
import type { PeerStatus } from './status.js';
import { isLinkHeartbeat, newDecoder, type Decoded, type StreamType } from './stream-codec.js';
import type { LocalMember } from './types.js';

/** No byte (not even a link heartbeat) for this long: the peer is gone, redial (etcd's ConnReadTimeout). */
export const READ_TIMEOUT_MS = 5000;
/** etcd redials at most every 100 ms; we back off from there while the peer stays away. */
const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 1000;

export interface ReaderContext {
  readonly local: LocalMember;
  readonly tls: TlsContext | undefined;
  readonly log: Logger;
  readonly status: PeerStatus;
  /** Where messages that do not decode are logged. */
  readonly drops: DropLog;
  /** A well-formed message from the peer, addressed to us. */
  readonly deliver: (m: Message) => void;
  /** The peer answered that this member was removed from the cluster. */
  readonly onRemoved: () => void;
}

export class StreamReader {
  private urls: readonly string[];
  private urlIndex = 0;
  private req: http.ClientRequest | undefined;
  private reqUrl: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_INITIAL_MS;
  private stopped = false;
  /** the kind of the last failure logged at warn; repeats go to debug */
  private lastProblem: string | undefined;
  private closed: Promise<void> = Promise.resolve();

  constructor(
    private readonly peerId: bigint,
    readonly type: StreamType,
    urls: readonly string[],
    private readonly ctx: ReaderContext,
  ) {
    this.urls = [...urls];
  }

  start(): void {
    this.dial();
  }

  /** New peer URLs: a stream on a URL no longer listed is dropped and redialled. */
  updateUrls(urls: readonly string[]): void {
    this.urls = [...urls];
    this.urlIndex = 0;
    if (this.req !== undefined && this.reqUrl !== undefined && !urls.includes(this.reqUrl)) {
      this.req.destroy(new Error('peer URLs changed'));
    } else if (this.req === undefined && this.retryTimer === undefined) {
      this.dial();
    }
  }

  /** Stops dialling and closes the stream; resolves once its socket is closed. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.req?.destroy();
    return this.closed;
  }

  private dial(): void {
    this.retryTimer = undefined;
    if (this.stopped) return;
    if (this.urls.length === 0) return; // dialled again by updateUrls
    const url = this.urls[this.urlIndex % this.urls.length]!;
    let req: http.ClientRequest;
    try {
      const headers = streamHeaders(this.ctx.local, this.peerId);
      const path = `${STREAM_PATH_PREFIX}${STREAM_ENDPOINT[this.type]}/${idHex(this.ctx.local.localId)}`;
      req = peerRequest(url, path, 'GET', headers, this.ctx.tls);
    } catch (err) {
      this.noteProblem('bad-url', 'failed to dial remote peer', { 'remote-peer-id': idHex16(this.peerId), 'remote-url': url, error: (err as Error).message });
      this.urlIndex++;
      this.scheduleDial();
      return;
    }
    this.req = req;
    this.reqUrl = url;
    this.closed = new Promise((resolve) => req.on('close', resolve));

    let established = false;
    /** the peer answered with a refusal; its body decides what happens next */
    let answered = false;
    let done = false;
    const fail = (kind: string, problem: string): void => {
      if (done) return;
      done = true;
      if (this.req === req) this.req = undefined;
      req.destroy();
      if (this.stopped) return;
      if (established) {
        this.ctx.log.warn(
          { 'stream-reader-type': streamName(this.type), 'local-member-id': idHex16(this.ctx.local.localId), 'remote-peer-id': idHex16(this.peerId), error: problem },
          'lost TCP streaming connection with remote peer',
        );
        this.ctx.status.deactivate(problem);
      } else {
        this.noteProblem(kind, 'failed to dial remote peer', {
          'local-member-id': idHex16(this.ctx.local.localId),
          'remote-peer-id': idHex16(this.peerId),
          'remote-url': url,
          error: problem,
        });
      }
      this.urlIndex++;
      this.scheduleDial();
    };

    req.setTimeout(READ_TIMEOUT_MS, () => fail('timeout', `no data from the remote peer for ${READ_TIMEOUT_MS} ms`));
    req.on('error', (err) => fail('dial', err.message));
    req.on('close', () => {
      if (!answered) fail('closed', 'the connection closed');
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        answered = true;
        void readText(res).then((body) => {
          if (done) return;
          done = true;
          if (this.req === req) this.req = undefined;
          req.destroy();
          if (this.stopped) return;
          if (this.refused(res, body.trim(), url)) {
            this.urlIndex++;
            this.scheduleDial();
          }
        });
        return;
      }
      established = true;
      this.backoffMs = BACKOFF_INITIAL_MS;
      this.lastProblem = undefined;
      this.ctx.status.activate();
      this.ctx.log.info(
        { 'stream-reader-type': streamName(this.type), 'local-member-id': idHex16(this.ctx.local.localId), 'remote-peer-id': idHex16(this.peerId), 'remote-url': url },
        'established TCP streaming connection with remote peer',
      );
      const decoder = newDecoder(this.type, this.ctx.local.localId, this.peerId);
      res.on('data', (chunk: Buffer) => {
        if (done) return;
        this.ctx.status.counters.receivedBytes += chunk.length;
        let records: Decoded[];
        try {
          records = decoder.push(chunk);
        } catch (err) {
          this.ctx.status.counters.receivedFailures++;
          fail('malformed', `malformed ${streamName(this.type)} from the remote peer: ${(err as Error).message}`);
          return;
        }
        for (const r of records) {
          if ('undecodable' in r) {
            // A length-prefixed message: the next one still starts where it should, so
            // this one is dropped alone and the stream kept.
            this.ctx.status.counters.receivedFailures++;
            this.ctx.drops.note(this.peerId, 'undecodable', 'dropped a raft message from the remote peer that does not decode', {
              'local-member-id': idHex16(this.ctx.local.localId),
              error: r.undecodable.message,
            });
            continue;
          }
          if (isLinkHeartbeat(r.message)) continue;
          this.ctx.deliver(r.message);
          if (done) return;
        }
      });
      res.on('end', () =>
        fail('closed', decoder.pending > 0 ? `the remote peer closed the stream in the middle of a message (${decoder.pending} bytes)` : 'the remote peer closed the stream'),
      );
      res.on('error', (err) => fail('closed', err.message));
    });
    req.end();
  }

  /**
   * Logs why the peer refused the stream. Returns false when there is no point in
   * dialling again (this member was removed from the cluster).
   */
  private refused(res: http.IncomingMessage, body: string, url: string): boolean {
    const remoteCluster = headerId(res.headers[Header.clusterId]);
    const fields = {
      'local-member-id': idHex16(this.ctx.local.localId),
      'remote-peer-id': idHex16(this.peerId),
      'remote-url': url,
      status: res.statusCode,
      body,
    };
    if (res.statusCode === 410) {
      this.stopped = true;
      this.ctx.log.error(fields, 'remote peer says the local member was removed from the cluster');
      this.ctx.onRemoved();
      return false;
    }
    if (res.statusCode === 412 && body === Refusal.clusterIdMismatch) {
      this.noteProblem('cluster-mismatch', 'request sent was ignored by remote peer due to cluster ID mismatch', {
        ...fields,
        'remote-peer-cluster-id': remoteCluster !== undefined ? idHex16(remoteCluster) : String(res.headers[Header.clusterId] ?? ''),
        'local-member-cluster-id': idHex16(this.ctx.local.clusterId),
      });
    } else if (res.statusCode === 412 && body === Refusal.incompatibleVersion) {
      this.noteProblem('incompatible-version', 'request sent was ignored by remote peer due to server version incompatibility', {
        ...fields,
        'remote-peer-server-version': String(res.headers[Header.version] ?? ''),
        'local-member-server-version': this.ctx.local.version,
      });
    } else if (res.statusCode === 404) {
      this.noteProblem('unknown', 'remote peer does not know the local member yet', fields);
    } else {
      this.noteProblem(`status-${res.statusCode}`, 'remote peer refused the stream', fields);
    }
    return true;
  }

  private noteProblem(kind: string, msg: string, fields: Record<string, unknown>): void {
    if (kind !== this.lastProblem) this.ctx.log.warn(fields, msg);
    else this.ctx.log.debug(fields, msg);
    this.lastProblem = kind;
  }

  private scheduleDial(): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => this.dial(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
  }
}
