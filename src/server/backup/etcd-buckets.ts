// etcd 3.4's backend buckets as records: the names, in bbolt's (byte) order, and the
// byte layouts of the buckets etcd-ts keeps outside its LevelDB store (membership,
// cluster version). The LevelDB buckets (key, meta, lease, alarm, auth*) already hold
// etcd's bytes under a one-byte prefix (src/mvcc/backend.ts `Bucket`).
//
// Layouts, as etcd 3.4 writes them (etcdserver/api/membership/store.go), checked
// against a database real etcd wrote:
//   members          hex member id   -> the member's JSON (membership.Member)
//   members_removed  hex member id   -> "removed"
//   cluster          "clusterVersion" -> "3.4.0" (major.minor.0)

import { idHex } from '../ids.js';
import type { Member } from '../membership.js';

/** Every bucket etcd 3.4 creates, in the order bbolt keeps them. */
export const ETCD_BUCKETS = ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta'] as const;
export type EtcdBucket = (typeof ETCD_BUCKETS)[number];

export type BucketRecord = [key: Buffer, value: Buffer];

const REMOVED = Buffer.from('removed');
const CLUSTER_VERSION_KEY = Buffer.from('clusterVersion');

/**
 * encoding/json of membership.Member: id as a JSON number (a uint64, so printed from
 * the bigint, never through a float), then RaftAttributes (peerURLs, isLearner
 * omitted when false), then Attributes (name, clientURLs, both omitted when empty).
 */
export function memberRecord(m: Member): BucketRecord {
  let json = `{"id":${m.id.toString()},"peerURLs":${JSON.stringify(m.peerUrls)}`;
  if (m.isLearner) json += ',"isLearner":true';
  if (m.name !== '') json += `,"name":${JSON.stringify(m.name)}`;
  if (m.clientUrls.length > 0) json += `,"clientURLs":${JSON.stringify(m.clientUrls)}`;
  return [Buffer.from(idHex(m.id)), Buffer.from(`${json}}`)];
}

export function removedMemberRecord(id: bigint): BucketRecord {
  return [Buffer.from(idHex(id)), REMOVED];
}

/** `version` as the cluster decided it ("3.4.0"); etcd stores major.minor.0. */
export function clusterVersionRecord(version: string): BucketRecord {
  const [major, minor] = version.split('.');
  return [CLUSTER_VERSION_KEY, Buffer.from(`${major}.${minor}.0`)];
}
