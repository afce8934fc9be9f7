// What a raft snapshot's data holds besides the key-value store, in either of the two
// formats a data dir can carry: etcd-ts's (SnapshotData: membership, alarms, v2 store)
// or etcd 3.4's, which is the v2 store itself, serialized by v2store's Save, with the
// membership and the cluster version inside it under "/0" (etcd 3.4 recovers them from
// there, not from the bbolt `members` and `cluster` buckets; after `snapshot restore`
// those still list the old cluster). etcd keeps alarms in its bbolt `alarm` bucket, so
// an etcd snapshot says nothing about them.

import type { MembershipSnapshot } from '../membership.js';
import type { V2StoreSnapshot } from '../v2store/index.js';

/** What etcd-ts kept in a raft snapshot besides the store before it wrote etcd's format (etcd-snapshot-data.ts). */
export interface SnapshotData {
  membership: MembershipSnapshot;
  alarms: Array<{ memberId: string; alarm: number }>;
  /** absent in snapshots taken before etcd-ts kept the v2 store */
  v2store?: V2StoreSnapshot;
}

export class SnapshotDataError extends Error {
  override name = 'SnapshotDataError';
}

/** A snapshot's state outside the store; `alarms` undefined: they are in the store (etcd's). */
export interface SnapshotState {
  readonly format: 'etcd-ts' | 'etcd';
  readonly membership: MembershipSnapshot;
  readonly alarms: SnapshotData['alarms'] | undefined;
  /** undefined in etcd-ts snapshots from before the v2 store was kept in them */
  readonly v2store: V2StoreSnapshot | undefined;
}

type NodeJson = V2StoreSnapshot['root'];
type MemberJson = MembershipSnapshot['members'][number];
type EventJson = V2StoreSnapshot['history'][number];

/** etcd's v2store node as json.Marshal writes it (Children null for a file). */
export interface EtcdNode {
  Path: string;
  CreatedIndex: number;
  ModifiedIndex: number;
  ExpireTime: string;
  Value: string;
  Children: Record<string, EtcdNode> | null;
}

/** etcd's v2store.store as json.Marshal writes it; the watcher hub holds the event history ring. */
interface EtcdStore {
  Root: EtcdNode;
  CurrentIndex: number;
  WatcherHub?: {
    EventHistory?: {
      Queue?: { Events?: Array<EtcdEvent | null>; Size?: number; Front?: number; Capacity?: number };
    };
  };
}

interface EtcdEvent {
  action: EventJson['action'];
  node: EventJson['node'];
  prevNode?: EventJson['node'];
}

const MEMBERS_DIR = '/0/members';
const REMOVED_DIR = '/0/removed_members';
const VERSION_PATH = '/0/version';

/** Reads a snapshot's data, in etcd-ts's format or etcd 3.4's; throws SnapshotDataError naming what is wrong. */
export function readSnapshotState(data: Uint8Array, where: string): SnapshotState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (err) {
    throw new SnapshotDataError(`${where}: the snapshot's data is not JSON (${(err as Error).message})`);
  }
  if (isObject(parsed) && isObject(parsed['membership'])) {
    const d = parsed as unknown as SnapshotData;
    return { format: 'etcd-ts', membership: d.membership, alarms: d.alarms, v2store: d.v2store };
  }
  if (isObject(parsed) && isObject(parsed['Root'])) {
    try {
      return fromEtcdStore(parsed as unknown as EtcdStore);
    } catch (err) {
      throw new SnapshotDataError(`${where}: etcd's v2 store in the snapshot: ${(err as Error).message}`);
    }
  }
  throw new SnapshotDataError(`${where}: the snapshot's data is neither etcd-ts's nor etcd's v2 store`);
}

function fromEtcdStore(s: EtcdStore): SnapshotState {
  if (typeof s.CurrentIndex !== 'number') throw new Error('no CurrentIndex');
  const root = convertNode(s.Root, '');
  return {
    format: 'etcd',
    membership: membershipOf(s.Root),
    alarms: undefined,
    v2store: { index: s.CurrentIndex, root, history: historyOf(s) },
  };
}

function convertNode(n: EtcdNode, name: string): NodeJson {
  if (!isObject(n) || typeof n.Path !== 'string') throw new Error(`a node under ${JSON.stringify(name)} has no path`);
  const j: NodeJson = { name, createdIndex: Number(n.CreatedIndex), modifiedIndex: Number(n.ModifiedIndex) };
  const expire = parseGoTime(n.ExpireTime, n.Path);
  if (expire !== undefined) j.expireTime = expire.toString();
  if (n.Children === null || n.Children === undefined) {
    if (typeof n.Value !== 'string') throw new Error(`${n.Path} has neither a value nor children`);
    j.value = n.Value;
  } else {
    // Go marshals a map in key order; etcd lists unsorted children in map order anyway
    j.children = Object.keys(n.Children)
      .sort()
      .map((c) => convertNode(n.Children![c]!, c));
  }
  return j;
}

/** etcd's membersFromStore and clusterVersionFromStore, over the snapshot's tree. */
function membershipOf(root: EtcdNode): MembershipSnapshot {
  const members: MemberJson[] = [];
  for (const node of Object.values(child(root, MEMBERS_DIR)?.Children ?? {})) {
    const id = idOf(node.Path);
    const raft = child(node, `${node.Path}/raftAttributes`);
    if (raft === undefined) throw new Error(`member ${id} has no raftAttributes`);
    const ra = JSON.parse(raft.Value) as { peerURLs?: string[]; isLearner?: boolean };
    const attrsNode = child(node, `${node.Path}/attributes`);
    const a = attrsNode ? (JSON.parse(attrsNode.Value) as { name?: string; clientURLs?: string[] }) : {};
    members.push({ id, name: a.name ?? '', peerURLs: ra.peerURLs ?? [], clientURLs: a.clientURLs ?? [], isLearner: ra.isLearner === true });
  }
  const removed = Object.values(child(root, REMOVED_DIR)?.Children ?? {}).map((n) => idOf(n.Path));
  const version = child(root, VERSION_PATH)?.Value;
  return { members, removed, ...(version !== undefined ? { version } : {}) };
}

/** The node at `path` below `from` (which must be an ancestor). */
function child(from: EtcdNode, path: string): EtcdNode | undefined {
  let n: EtcdNode | undefined = from;
  const rest = path.slice(from.Path === '/' ? 1 : from.Path.length + 1);
  for (const part of rest.split('/')) {
    n = n.Children?.[part];
    if (n === undefined) return undefined;
  }
  return n;
}

function idOf(p: string): string {
  const hex = p.slice(p.lastIndexOf('/') + 1);
  if (!/^[0-9a-f]{1,16}$/.test(hex)) throw new Error(`bad member id in ${p}`);
  return hex;
}

/** The ring buffer of etcd's event history, oldest first, as etcd-ts's history. */
function historyOf(s: EtcdStore): EventJson[] {
  const q = s.WatcherHub?.EventHistory?.Queue;
  const events = q?.Events ?? [];
  const size = q?.Size ?? 0;
  const front = q?.Front ?? 0;
  const capacity = q?.Capacity ?? events.length;
  const out: EventJson[] = [];
  for (let i = 0; i < size; i++) {
    const e = events[(front + i) % capacity];
    if (!e) continue;
    const key = e.node.key ?? '';
    // the index at the time of the event is not kept by etcd either (EtcdIndex is json:"-")
    out.push({
      action: e.action,
      node: e.node,
      ...(e.prevNode ? { prevNode: e.prevNode } : {}),
      etcdIndex: 0,
      path: key,
      index: e.node.modifiedIndex ?? 0,
      prevDir: e.prevNode?.dir === true,
    });
  }
  return out;
}

/**
 * Go's time.Time JSON (RFC 3339 with up to nine fraction digits and a zone) as
 * nanoseconds since the epoch; undefined for the zero time, which means permanent.
 */
export function parseGoTime(t: string, where: string): bigint | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) throw new Error(`bad expire time ${JSON.stringify(t)} at ${where}`);
  if (m[1] === '0001') return undefined;
  const secs = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  const zone = m[8]!;
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  const frac = BigInt((m[7] ?? '').padEnd(9, '0'));
  return BigInt(secs - offset) * 1_000_000_000n + frac;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
