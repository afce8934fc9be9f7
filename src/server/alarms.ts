// Active alarms (NOSPACE, CORRUPT), raised and disarmed through raft so that every
// member agrees. While NOSPACE is active, writes that need space are refused.

import { idHex } from './ids.js';

export const AlarmType: Record<number, string> = { 0: 'NONE', 1: 'NOSPACE', 2: 'CORRUPT' };
export const ALARM_NOSPACE = 1;
export const ALARM_CORRUPT = 2;

export interface AlarmMember {
  readonly memberId: bigint;
  readonly alarm: number;
}

export class AlarmStore {
  private readonly active = new Map<string, AlarmMember>();

  private static key(memberId: bigint, alarm: number): string {
    return `${memberId}:${alarm}`;
  }

  /** Returns true when the alarm was not already active. */
  activate(memberId: bigint, alarm: number): boolean {
    if (alarm === 0) return false;
    const k = AlarmStore.key(memberId, alarm);
    if (this.active.has(k)) return false;
    this.active.set(k, { memberId, alarm });
    return true;
  }

  deactivate(memberId: bigint, alarm: number): boolean {
    return this.active.delete(AlarmStore.key(memberId, alarm));
  }

  /** Alarms matching a filter: alarm 0 = any type, memberId 0 = any member. */
  list(alarm = 0, memberId = 0n): AlarmMember[] {
    return [...this.active.values()].filter(
      (a) => (alarm === 0 || a.alarm === alarm) && (memberId === 0n || a.memberId === memberId),
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
}
