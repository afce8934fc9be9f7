// Active alarms (NOSPACE, CORRUPT), raised and disarmed through raft so that every
// member agrees. While NOSPACE is active, writes that need space are refused.

import { Reader, WireType, Writer } from '../raftpb/wire.js';
import { idHex } from './ids.js';

/** etcdserverpb.AlarmType. A decoded request may name a type etcd does not know: alarms hold any number. */
export const AlarmType = { NONE: 0, NOSPACE: 1, CORRUPT: 2 } as const;
export type AlarmType = (typeof AlarmType)[keyof typeof AlarmType];

/** etcdserverpb.AlarmRequest.AlarmAction */
export const AlarmAction = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;
export type AlarmAction = (typeof AlarmAction)[keyof typeof AlarmAction];

const alarmNames: ReadonlyMap<number, string> = new Map(Object.entries(AlarmType).map(([name, n]) => [n, name]));

/** An alarm type as etcd prints it (AlarmType.String(): the number for one it does not know). */
export function alarmName(alarm: number): string {
  return alarmNames.get(alarm) ?? String(alarm);
}

export interface AlarmMember {
  readonly memberId: bigint;
  readonly alarm: number;
}

/** etcdserverpb.AlarmMember{MemberID=1, Alarm=2}: the key of an alarm's record in the store's `alarm` bucket, as etcd's. */
export function encodeAlarmKey(a: AlarmMember): Buffer {
  const w = new Writer(16);
  if (a.memberId !== 0n) w.tag(1, WireType.Varint).uint64(a.memberId);
  if (a.alarm !== 0) w.tag(2, WireType.Varint).uint53(a.alarm);
  return Buffer.from(w.finish());
}

export function decodeAlarmKey(b: Uint8Array): AlarmMember {
  const r = new Reader(b);
  let memberId = 0n;
  let alarm = 0;
  while (!r.done()) {
    const [f, wt] = r.tag();
    if (f === 1) memberId = r.uint64();
    else if (f === 2) alarm = r.uint53();
    else r.skip(wt);
  }
  return { memberId, alarm };
}

export class AlarmStore {
  private readonly active = new Map<string, AlarmMember>();

  private static key(memberId: bigint, alarm: number): string {
    return `${memberId}:${alarm}`;
  }

  /** Returns true when the alarm was not already active. */
  activate(memberId: bigint, alarm: number): boolean {
    if (alarm === AlarmType.NONE) return false;
    const k = AlarmStore.key(memberId, alarm);
    if (this.active.has(k)) return false;
    this.active.set(k, { memberId, alarm });
    return true;
  }

  deactivate(memberId: bigint, alarm: number): boolean {
    return this.active.delete(AlarmStore.key(memberId, alarm));
  }

  /** Alarms matching a filter: NONE = any type, memberId 0 = any member. */
  list(alarm: number = AlarmType.NONE, memberId = 0n): AlarmMember[] {
    return [...this.active.values()].filter(
      (a) => (alarm === AlarmType.NONE || a.alarm === alarm) && (memberId === 0n || a.memberId === memberId),
    );
  }

  has(alarm: number): boolean {
    return this.list(alarm).length > 0;
  }

  snapshot(): Array<{ memberId: string; alarm: number }> {
    return this.list().map((a) => ({ memberId: idHex(a.memberId), alarm: a.alarm }));
  }

  restore(s: ReadonlyArray<{ memberId: string; alarm: number }>): void {
    this.active.clear();
    for (const a of s) this.activate(BigInt('0x' + a.memberId), a.alarm);
  }

  /** Replaces the active alarms with the store's `alarm` records (a data dir whose snapshot is etcd's). */
  restoreFromRecords(keys: readonly Uint8Array[]): void {
    this.active.clear();
    for (const k of keys) {
      const a = decodeAlarmKey(k);
      this.activate(a.memberId, a.alarm);
    }
  }
}
