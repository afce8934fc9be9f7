// Peer messages dropped on arrival (undecodable, or refused by raft) are logged at warn
// at most once per interval for each sender and reason: a peer sending garbage in a loop
// must not flood the log, and each line says how many drops went unlogged since the last.

import type { Logger } from 'pino';
import { idHex16 } from '../ids.js';

export const DROP_LOG_INTERVAL_MS = 10_000;
/** senders are peers we dialled, reasons a handful; this only bounds a pathological mix */
const MAX_KEYS = 1024;

export class DropLog {
  private readonly last = new Map<string, { at: number; unlogged: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DROP_LOG_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** One message from `sender` was dropped for `reason`. */
  note(sender: bigint, reason: string, msg: string, fields: Record<string, unknown>): void {
    const key = `${sender}/${reason}`;
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev.at < this.intervalMs) {
      prev.unlogged++;
      return;
    }
    if (prev === undefined && this.last.size >= MAX_KEYS) this.last.clear();
    this.last.set(key, { at: t, unlogged: 0 });
    this.log.warn({ 'remote-peer-id': idHex16(sender), reason, ...fields, 'dropped-unlogged': prev?.unlogged ?? 0 }, msg);
  }
}
