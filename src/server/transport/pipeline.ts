// The pipeline (etcd's pipeline.go): raft messages that find no stream up to their peer
// go one per POST /raft, a few requests at a time on kept-alive connections. Its queue
// is bounded like the streams'; a message that does not fit is dropped and raft told.

import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { encodeMessage, type Message } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import { postHeaders, RAFT_PATH, Refusal } from './headers.js';
import type { PeerStatus } from './status.js';
import type { LocalMember } from './types.js';

/** etcd's pipelineBufSize and connPerPipeline. */
export const PIPELINE_BUF_SIZE = 64;
const CONN_PER_PIPELINE = 4;
/** A POST with no answer in this long failed (etcd's ConnWriteTimeout). */
const POST_TIMEOUT_MS = 5000;

export interface PipelineContext {
  readonly local: LocalMember;
  readonly tls: TlsContext | undefined;
  readonly log: Logger;
  readonly status: PeerStatus;
  /** the peer's URLs now, and the index of the one to use (advanced when one fails) */
  readonly urls: () => readonly string[];
  /** a message could not be delivered: raft stops optimistic replication to the peer */
  readonly onFailed: () => void;
  /** the peer answered that this member was removed from the cluster */
  readonly onRemoved: () => void;
}

export class Pipeline {
  private readonly queue: Message[] = [];
  private inflight = 0;
  private urlIndex = 0;
  private readonly agent: http.Agent;
  private stopped = false;
  /** the last failure logged at warn; repeats go to debug */
  private lastProblem: string | undefined;

  constructor(
    private readonly peerId: bigint,
    private readonly ctx: PipelineContext,
  ) {
    const opts = { keepAlive: true, maxSockets: CONN_PER_PIPELINE };
    this.agent = ctx.tls !== undefined ? new https.Agent({ ...ctx.tls.client, ...opts }) : new http.Agent(opts);
  }

  /** Queues m; false when the queue is full (the message is dropped). */
  send(m: Message): boolean {
    if (this.stopped || this.queue.length >= PIPELINE_BUF_SIZE) {
      this.ctx.status.dropped([m]);
      return false;
    }
    this.queue.push(m);
    this.pump();
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.agent.destroy();
  }

  private pump(): void {
    while (!this.stopped && this.inflight < CONN_PER_PIPELINE && this.queue.length > 0) {
      const m = this.queue.shift()!;
      this.inflight++;
      void this.post(m).finally(() => {
        this.inflight--;
        this.pump();
      });
    }
  }

  private async post(m: Message): Promise<void> {
    const urls = this.ctx.urls();
    if (urls.length === 0) return this.failed(m, 'no-urls', 'the remote peer has no URLs');
    const url = urls[this.urlIndex % urls.length]!;
    const body = encodeMessage(m);
    let status: number | undefined;
    let text = '';
    try {
      ({ status, text } = await new Promise<{ status: number | undefined; text: string }>((resolve, reject) => {
        const headers = { ...postHeaders(this.ctx.local, 'application/protobuf'), 'content-length': String(body.length) };
        const req = peerRequest(url, RAFT_PATH, 'POST', headers, this.ctx.tls, this.agent);
        req.setTimeout(POST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${POST_TIMEOUT_MS} ms`)));
        req.on('error', reject);
        req.on('response', (res) => void readText(res).then((t) => resolve({ status: res.statusCode, text: t.trim() })));
        req.end(body);
      }));
    } catch (err) {
      this.urlIndex++;
      return this.failed(m, 'post', (err as Error).message, url);
    }
    if (status === 204) {
      this.ctx.status.counters.sentBytes += body.length;
      this.ctx.status.activate();
      this.lastProblem = undefined;
      return;
    }
    this.urlIndex++;
    if (status === 403) {
      this.ctx.log.error({ 'local-member-id': idHex16(this.ctx.local.localId), 'remote-peer-id': idHex16(this.peerId), body: text }, 'remote peer says the local member was removed from the cluster');
      this.ctx.onRemoved();
    }
    const why = status === 412 && (text === Refusal.clusterIdMismatch || text === Refusal.incompatibleVersion) ? text : `unexpected http status ${status} (${text})`;
    this.failed(m, `status-${status}`, why, url);
  }

  /** `m` was not delivered: counted as a send failure (a heartbeat also as a heartbeat send failure). */
  private failed(m: Message, kind: string, problem: string, url?: string): void {
    if (this.stopped) return;
    const fields = { 'local-member-id': idHex16(this.ctx.local.localId), 'remote-peer-id': idHex16(this.peerId), 'remote-url': url, error: problem };
    if (kind !== this.lastProblem) this.ctx.log.warn(fields, 'failed to send raft message over the pipeline');
    else this.ctx.log.debug(fields, 'failed to send raft message over the pipeline');
    this.lastProblem = kind;
    this.ctx.status.dropped([m]);
    this.ctx.status.deactivate(problem);
    this.ctx.onFailed();
  }
}
