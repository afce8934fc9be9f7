// What etcd 3.4 keeps in a raft snapshot's data: its v2 store, as v2store's Save
// marshals it, with the membership and the cluster version under "/0" — etcd restarts
// from there (membersFromStore, clusterVersionFromStore), not from its bbolt buckets.
// etcd-ts writes its .snap files and the snapshots it sends in this format, so that real
// etcd starts on an etcd-ts WAL and .snap (import/snapshot-data.ts reads it back).
//
// etcd-ts keeps membership outside its v2 store (the store's "/0" holds only what v2
// requests wrote there: member attributes, the version), so "/0/members",
// "/0/removed_members" and "/0/version" are written from the membership, as etcd's
// membership/store.go lays them out:
//   /0/members/<hex id>/raftAttributes   {"peerURLs":[...],"isLearner":true}  (isLearner omitted when false)
//   /0/members/<hex id>/attributes       {"name":"...","clientURLs":[...]}    (omitted until published)
//   /0/removed_members/<hex id>          ""
//   /0/version                            "3.4.0"
// etcd keeps alarms in its bbolt `alarm` bucket, as etcd-ts's store does, so they are not here.

import type { EtcdNode } from '../import/snapshot-data.js';
import { type MembershipSnapshot, raftAttributesJson } from '../membership.js';
import { HISTORY_CAPACITY, type V2StoreSnapshot } from '../v2store/index.js';

type NodeJson = V2StoreSnapshot['root'];

/** Go's zero time.Time, which etcd reads as "never expires". */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
/** etcd's v2store defaultVersion */
const STORE_VERSION = 2;
const CLUSTER_DIR = '0';
const MEMBERSHIP_NAMES = new Set(['members', 'removed_members', 'version']);

/** The snapshot data etcd 3.4 would write for this membership and v2 store. */
export function etcdSnapshotData(membership: MembershipSnapshot, v2: V2StoreSnapshot): Buffer {
  const at = v2.index;
  const root = etcdNode(v2.root, '/');
  const cluster = root.Children![CLUSTER_DIR] ?? dir(`/${CLUSTER_DIR}`, at);
  root.Children![CLUSTER_DIR] = cluster;
  const kept = v2.root.children?.find((c) => c.name === CLUSTER_DIR);
  for (const name of MEMBERSHIP_NAMES) delete cluster.Children![name];
  cluster.Children!['members'] = membersDir(membership, kept, at);
  cluster.Children!['removed_members'] = dir('/0/removed_members', at, membership.removed.map((id) => file(`/0/removed_members/${id}`, '', at)));
  if (membership.version !== undefined) cluster.Children!['version'] = file('/0/version', membership.version, at);
  const events = v2.history.map(({ action, node, prevNode }) => ({ action, node, ...(prevNode ? { prevNode } : {}) }));
  const ring: Array<(typeof events)[number] | null> = [...events, ...new Array<null>(HISTORY_CAPACITY - events.length).fill(null)];
  return Buffer.from(
    JSON.stringify({
      Root: root,
      WatcherHub: {
        EventHistory: {
          // etcd's ring buffer, allocated whole (its insert indexes into it)
          Queue: { Events: ring, Size: events.length, Front: 0, Back: events.length % HISTORY_CAPACITY, Capacity: HISTORY_CAPACITY },
          StartIndex: v2.history[0]?.index ?? 0,
          LastIndex: v2.history.at(-1)?.index ?? 0,
        },
      },
      CurrentIndex: at,
      CurrentVersion: STORE_VERSION,
    }),
  );
}

function membersDir(membership: MembershipSnapshot, kept: NodeJson | undefined, at: number): EtcdNode {
  const published = kept?.children?.find((c) => c.name === 'members')?.children ?? [];
  return dir(
    '/0/members',
    at,
    membership.members.map((m) => {
      const p = `/0/members/${m.id}`;
      const children = [file(`${p}/raftAttributes`, raftAttributesJson(m.peerURLs, m.isLearner), at)];
      if (m.name !== '' || m.clientURLs.length > 0) {
        let attrs = '{';
        if (m.name !== '') attrs += `"name":${JSON.stringify(m.name)}`;
        if (m.clientURLs.length > 0) attrs += `${m.name !== '' ? ',' : ''}"clientURLs":${JSON.stringify(m.clientURLs)}`;
        // the index of the publish that wrote them, when the v2 store has it
        const wrote = published.find((c) => c.name === m.id)?.children?.find((c) => c.name === 'attributes');
        const attributes = file(`${p}/attributes`, `${attrs}}`, wrote?.modifiedIndex ?? at);
        attributes.CreatedIndex = wrote?.createdIndex ?? at;
        children.push(attributes);
      }
      return dir(p, at, children);
    }),
  );
}

function etcdNode(n: NodeJson, p: string): EtcdNode {
  const node: EtcdNode = {
    Path: p,
    CreatedIndex: n.createdIndex,
    ModifiedIndex: n.modifiedIndex,
    ExpireTime: n.expireTime === undefined ? GO_ZERO_TIME : goTime(BigInt(n.expireTime)),
    Value: n.value ?? '',
    Children: null,
  };
  if (n.children !== undefined) {
    node.Children = {};
    for (const c of n.children) node.Children[c.name] = etcdNode(c, p === '/' ? `/${c.name}` : `${p}/${c.name}`);
  }
  return node;
}

function dir(p: string, index: number, children: EtcdNode[] = []): EtcdNode {
  const n = file(p, '', index);
  n.Children = Object.fromEntries(children.map((c) => [c.Path.slice(c.Path.lastIndexOf('/') + 1), c]));
  return n;
}

function file(p: string, value: string, index: number): EtcdNode {
  return { Path: p, CreatedIndex: index, ModifiedIndex: index, ExpireTime: GO_ZERO_TIME, Value: value, Children: null };
}

/** Nanoseconds since the epoch as Go's time.Time JSON (RFC 3339, trailing fraction zeros dropped). */
export function goTime(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const whole = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  const digits = frac === 0n ? '' : `.${frac.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${whole}${digits}Z`;
}
