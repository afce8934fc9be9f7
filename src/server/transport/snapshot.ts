// MsgSnap travels on its own request, never on the message stream: the leader POSTs the
// encoded message followed by the store's bytes; the follower checks the body whole, then
// hands message and bytes to the server, which saves the store beside the live one and
// lets raft decide (see SnapshotHooks.receive).
//
// Body: u32 BE message length, the raftpb Message, u64 BE store size, the store bytes,
// then the SHA-256 of every byte before it. The peer port is not authenticated without
// TLS: the size and digest catch a body cut short, run long or damaged in transit, so
// that what is saved is exactly what the sender read from its store.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type http from 'node:http';
import type { Logger } from 'pino';
import { decodeMessage, encodeMessage, MessageType, type Message } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import { postHeaders, SNAPSHOT_PATH } from './headers.js';
import { MAX_MESSAGE_BYTES as MAX_FRAME_BYTES } from './stream-codec.js';
const FRAME_HEADER_BYTES = 4;
import type { PeerCounters } from './status.js';
import type { LocalMember, SnapshotHooks } from './types.js';

const SIZE_BYTES = 8;
const DIGEST_BYTES = 32;
/** The follower may install the store before answering; this bounds any silence on the link. */
export const SNAPSHOT_IDLE_TIMEOUT_MS = 60_000;

export interface SnapshotSend {
  readonly local: LocalMember;
  readonly tls: TlsContext | undefined;
  readonly url: string;
  readonly m: Message;
  readonly hooks: SnapshotHooks;
  readonly counters: PeerCounters;
  readonly log: Logger;
}

/** Sends one MsgSnap with the store; resolves when the follower has installed it, rejects otherwise. */
export async function sendSnapshot(p: SnapshotSend, abort: AbortSignal): Promise<void> {
  const { message: m, size, stream } = p.hooks.prepare ? await p.hooks.prepare(p.m) : { message: p.m, ...p.hooks.open() };
  const head = encodeMessage(m);
  const prefix = Buffer.allocUnsafe(FRAME_HEADER_BYTES + head.length + SIZE_BYTES);
  prefix.writeUInt32BE(head.length, 0);
  prefix.set(head, FRAME_HEADER_BYTES);
  prefix.writeBigUInt64BE(BigInt(size), FRAME_HEADER_BYTES + head.length);
  const digest = createHash('sha256');
  const fields = {
    'local-member-id': idHex16(p.local.localId),
    'remote-peer-id': idHex16(p.m.to),
    'snapshot-index': m.snapshot?.metadata.index ?? 0,
    'snapshot-size': size,
  };
  p.log.info(fields, 'sending database snapshot');

  const req = peerRequest(
    p.url,
    SNAPSHOT_PATH,
    'POST',
    {
      ...postHeaders(p.local, 'application/octet-stream'),
      'content-length': String(prefix.length + size + DIGEST_BYTES),
    },
    p.tls,
  );
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
      digest.update(chunk);
      p.counters.sentBytes += chunk.length;
      if (!req.write(chunk)) await once(req, 'drain');
    };
    await write(prefix);
    for await (const chunk of stream) {
      if (failed !== undefined) throw failed;
      if (early !== undefined) break;
      sent += chunk.length;
      if (sent > size) throw new Error(`the store stream is longer than the announced ${size} bytes`);
      await write(chunk);
    }
    if (failed !== undefined) throw failed;
    if (early !== undefined) {
      req.end();
    } else {
      if (sent !== size) throw new Error(`the store stream ended after ${sent} of ${size} bytes`);
      const trailer = digest.digest();
      p.counters.sentBytes += trailer.length;
      req.end(trailer);
    }
  } catch (err) {
    if (early === undefined) {
      req.destroy();
      throw err;
    }
  } finally {
    abort.removeEventListener('abort', onAbort);
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

/** The body is not a well-formed snapshot upload: cut short, too long, damaged or not a MsgSnap. */
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

  async atEnd(): Promise<boolean> {
    if (this.carry.length > 0) return false;
    const r = await this.it.next();
    if (r.done) return true;
    this.onBytes(r.value.length);
    this.carry = r.value;
    return false;
  }
}

/**
 * Serves one snapshot POST: checks the header, then hands the MsgSnap and the store's
 * bytes to the hooks, which decide. The bytes end with an error instead of their last
 * chunk if the body turns out short, long or damaged, so nothing incomplete is ever
 * taken for a store. Every refusal is logged once at warn with the sender and index.
 */
export async function receiveSnapshot(req: http.IncomingMessage, res: http.ServerResponse, p: SnapshotReceive): Promise<void> {
  const fields: Record<string, unknown> = {
    'local-member-id': idHex16(p.localId),
    'remote-snapshot-sender-id': idHex16(p.from),
  };
  try {
    const body = new BodyReader(req[Symbol.asyncIterator]() as AsyncIterator<Buffer>, (n) => (p.counters.receivedBytes += n));
    const digest = createHash('sha256');
    const headerShort = (): string => 'the snapshot request ended before its header was complete';
    const lenBytes = await body.exact(FRAME_HEADER_BYTES, headerShort);
    const len = lenBytes.readUInt32BE(0);
    if (len > MAX_FRAME_BYTES) throw new BadSnapshotRequest(`snapshot message of ${len} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
    const head = await body.exact(len + SIZE_BYTES, headerShort);
    digest.update(lenBytes).update(head);
    let m: Message;
    try {
      m = decodeMessage(head.subarray(0, len));
    } catch (err) {
      throw new BadSnapshotRequest(`malformed snapshot message: ${(err as Error).message}`);
    }
    const size64 = head.readBigUInt64BE(len);
    if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new BadSnapshotRequest(`store size ${size64} is not plausible`);
    const size = Number(size64);
    if (m.type !== MessageType.MsgSnap || m.snapshot === undefined) throw new BadSnapshotRequest('the snapshot request does not carry a MsgSnap');
    if (m.to !== p.localId) throw new BadSnapshotRequest(`the snapshot is for member ${idHex16(m.to)}, not this one`);
    if (m.from !== p.from) throw new BadSnapshotRequest(`the snapshot message is from ${idHex16(m.from)} but the request from ${idHex16(p.from)}`);
    // Before a byte of the store is taken in: a MsgSnap raft would refuse (a term or
    // index past its limits, say) must not replace anything.
    const refused = p.check(m);
    if (refused !== undefined) throw new BadSnapshotRequest(`raft refuses the snapshot message: ${refused.message}`);
    fields['incoming-snapshot-index'] = m.snapshot.metadata.index;
    fields['incoming-snapshot-term'] = m.snapshot.metadata.term;
    fields['incoming-snapshot-size'] = size;
    p.log.info(fields, 'receiving database snapshot');

    let verified = false;
    async function* store(): AsyncGenerator<Buffer> {
      for (let received = 0; received < size; ) {
        const chunk = await body.some(size - received);
        if (chunk === undefined) throw new BadSnapshotRequest(`the store stream ended after ${received} of ${size} bytes`);
        received += chunk.length;
        digest.update(chunk);
        yield chunk;
      }
      const trailer = await body.exact(DIGEST_BYTES, () => `the snapshot request ended before its ${DIGEST_BYTES}-byte digest`);
      if (!(await body.atEnd())) throw new BadSnapshotRequest(`more bytes than the announced ${size}-byte store and its digest`);
      if (!digest.digest().equals(trailer)) throw new BadSnapshotRequest('the body does not match its SHA-256 digest: damaged in transit');
      verified = true;
    }
    await p.hooks.receive(m, store());
    if (!verified) throw new Error('the snapshot receiver returned before reading the whole store');
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
