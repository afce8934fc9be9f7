// The cluster's membership as raft has agreed on it: members with their peer URLs
// (changed only through raft conf changes) and their published attributes (name and
// client URLs, published through a normal raft entry once a member starts), and the
// cluster version the leader decided.

import { Errors } from './errors.js';
import { memberRecord } from './backup/etcd-buckets.js';
import { idHex } from './ids.js';

export interface Member {
  readonly id: bigint;
  /** empty until the member has started and published its attributes */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** What a conf change entry carries in its context, and what snapshots store. */
interface MemberJson {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/**
 * A conf change's context as etcd writes it (membership.Member as JSON, the id a JSON
 * number), so etcd's tools that replay the WAL (`etcdctl migrate`) and real etcd itself
 * can read an etcd-ts WAL.
 */
export function encodeMemberContext(m: Member): Uint8Array {
  return memberRecord(m)[1];
}

/**
 * Reads etcd's context (a promote adds `"isPromote":true`, which changes nothing here)
 * and etcd-ts's older one, whose id is a hex string.
 */
export function decodeMemberContext(b: Uint8Array): Member {
  const text = Buffer.from(b).toString('utf8');
  const j = JSON.parse(text) as Omit<MemberJson, 'id'> & { id: unknown };
  if (typeof j.id === 'number') {
    // a uint64 past 2^53 loses digits as a JS number: take them from the text
    const digits = /^\s*\{(?:.*,)?\s*"id"\s*:\s*(\d{1,20})\s*[,}]/s.exec(text)?.[1];
    const id = digits === undefined ? undefined : BigInt(digits);
    if (id === undefined || id === 0n || id >= 1n << 64n) throw new Error(`bad member id in ${text}`);
    return memberFromJson({ ...j, id: idHex(id) });
  }
  return memberFromJson(j as MemberJson);
}

/** etcd's membership.RaftAttributes as JSON, as its v2 store and snapshots hold them (isLearner omitted when false). */
export function raftAttributesJson(peerUrls: readonly string[], isLearner: boolean): string {
  return `{"peerURLs":${JSON.stringify(peerUrls)}${isLearner ? ',"isLearner":true' : ''}}`;
}

function memberToJson(m: Member): MemberJson {
  return {
    id: idHex(m.id),
    name: m.name,
    peerURLs: [...m.peerUrls],
    clientURLs: [...m.clientUrls],
    isLearner: m.isLearner,
  };
}

function memberFromJson(j: MemberJson): Member {
  if (typeof j.id !== 'string' || !/^[0-9a-f]{1,16}$/.test(j.id)) throw new Error(`bad member id in ${JSON.stringify(j)}`);
  return {
    id: BigInt('0x' + j.id),
    name: String(j.name ?? ''),
    peerUrls: (j.peerURLs ?? []).map(String),
    clientUrls: (j.clientURLs ?? []).map(String),
    isLearner: j.isLearner === true,
  };
}

export interface MembershipSnapshot {
  members: MemberJson[];
  removed: string[];
  /** the cluster version, e.g. "3.4.0"; absent until decided (and in older snapshots) */
  version?: string;
}

/** Told of every cluster version set (applied, or restored from a snapshot). */
export type VersionSetListener = (previous: string | undefined, version: string) => void;

export class Membership {
  private readonly members = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();
  private clusterVersion: string | undefined;
  private readonly versionListeners: VersionSetListener[] = [];

  constructor(
    readonly clusterId: bigint,
    readonly localId: bigint,
    onVersionSet?: VersionSetListener,
  ) {
    if (onVersionSet) this.versionListeners.push(onVersionSet);
  }

  /**
   * Tells `listener` of every cluster version set from now on, in the same turn as the
   * set (the metric must agree with the "enabled capabilities" line the moment it is
   * logged: etcd's e2e suite scrapes right after it). Returns the unsubscribe.
   */
  onVersionSet(listener: VersionSetListener): () => void {
    this.versionListeners.push(listener);
    return () => {
      const i = this.versionListeners.indexOf(listener);
      if (i !== -1) this.versionListeners.splice(i, 1);
    };
  }

  /** The agreed cluster version ("3.4.0"), undefined until the leader has decided one. */
  version(): string | undefined {
    return this.clusterVersion;
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  has(id: bigint): boolean {
    return this.members.has(id);
  }

  /** IDs of the members removed from the cluster, which may never rejoin it. */
  removedIds(): bigint[] {
    return [...this.removed];
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  voters(): Member[] {
    return this.list().filter((m) => !m.isLearner);
  }

  /** Checks a membership change before it is proposed, with etcd's refusals. */
  validateAdd(peerUrls: readonly string[], isLearner: boolean): void {
    if (peerUrls.length === 0) throw Errors.memberBadURLs;
    const taken = new Set(this.list().flatMap((m) => m.peerUrls));
    if (peerUrls.some((u) => taken.has(u))) throw Errors.peerURLExist;
    if (isLearner && this.list().filter((m) => m.isLearner).length >= 1) throw Errors.tooManyLearners;
  }

  validateExisting(id: bigint): Member {
    if (this.removed.has(id)) throw Errors.memberNotFound;
    const m = this.members.get(id);
    if (m === undefined) throw Errors.memberNotFound;
    return m;
  }

  // ---- applied changes (called from apply, in raft order; idempotent) ----

  add(m: Member): void {
    if (this.removed.has(m.id)) return;
    const existing = this.members.get(m.id);
    // A re-applied add (WAL replay) keeps attributes already published.
    this.members.set(m.id, existing ? { ...m, name: existing.name || m.name, clientUrls: existing.clientUrls.length ? existing.clientUrls : m.clientUrls } : m);
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  updatePeerUrls(id: bigint, peerUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, peerUrls: [...peerUrls] });
  }

  promote(id: bigint): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, isLearner: false });
  }

  setAttributes(id: bigint, name: string, clientUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, name, clientUrls: [...clientUrls] });
  }

  setVersion(version: string): void {
    const previous = this.clusterVersion;
    this.clusterVersion = version;
    for (const listener of this.versionListeners) listener(previous, version);
  }

  snapshot(): MembershipSnapshot {
    const s: MembershipSnapshot = { members: this.list().map(memberToJson), removed: [...this.removed].map(idHex) };
    if (this.clusterVersion !== undefined) s.version = this.clusterVersion;
    return s;
  }

  restore(s: MembershipSnapshot): void {
    this.members.clear();
    this.removed.clear();
    for (const j of s.members) {
      const m = memberFromJson(j);
      this.members.set(m.id, m);
    }
    for (const r of s.removed) this.removed.add(BigInt('0x' + r));
    if (s.version !== undefined && s.version !== this.clusterVersion) this.setVersion(s.version);
  }
}
