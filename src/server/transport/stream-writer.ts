// The sending half of one stream to a peer: the response of the peer's stream request
// (the peer dials us and reads), a bounded queue in front of it, and one write per flush
// in the stream's encoding. A peer that stops reading fills its queue; further messages
// are dropped, never waited for.

import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { type Message, messageSizeHint, Writer } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';
import { probe } from '../probe.js';
import { streamName } from './headers.js';
import type { PeerStatus } from './status.js';
import { LINK_HEARTBEAT, newEncoder, type StreamEncoder, type StreamType } from './stream-codec.js';

/** Messages queued per peer at most (etcd's streamBufSize). */
export const MAX_QUEUED_MESSAGES = 4096;
/**
 * An idle stream gets a link heartbeat this often (etcd's ConnReadTimeout / 3); the
 * reader gives up after READ_TIMEOUT_MS.
 */
export const KEEPALIVE_INTERVAL_MS = 5000 / 3;
/** A write carries at most about this much, so one flush never builds a huge buffer. */
const BATCH_BYTES = 1024 * 1024;
/** A write that has not drained in this long means the peer stopped reading: drop the stream. */
export const WRITE_STALL_MS = 5000;
/**
 * An HTTP/1.1 chunk's size line, written by us in a fixed width (8 hex digits, which HTTP
 * allows with leading zeros) so a flush can reserve it before it knows the size.
 */
const CHUNK_SIZE_DIGITS = 8;
const CRLF = 2;
const CHUNK_SIZE_LINE = CHUNK_SIZE_DIGITS + CRLF;

export interface WriterContext {
  readonly localId: bigint;
  readonly log: Logger;
  readonly status: PeerStatus;
  /** Queued messages were thrown away with the stream (raft must hear the peer is unreachable). */
  readonly onDropped: () => void;
}

export class StreamWriter {
  private res: http.ServerResponse | undefined;
  /**
   * res's socket, which the stream's chunks are written to directly: the response's own
   * write path (chunked encoding, corking, its Writable) cost the member's one thread
   * ~10 µs a message, and a leader writes four of them per put at one client.
   */
  private socket: Socket | undefined;
  /** a new one per connection: msgappv2's implied state starts afresh on each */
  private encoder: StreamEncoder | undefined;
  private queue: Message[] = [];
  /** the last write returned false: wait for 'drain' */
  private blocked = false;
  private flushScheduled = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastWriteAt = 0;

  constructor(
    private readonly peerId: bigint,
    readonly type: StreamType,
    private readonly ctx: WriterContext,
  ) {}

  get connected(): boolean {
    return this.res !== undefined;
  }

  /** Makes `res` (the peer's stream request, headers already sent) the way out. */
  attach(res: http.ServerResponse, remoteAddr: string): void {
    if (this.res !== undefined) this.detach(this.res, 'replaced by a new stream from the remote peer', 'closed');
    const socket = res.socket;
    if (socket === null) {
      // A request pipelined behind another on its connection: its response gets the
      // socket only once the one before it ends, which a stream never does. No etcd peer
      // pipelines; closing the connection makes it dial again.
      res.req.socket.destroy();
      return;
    }
    this.res = res;
    this.socket = socket;
    this.encoder = newEncoder(this.type);
    this.blocked = false;
    this.lastWriteAt = Date.now();
    socket.setNoDelay(true);
    socket.on('drain', this.onDrain);
    res.on('close', () => {
      if (this.res === res) this.detach(res, 'the remote peer closed the stream', 'lost');
    });
    this.ctx.status.activate();
    this.ctx.log.info(
      { 'stream-writer-type': streamName(this.type), 'local-member-id': idHex16(this.ctx.localId), 'remote-peer-id': idHex16(this.peerId), 'remote-addr': remoteAddr },
      'established TCP streaming connection with remote peer',
    );
  }

  /** Queues m for the next flush; false when it had to be dropped (stream down or queue full). */
  enqueue(m: Message): boolean {
    if (this.res === undefined || this.queue.length >= MAX_QUEUED_MESSAGES) {
      this.ctx.status.dropped([m]);
      return false;
    }
    this.queue.push(m);
    if (!this.flushScheduled && !this.blocked) {
      this.flushScheduled = true;
      // Everything raft hands over in the same turn of the event loop goes out in one write.
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return true;
  }

  /** Called every KEEPALIVE_INTERVAL_MS: lets the reader know an idle stream is alive. */
  keepAlive(now: number): void {
    const res = this.res;
    if (res === undefined || this.blocked || now - this.lastWriteAt < KEEPALIVE_INTERVAL_MS) return;
    const out = chunkWriter(16);
    this.encoder!.encode(LINK_HEARTBEAT, out);
    this.write(res, finishChunk(out));
  }

  /** Ends the stream on purpose (peer removed, transport stopping). */
  close(): void {
    if (this.res !== undefined) this.detach(this.res, 'closed by the local member', 'closed');
  }

  private flush(): void {
    const res = this.res;
    if (res === undefined) return;
    while (this.queue.length > 0 && !this.blocked) {
      // Everything queued goes out in one write of about BATCH_BYTES at most (always one
      // message), encoded straight into one buffer sized for it.
      let hint = 0;
      for (let i = 0; i < this.queue.length && hint < BATCH_BYTES; i++) hint += messageSizeHint(this.queue[i]!);
      const out = chunkWriter(hint);
      let count = 0;
      while (count < this.queue.length && (count === 0 || out.length < BATCH_BYTES + CHUNK_SIZE_LINE)) this.encoder!.encode(this.queue[count++]!, out);
      if (count === this.queue.length) this.queue = [];
      else this.queue.splice(0, count);
      this.write(res, finishChunk(out));
    }
  }

  /** Writes one chunk of the response's body (framed by finishChunk). */
  private write(res: http.ServerResponse, chunk: Uint8Array): void {
    const bytes = chunk.length - CHUNK_SIZE_LINE - CRLF;
    this.ctx.status.counters.sentBytes += bytes;
    this.lastWriteAt = Date.now();
    // Out now, not at Node's next tick (the response's own write corks its socket until
    // then): a leader's flush runs in the microtasks that go on to apply the entries it
    // commits, which would hold the commit index back from the followers (who answer
    // their clients once they hear it) for as long as the apply takes.
    const accepted = this.socket!.write(chunk);
    probe?.mark('peer-write', `${this.type}:${idHex16(this.peerId)}:${bytes}`);
    if (accepted) return;
    this.blocked = true;
    this.stallTimer ??= setTimeout(() => {
      this.stallTimer = undefined;
      if (this.res === res) this.detach(res, `the remote peer read nothing for ${WRITE_STALL_MS} ms`, 'lost');
    }, WRITE_STALL_MS);
  }

  private readonly onDrain = (): void => {
    if (this.res === undefined) return;
    this.blocked = false;
    this.clearStall();
    this.flush();
  };

  private clearStall(): void {
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private detach(res: http.ServerResponse, reason: string, how: 'lost' | 'closed'): void {
    this.socket?.off('drain', this.onDrain);
    this.res = undefined;
    this.socket = undefined;
    this.encoder = undefined;
    this.blocked = false;
    this.clearStall();
    if (how === 'closed') res.end();
    else res.destroy();
    const dropped = this.queue.length;
    this.ctx.status.dropped(this.queue);
    this.queue = [];
    const fields = {
      'stream-writer-type': streamName(this.type),
      'local-member-id': idHex16(this.ctx.localId),
      'remote-peer-id': idHex16(this.peerId),
      error: reason,
    };
    if (how === 'lost') {
      this.ctx.log.warn(fields, 'lost TCP streaming connection with remote peer');
      this.ctx.status.deactivate(reason);
    } else {
      this.ctx.log.info(fields, 'closed TCP streaming connection with remote peer');
    }
    if (dropped > 0) this.ctx.onDropped();
  }
}

/** A Writer for one chunk: its size line reserved, to be filled in by finishChunk. */
function chunkWriter(hint: number): Writer {
  const out = new Writer(CHUNK_SIZE_LINE + hint + CRLF);
  for (let i = 0; i < CHUNK_SIZE_LINE; i++) out.uint8(0);
  return out;
}

/** The chunk: its size line (8 hex digits, CRLF), the bytes written after it, CRLF. */
function finishChunk(out: Writer): Uint8Array {
  out.uint8(13).uint8(10);
  const chunk = out.finish();
  const size = (chunk.length - CHUNK_SIZE_LINE - CRLF).toString(16).padStart(CHUNK_SIZE_DIGITS, '0');
  for (let i = 0; i < CHUNK_SIZE_DIGITS; i++) chunk[i] = size.charCodeAt(i);
  chunk[CHUNK_SIZE_DIGITS] = 13;
  chunk[CHUNK_SIZE_DIGITS + 1] = 10;
  return chunk;
}
