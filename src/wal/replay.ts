// What replaying the WAL does with each record (etcd's ReadAll switch): keep the
// metadata (which must never change), the last HardState, the entries after the
// starting snapshot (a later entry at an earlier index truncates the log there,
// as when a new leader overwrote an uncommitted tail), and whether the starting
// snapshot's marker was seen.

import { type Entry, type HardState, decodeEntry, decodeHardState, emptyHardState } from '../raftpb/index.js';
import { WalCorruptError, WalError, describe } from './errors.js';
import { RecordType, type WalSnapshot, checkFields, decodeWalSnapshot } from './walpb.js';

const ARENA_BYTES = 1024 * 1024;

export class Replay {
  metadata: Uint8Array | undefined;
  hardState: HardState = emptyHardState;
  readonly entries: Entry[] = [];
  /** whether the marker of the starting snapshot was found */
  matched = false;
  /** index of the last entry record seen, whatever the starting snapshot */
  lastIndex = 0;

  private arena = new Uint8Array(0);
  private arenaUsed = 0;

  constructor(private readonly start: WalSnapshot) {}

  /** Applies one record, whose data is buf[start, end), read at `offset` of segment `path`. */
  apply(type: RecordType, buf: Uint8Array, start: number, end: number, path: string, offset: number): void {
    if (type === RecordType.Entry) return this.entry(buf, start, end, path, offset);
    const data = buf.subarray(start, end);
    switch (type) {
      case RecordType.State:
        // the record type is outside the CRC: an entry mistyped as state would carry field 4
        this.hardState = decode(() => (checkFields(data, 3), decodeHardState(data)), 'state', path, offset);
        return;
      case RecordType.Metadata:
        if (this.metadata !== undefined && !bytesEqual(this.metadata, data)) {
          throw new WalError(`wal: conflicting metadata found in ${path} at offset ${offset}`);
        }
        this.metadata = data.slice();
        return;
      case RecordType.Snapshot:
        return this.snapshot(decode(() => (checkFields(data, 3), decodeWalSnapshot(data)), 'snapshot', path, offset), path);
      case RecordType.Crc:
        return; // checked and applied by the decoder
    }
  }

  private entry(buf: Uint8Array, start: number, end: number, path: string, offset: number): void {
    let e: Entry;
    try {
      e = decodeEntry(this.copy(buf, start, end));
    } catch (err) {
      throw new WalCorruptError(path, offset, `undecodable entry record (${describe(err)})`);
    }
    const from = this.start.index;
    if (e.index > from) {
      const up = e.index - from - 1;
      const entries = this.entries;
      if (up > entries.length) {
        throw new WalCorruptError(path, offset, `slice bounds out of range (entry ${e.index} follows entry ${from + entries.length})`);
      }
      if (up < entries.length) entries.length = up;
      entries.push(e);
    }
    this.lastIndex = e.index;
  }

  /**
   * Copies a record out of the segment's read buffer (so entries do not pin it)
   * into a shared arena: one allocation per megabyte instead of one per entry.
   */
  private copy(buf: Uint8Array, start: number, end: number): Uint8Array {
    const len = end - start;
    if (this.arenaUsed + len > this.arena.length) {
      this.arena = new Uint8Array(Math.max(ARENA_BYTES, len));
      this.arenaUsed = 0;
    }
    const at = this.arenaUsed;
    this.arena.set(buf.subarray(start, end), at);
    this.arenaUsed += len;
    return this.arena.subarray(at, at + len);
  }

  private snapshot(s: WalSnapshot, path: string): void {
    if (s.index !== this.start.index) return;
    if (s.term !== this.start.term) {
      throw new WalError(
        `wal: snapshot mismatch (${path} records snapshot index ${s.index} at term ${s.term}, expected term ${this.start.term})`,
      );
    }
    this.matched = true;
  }
}

function decode<T>(fn: () => T, what: string, path: string, offset: number): T {
  try {
    return fn();
  } catch (err) {
    throw new WalCorruptError(path, offset, `undecodable ${what} record (${describe(err)})`);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
