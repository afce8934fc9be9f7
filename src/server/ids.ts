// Member and cluster IDs, derived exactly as etcd derives them, so that the same
// --initial-cluster and --initial-cluster-token give the same IDs on etcd and etcd-ts.

import { createHash } from 'node:crypto';

/** etcd prints IDs as lowercase hex without padding (%x). */
export function idHex(id: bigint): string {
  return id.toString(16);
}

/** 16 hex digits, as raft's log lines print a member ID (%016x). */
export function idHex16(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

export function parseIdHex(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt('0x' + s);
}

function first8BigEndian(digest: Buffer): bigint {
  return digest.readBigUInt64BE(0);
}

/**
 * A member's ID: SHA-1 over its sorted peer URLs concatenated, the cluster token and,
 * for members added at runtime, the time of the addition (Unix seconds, big-endian).
 */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string, addedAtUnixSec?: number): bigint {
  const parts = [Buffer.from([...peerUrls].sort().join('')), Buffer.from(clusterToken)];
  if (addedAtUnixSec !== undefined) {
    const t = Buffer.alloc(8);
    t.writeBigInt64BE(BigInt(Math.floor(addedAtUnixSec)));
    parts.push(t);
  }
  return first8BigEndian(createHash('sha1').update(Buffer.concat(parts)).digest());
}

/** The cluster ID: SHA-1 over the sorted initial member IDs, each as 8 big-endian bytes. */
export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, i * 8));
  return first8BigEndian(createHash('sha1').update(buf).digest());
}

/**
 * Request IDs unique across members and restarts, like etcd's idutil.Generator:
 * the low 16 bits of the member ID, then 40 bits of milliseconds at start, then a counter.
 */
export class RequestIdGenerator {
  private next: bigint;

  constructor(memberId: bigint, nowMs: number) {
    const prefix = (memberId & 0xffffn) << 48n;
    const suffix = (BigInt(Math.floor(nowMs)) & 0xff_ffff_ffffn) << 8n;
    this.next = prefix | suffix;
  }

  id(): bigint {
    this.next = BigInt.asUintN(64, this.next + 1n);
    return this.next;
  }
}
