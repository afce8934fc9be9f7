// etcd 3.4's two stream encodings (rafthttp's msg_codec.go and msgappv2_codec.go).
//
// "message" stream: every message is a big-endian uint64 length followed by the raftpb
// Message. "msgappv2" stream (MsgApp only): a one-byte record type, then
//   0  link heartbeat, nothing more;
//   1  MsgApp continuing the previous one (same term, its index right after the previous
//      message's last entry): uint64 entry count, each entry as uint64 length + Entry,
//      then uint64 commit — from, to, term, logTerm and index are implied;
//   2  any other MsgApp: uint64 length + Message, which sets the term and index implied next.
// On both, a link heartbeat is an empty MsgHeartbeat (from = to = 0) that only keeps an
// idle connection from timing out; it is never given to raft.

import { decodeEntry, decodeMessage, type Entry, type Message, MessageType, newMessage, writeEntry, writeMessage, type Writer } from '../../raftpb/index.js';
import { ByteQueue } from './byte-queue.js';

export type StreamType = 'message' | 'msgappv2';

/** Larger than any message raft builds (MaxSizePerMsg plus one max-size entry); more is garbage. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const MSGAPPV2_HEARTBEAT = 0;
const MSGAPPV2_ENTRIES = 1;
const MSGAPPV2_MESSAGE = 2;

export const LINK_HEARTBEAT: Message = Object.freeze(
  newMessage(MessageType.MsgHeartbeat, 0n, 0n, 0, 0, 0, [], 0, undefined, false, 0, undefined),
);

export function isLinkHeartbeat(m: Message): boolean {
  return m.type === MessageType.MsgHeartbeat && m.from === 0n && m.to === 0n;
}

/** The stream cannot be read on: its framing (or, on msgappv2, its implied state) is lost. */
export class StreamCorrupt extends Error {
  override name = 'StreamCorrupt';
}

/** One record of a stream: a message, or one that does not decode but left the framing intact. */
export type Decoded = { readonly message: Message } | { readonly undecodable: Error };

export interface StreamEncoder {
  /** Appends the encoding of `m` to `out`. */
  encode(m: Message, out: Writer): void;
}

export interface StreamDecoder {
  /** Feeds bytes; returns the complete records. Throws StreamCorrupt. */
  push(chunk: Buffer): Decoded[];
  /** Bytes of an unfinished record (non-zero when a stream ends mid-record). */
  readonly pending: number;
}

/** Appends what `write` writes, preceded by its length as a big-endian uint64 (written into place once known). */
function lengthPrefixed(out: Writer, write: () => void): void {
  const at = out.length;
  out.uint64BE(0);
  write();
  out.setUint64BE(at, out.length - at - 8);
}

export function newEncoder(t: StreamType): StreamEncoder {
  return t === 'message' ? new MessageEncoder() : new MsgAppV2Encoder();
}

export function newDecoder(t: StreamType, local: bigint, remote: bigint): StreamDecoder {
  return t === 'message' ? new MessageDecoder() : new MsgAppV2Decoder(local, remote);
}

export class MessageEncoder implements StreamEncoder {
  encode(m: Message, out: Writer): void {
    lengthPrefixed(out, () => writeMessage(out, m));
  }
}

export class MessageDecoder implements StreamDecoder {
  private readonly bytes = new ByteQueue();
  /** length of the message being read, or -1 while its length is incomplete */
  private len = -1;

  get pending(): number {
    return this.bytes.length + (this.len >= 0 ? 8 : 0);
  }

  push(chunk: Buffer): Decoded[] {
    this.bytes.push(chunk);
    const out: Decoded[] = [];
    for (;;) {
      if (this.len < 0) {
        if (this.bytes.length < 8) break;
        const len = this.bytes.takeU64();
        if (len > MAX_MESSAGE_BYTES) throw new StreamCorrupt(`message of ${len} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
        this.len = len;
      }
      if (this.bytes.length < this.len) break;
      const body = this.bytes.take(this.len);
      this.len = -1;
      try {
        out.push({ message: decodeMessage(body) });
      } catch (err) {
        // length-prefixed: the next message still starts where it should
        out.push({ undecodable: err as Error });
      }
    }
    return out;
  }
}

export class MsgAppV2Encoder implements StreamEncoder {
  /** term and last index of the MsgApp sent before: what a type-1 record implies */
  private term = 0;
  private index = 0;

  encode(m: Message, out: Writer): void {
    if (isLinkHeartbeat(m)) {
      out.uint8(MSGAPPV2_HEARTBEAT);
      return;
    }
    if (m.type !== MessageType.MsgApp) throw new Error(`the msgappv2 stream carries MsgApp only, not ${m.type}`);
    if (this.index === m.index && this.term === m.logTerm && m.logTerm === m.term) {
      out.uint8(MSGAPPV2_ENTRIES).uint64BE(m.entries.length);
      for (const e of m.entries) lengthPrefixed(out, () => writeEntry(out, e));
      out.uint64BE(m.commit);
      this.index += m.entries.length;
      return;
    }
    out.uint8(MSGAPPV2_MESSAGE);
    lengthPrefixed(out, () => writeMessage(out, m));
    this.term = m.term;
    this.index = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : m.index;
  }
}

type V2State =
  | { readonly at: 'type' }
  | { readonly at: 'message-length' }
  | { readonly at: 'message'; readonly len: number }
  | { readonly at: 'entry-count' }
  | { readonly at: 'entry-length'; readonly left: number }
  | { readonly at: 'entry'; readonly left: number; readonly len: number }
  | { readonly at: 'commit' };

export class MsgAppV2Decoder implements StreamDecoder {
  private readonly bytes = new ByteQueue();
  private state: V2State = { at: 'type' };
  private term = 0;
  private index = 0;
  /** the type-1 record being read: its entries so far and their total size */
  private entries: Entry[] = [];
  private entryBytes = 0;

  constructor(
    private readonly local: bigint,
    private readonly remote: bigint,
  ) {}

  get pending(): number {
    return this.bytes.length + (this.state.at === 'type' ? 0 : 1);
  }

  push(chunk: Buffer): Decoded[] {
    this.bytes.push(chunk);
    const out: Decoded[] = [];
    for (;;) {
      const s = this.state;
      const need = s.at === 'type' ? 1 : s.at === 'message' || s.at === 'entry' ? s.len : 8;
      if (this.bytes.length < need) break;
      switch (s.at) {
        case 'type': {
          const t = this.bytes.takeU8();
          if (t === MSGAPPV2_HEARTBEAT) out.push({ message: LINK_HEARTBEAT });
          else if (t === MSGAPPV2_ENTRIES) this.state = { at: 'entry-count' };
          else if (t === MSGAPPV2_MESSAGE) this.state = { at: 'message-length' };
          else throw new StreamCorrupt(`failed to parse type ${t} in msgappv2 stream`);
          break;
        }
        case 'message-length':
          this.state = { at: 'message', len: this.sized(this.bytes.takeU64()) };
          break;
        case 'message': {
          const m = this.decode(() => decodeMessage(this.bytes.take(s.len)));
          this.term = m.term;
          this.index = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : m.index;
          out.push({ message: m });
          this.state = { at: 'type' };
          break;
        }
        case 'entry-count': {
          const count = this.bytes.takeU64();
          // every entry takes at least its 8-byte length
          if (count > MAX_MESSAGE_BYTES / 8) throw new StreamCorrupt(`${count} entries in one msgappv2 record exceed the ${MAX_MESSAGE_BYTES}-byte limit`);
          this.entries = [];
          this.entryBytes = 0;
          this.state = count === 0 ? { at: 'commit' } : { at: 'entry-length', left: count };
          break;
        }
        case 'entry-length': {
          const len = this.bytes.takeU64();
          this.entryBytes += len;
          this.sized(this.entryBytes);
          this.state = { at: 'entry', left: s.left, len };
          break;
        }
        case 'entry':
          this.entries.push(this.decode(() => decodeEntry(this.bytes.take(s.len))));
          this.state = s.left > 1 ? { at: 'entry-length', left: s.left - 1 } : { at: 'commit' };
          break;
        case 'commit': {
          const commit = this.bytes.takeU64();
          if (commit === Infinity) throw new StreamCorrupt('a commit index past 2^53 in msgappv2 stream');
          const m = newMessage(
            MessageType.MsgApp,
            this.local,
            this.remote,
            this.term,
            this.term,
            this.index,
            this.entries,
            commit,
            undefined,
            false,
            0,
            undefined,
          );
          this.index += this.entries.length;
          this.entries = [];
          out.push({ message: m });
          this.state = { at: 'type' };
          break;
        }
      }
    }
    return out;
  }

  private sized(n: number): number {
    if (n > MAX_MESSAGE_BYTES) throw new StreamCorrupt(`msgappv2 record of ${n} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
    return n;
  }

  /** What follows depends on every record before: one that does not decode ends the stream. */
  private decode<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new StreamCorrupt(`undecodable record in msgappv2 stream: ${(err as Error).message}`);
    }
  }
}
