// MsgSnap travels on its own request, never on the message stream: the leader POSTs the
// encoded message followed by the store's bytes, the follower hands those bytes to the
// server to install and only then steps the message into raft.
//
// Body: u32 BE message length, the raftpb Message, u64 BE store size, the store bytes.

import { once } from 'node:events';
import type http from 'node:http';
import type { Logger } from 'pino';
import { decodeMessage, encodeMessage, MessageType, type Message } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './frame.js';
import { peerHeaders, SNAPSHOT_PATH } from './headers.js';
import type { PeerCounters } from './status.js';
import type { LocalMember, SnapshotHooks } from './types.js';

const SIZE_BYTES = 8;
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
      ...peerHeaders(p.local, p.m.to),
      'content-type': 'application/octet-stream',
      'content-length': String(prefix.length + size),
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
    if (early === undefined && sent !== size) throw new Error(`the store stream ended after ${sent} of ${size} bytes`);
    req.end();
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
  /** steps the MsgSnap into raft once the store is installed */
  readonly process: (m: Message) => void;
  readonly counters: PeerCounters;
  readonly log: Logger;
}

class BadSnapshotRequest extends Error {
  override name = 'BadSnapshotRequest';
}

/** Serves one snapshot POST: installs the store through the hooks, then steps the MsgSnap. */
export async function receiveSnapshot(req: http.IncomingMessage, res: http.ServerResponse, p: SnapshotReceive): Promise<void> {
  const fields: Record<string, unknown> = {
    'local-member-id': idHex16(p.localId),
    'remote-snapshot-sender-id': idHex16(p.from),
  };
  try {
    const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head: Buffer = Buffer.alloc(0);
    const need = async (n: number): Promise<void> => {
      while (head.length < n) {
        const r = await it.next();
        if (r.done) throw new BadSnapshotRequest('the snapshot request ended before its header was complete');
        p.counters.receivedBytes += r.value.length;
        head = head.length === 0 ? r.value : Buffer.concat([head, r.value]);
      }
    };
    await need(FRAME_HEADER_BYTES);
    const len = head.readUInt32BE(0);
    if (len > MAX_FRAME_BYTES) throw new BadSnapshotRequest(`snapshot message of ${len} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
    await need(FRAME_HEADER_BYTES + len + SIZE_BYTES);
    let m: Message;
    try {
      m = decodeMessage(head.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len));
    } catch (err) {
      throw new BadSnapshotRequest(`malformed snapshot message: ${(err as Error).message}`);
    }
    const size64 = head.readBigUInt64BE(FRAME_HEADER_BYTES + len);
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
    fields['incoming-snapshot-size'] = size;
    p.log.info(fields, 'receiving database snapshot');

    let received = 0;
    const first = head.subarray(FRAME_HEADER_BYTES + len + SIZE_BYTES);
    async function* store(): AsyncGenerator<Buffer> {
      let chunk: Buffer | undefined = first.length > 0 ? first : undefined;
      for (;;) {
        if (chunk !== undefined) {
          received += chunk.length;
          if (received > size) throw new BadSnapshotRequest(`more store bytes than the announced ${size}`);
          yield chunk;
        }
        if (received === size) return;
        const r = await it.next();
        if (r.done) throw new BadSnapshotRequest(`the store stream ended after ${received} of ${size} bytes`);
        p.counters.receivedBytes += r.value.length;
        chunk = r.value;
      }
    }
    await p.hooks.receive(m, store());
    if (received !== size) throw new Error(`the snapshot receiver read ${received} of ${size} store bytes`);
    p.process(m);
    p.log.info(fields, 'received and saved database snapshot');
    res.writeHead(204).end();
  } catch (err) {
    const bad = err instanceof BadSnapshotRequest;
    p.log.warn({ ...fields, error: (err as Error).message }, 'failed to receive snapshot');
    if (!res.headersSent) {
      res.writeHead(bad ? 400 : 500, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${(err as Error).message}\n`);
    } else {
      res.destroy();
    }
  }
}
