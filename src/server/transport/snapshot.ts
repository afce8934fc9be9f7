// MsgSnap travels on its own request, never on a stream (etcd's snapshot_sender.go and
// snapshotHandler): the leader POSTs /raft/snapshot with the MsgSnap as the message
// stream frames it (uint64 length, then the message), followed by the bbolt database
// until the end of the body. The follower hands message and database to the server,
// which saves the file beside the live store and lets raft decide (see
// SnapshotHooks.receive), and answers 204 once raft has taken it.
//
// The body carries no size or digest of its own (etcd's has none): a body cut short ends
// its chunked encoding early, which the reader sees as an error rather than an end, and
// the database is checked as a bbolt file before raft sees the message.

import { once } from 'node:events';
import type http from 'node:http';
import type { Logger } from 'pino';
import { decodeMessage, encodeMessage, MessageType, type Message } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import { postHeaders, SNAPSHOT_PATH } from './headers.js';
import type { PeerCounters } from './status.js';
import { MAX_MESSAGE_BYTES } from './stream-codec.js';
import type { LocalMember, SnapshotHooks } from './types.js';

/** The follower may install the store before answering; this bounds any silence on the link. */
export const SNAPSHOT_IDLE_TIMEOUT_MS = 60_000;
/**
 * The MsgSnap itself carries the v2 store and membership, which can be far larger than a
 * raft message (etcd reads it with no limit at all); 512 MiB is etcd's limit for any other message.
 */
const MAX_SNAPSHOT_MESSAGE_BYTES = 8 * MAX_MESSAGE_BYTES;

export interface SnapshotSend {
  readonly local: LocalMember;
  readonly tls: TlsContext | undefined;
  readonly url: string;
  readonly m: Message;
  readonly hooks: SnapshotHooks;
  readonly counters: PeerCounters;
  readonly log: Logger;
}

/** Sends one MsgSnap with the database; resolves when the follower has taken it, rejects otherwise. */
export async function sendSnapshot(p: SnapshotSend, abort: AbortSignal): Promise<void> {
  const { message, size, stream } = await p.hooks.prepare(p.m);
  // the stream may hold a thread and a store view: ended however the send ends, also
  // before its first step (and as soon as the body is written, below)
  const db = stream[Symbol.asyncIterator]();
  try {
    await post(p, abort, message, size, db);
  } finally {
    await db.return?.();
  }
}

async function post(p: SnapshotSend, abort: AbortSignal, m: Message, size: number, db: AsyncIterator<Buffer>): Promise<void> {
  const head = encodeMessage(m);
  const prefix = Buffer.allocUnsafe(8 + head.length);
  prefix.writeBigUInt64BE(BigInt(head.length), 0);
  prefix.set(head, 8);
  const fields = {
    'local-member-id': idHex16(p.local.localId),
    'remote-peer-id': idHex16(p.m.to),
    'snapshot-index': m.snapshot?.metadata.index ?? 0,
    'snapshot-size': size,
  };
  p.log.info(fields, 'sending database snapshot');

  // No content-length: the body is chunked, as etcd's (an io.Reader of unknown length).
  const req = peerRequest(p.url, SNAPSHOT_PATH, 'POST', postHeaders(p.local, 'application/octet-stream'), p.tls);
  const onAbort = (): void => void req.destroy(new Error('snapshot send aborted'));
  abort.addEventListener('abort', onAbort);
  req.setTimeout(SNAPSHOT_IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no progress for ${SNAPSHOT_IDLE_TIMEOUT_MS} ms`)));
  // The follower may answer before the body is complete (a refusal): stop writing then.
  let early: http.IncomingMessage | undefined;
  let failed: Error | undefined;
  req.on('error', (err) => (failed ??= err));
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      early = res;
      resolve(res);
    });
    req.on('error', reject);
  });
  response.catch(() => undefined);

  try {
    let sent = 0;
    const write = async (chunk: Buffer): Promise<void> => {
      p.counters.sentBytes += chunk.length;
      if (!req.write(chunk)) await once(req, 'drain');
    };
    await write(prefix);
    for (let r = await db.next(); !r.done; r = await db.next()) {
      if (failed !== undefined) throw failed;
      if (early !== undefined) break;
      sent += r.value.length;
      await write(r.value);
    }
    if (failed !== undefined) throw failed;
    if (early === undefined && sent !== size) throw new Error(`the database stream ended after ${sent} of ${size} bytes`);
    req.end();
  } catch (err) {
    if (early === undefined) {
      req.destroy();
      throw err;
    }
  } finally {
    abort.removeEventListener('abort', onAbort);
    await db.return?.();
  }

  const res = await response;
  const body = await readText(res);
  req.destroy();
  if (res.statusCode !== 204) throw new Error(`remote peer refused the snapshot: ${res.statusCode} ${body.trim()}`);
  p.log.info(fields, 'sent database snapshot');
}

export interface SnapshotReceive {
  readonly localId: bigint;
  /** the sender, from the (already checked) request headers */
  readonly from: bigint;
  readonly hooks: SnapshotHooks;
  /** why raft would refuse the MsgSnap, asked before the store is read */
  readonly check: (m: Message) => Error | undefined;
  readonly counters: PeerCounters;
  readonly log: Logger;
}

/** The body is not a well-formed snapshot upload: cut short, not a MsgSnap, or not for this member. */
class BadSnapshotRequest extends Error {
  override name = 'BadSnapshotRequest';
}

/**
 * The member will not take this snapshot (SnapshotHooks.receive throws it): raft ignored
 * it, or it is not ahead of what the member has. The live store is as it was.
 */
export class SnapshotRefused extends Error {
  override name = 'SnapshotRefused';
}

/** Reads a request body in pieces of the sizes asked for, whatever its chunks. */
class BodyReader {
  private carry: Buffer = Buffer.alloc(0);
  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly onBytes: (n: number) => void,
  ) {}

  /** Up to `max` bytes (at least one); undefined once the body has ended. */
  async some(max: number): Promise<Buffer | undefined> {
    if (this.carry.length === 0) {
      const r = await this.it.next();
      if (r.done) return undefined;
      this.onBytes(r.value.length);
      this.carry = r.value;
    }
    const out = this.carry.subarray(0, max);
    this.carry = this.carry.subarray(out.length);
    return out;
  }

  /** Exactly `n` bytes; `short` names what was cut off when the body ends first. */
  async exact(n: number, short: () => string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let got = 0; got < n; ) {
      const b = await this.some(n - got);
      if (b === undefined) throw new BadSnapshotRequest(short());
      parts.push(b);
      got += b.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

}

/**
 * Serves one snapshot POST: checks the message, then hands the MsgSnap and the rest of
 * the body (the database) to the hooks, which decide. The database's bytes end with an
 * error instead of their last chunk if the body is cut short, so nothing incomplete is
 * ever taken for a database. Every refusal is logged once at warn with the sender and index.
 */
export async function receiveSnapshot(req: http.IncomingMessage, res: http.ServerResponse, p: SnapshotReceive): Promise<void> {
  const fields: Record<string, unknown> = {
    'local-member-id': idHex16(p.localId),
    'remote-snapshot-sender-id': idHex16(p.from),
  };
  try {
    const body = new BodyReader(req[Symbol.asyncIterator]() as AsyncIterator<Buffer>, (n) => (p.counters.receivedBytes += n));
    const headerShort = (): string => 'failed to decode raft message (the request ended before its message was complete)';
    const len = (await body.exact(8, headerShort)).readBigUInt64BE(0);
    if (len > BigInt(MAX_SNAPSHOT_MESSAGE_BYTES)) throw new BadSnapshotRequest(`failed to decode raft message (a message of ${len} bytes exceeds the ${MAX_SNAPSHOT_MESSAGE_BYTES}-byte limit)`);
    let m: Message;
    try {
      m = decodeMessage(await body.exact(Number(len), headerShort));
    } catch (err) {
      if (err instanceof BadSnapshotRequest) throw err;
      throw new BadSnapshotRequest(`failed to decode raft message (${(err as Error).message})`);
    }
    if (m.type !== MessageType.MsgSnap || m.snapshot === undefined) throw new BadSnapshotRequest('wrong raft message type');
    if (m.to !== p.localId) throw new BadSnapshotRequest(`the snapshot is for member ${idHex16(m.to)}, not this one`);
    if (m.from !== p.from) throw new BadSnapshotRequest(`the snapshot message is from ${idHex16(m.from)} but the request from ${idHex16(p.from)}`);
    // Before a byte of the database is taken in: a MsgSnap raft would refuse (a term or
    // index past its limits, say) must not replace anything.
    const refused = p.check(m);
    if (refused !== undefined) throw new BadSnapshotRequest(`raft refuses the snapshot message: ${refused.message}`);
    fields['incoming-snapshot-index'] = m.snapshot.metadata.index;
    fields['incoming-snapshot-term'] = m.snapshot.metadata.term;
    fields['incoming-snapshot-message-size-bytes'] = Number(len);
    p.log.info(fields, 'receiving database snapshot');

    let complete = false;
    async function* database(): AsyncGenerator<Buffer> {
      for (;;) {
        const chunk = await body.some(1024 * 1024);
        if (chunk === undefined) break;
        yield chunk;
      }
      complete = true;
    }
    await p.hooks.receive(m, database());
    if (!complete) throw new Error('the snapshot receiver returned before reading the whole database');
    p.log.info(fields, 'received and installed database snapshot');
    res.writeHead(204).end();
  } catch (err) {
    const status = err instanceof BadSnapshotRequest ? 400 : err instanceof SnapshotRefused ? 409 : 500;
    p.log.warn({ ...fields, error: (err as Error).message }, status === 409 ? 'refused database snapshot' : 'failed to receive snapshot');
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${(err as Error).message}\n`);
    } else {
      res.destroy();
    }
  }
}
