// Shared helpers for the WAL tests.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Entry, EntryType, type HardState } from '../../src/raftpb/index.js';
import type { WalLogger } from '../../src/wal/index.js';

/** A deterministic entry whose data ends in a non-zero byte (so a bit flip in it is never mistaken for a torn write). */
export function entry(index: number, term = 1, size = 64): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = ((index * 31 + i * 7) % 251) + 1;
  return { term, index, type: EntryType.Normal, data };
}

export function entries(from: number, to: number, term = 1, size = 64): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

export function hs(term: number, commit: number, vote = 1n): HardState {
  return { term, vote, commit };
}

export interface LogLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

export function captureLogger(): WalLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (fields, msg) => lines.push({ level: 'info', msg, fields }),
    warn: (fields, msg) => lines.push({ level: 'warn', msg, fields }),
  };
}

/** A fresh directory under /tmp (removed by the returned cleanup). */
export function tempDir(prefix = 'wal-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const META = new TextEncoder().encode('node-1/cluster-7');
